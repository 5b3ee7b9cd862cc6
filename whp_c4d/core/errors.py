"""Business errors that carry a code and parameters; the text a person reads is translated at display."""

from __future__ import annotations

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

MESSAGES = {
    "password_too_short": _l("The password must have at least %(min)s characters."),
    "wrong_password": _l("The current password is not correct."),
    "unknown_role": _l("Unknown role “%(role)s”."),
    "invalid_email": _l("Enter a valid e-mail address."),
    "email_taken": _l("A user with this e-mail address already exists."),
    "partner_needs_organisation": _l("A partner user must belong to a partner organisation."),
    "cannot_demote_self": _l("You cannot change your own role or disable your own account."),
    "setup_link_invalid": _l("This set-up link is invalid, expired or already used."),
    "partner_name_taken": _l("A partner organisation with this name already exists."),
    "invalid_phone": _l("“%(value)s” is not a valid phone number for %(country)s."),
    "phone_taken": _l("This number already belongs to another contact."),
    "phone_suppressed": _l("This number was erased at the person's request and cannot be added again."),
    "unknown_language": _l("Unknown or disabled language “%(value)s”."),
    "unknown_country": _l("Unknown country code “%(value)s”."),
    "unknown_channel": _l("Unknown channel “%(value)s”: use sms or whatsapp."),
    "unknown_timezone": _l("Unknown time zone “%(value)s”."),
    "no_channel": _l("Choose at least one channel."),
    "segment_name_taken": _l("A segment with this name already exists."),
    "invalid_language_code": _l("“%(value)s” is not an ISO 639 language code."),
    "retention_too_short": _l("The period for “%(kind)s” must be at least %(min)s days."),
}


class ServiceError(Exception):
    """A refusal a person can act on. ``str()`` is the code, never personal data."""

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code = code
        self.params = params

    @property
    def message(self) -> str:
        template = MESSAGES.get(self.code)
        if template is None:
            return gettext("The request could not be completed (%(code)s).", code=self.code)
        return str(template) % self.params if self.params else str(template)
