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
    "campaign_key_taken": _l("Another campaign already uses the key “%(key)s”."),
    "campaign_not_editable": _l("A campaign that is %(status)s cannot be edited: pause it first, or duplicate it."),
    "step_key_taken": _l("Another step of this campaign already has the key “%(key)s”."),
    "unknown_transition": _l("Unknown action “%(action)s”."),
    "transition_not_allowed": _l("This action is not possible while the campaign is %(status)s."),
    "approve_own_edit": _l("You made the last change to this campaign: another officer or an administrator "
                           "must approve it (four eyes)."),
    "approve_role": _l("Only communication officers and administrators approve campaigns."),
    "resume_needs_approval": _l("The campaign changed while paused: it must be approved again before it resumes."),
    "campaign_has_problems": _l("The campaign has %(count)s problem(s) to fix first (listed on the campaign page)."),
    "no_test_phone": _l("Add your own phone number in “My account” to receive test messages."),
    "test_send_failed": _l("The test message could not be sent (%(reason)s)."),
    "invalid_code": _l("“%(value)s” is not a valid code: use lower-case letters, digits and _ (2 to 40)."),
    "label_required": _l("Give at least one label."),
    "value_too_long": _l("At most %(max)s characters."),
    "invalid_price": _l("“%(value)s” is not a valid price: use a number such as 0.0075."),
    "invalid_currency": _l("“%(value)s” is not a currency code such as USD."),
    "invalid_domain": _l("“%(value)s” is not a domain name such as gob.gt."),
    "retention_too_short": _l("The period for “%(kind)s” must be at least %(min)s days."),
    "sender_name_required": _l("Give the sender a name."),
    "sender_name_taken": _l("A sender with this name already exists."),
    "sender_needs_one_address": _l("Give either a “From” number or a Messaging Service SID, not both."),
    "invalid_sender_number": _l("“%(value)s” is not a valid sender number: write it with + and the country "
                                "code, and “whatsapp:” in front for WhatsApp."),
    "sender_channel_mismatch": _l("A “whatsapp:” number can only be used by a WhatsApp sender."),
    "invalid_messaging_service_sid": _l("“%(value)s” is not a Messaging Service SID (MG followed by 32 "
                                        "hexadecimal characters)."),
    "invalid_sender_cap": _l("The rate must be a whole number of messages per second from %(min)s to %(max)s."),
    "default_sender_inactive": _l("An inactive sender cannot be the default for its channel."),
    "keyword_invalid": _l("“%(value)s” cannot be a keyword: write a word or a short phrase (letters or digits, "
                          "at most 60 characters)."),
    "keyword_taken": _l("“%(value)s” is already a keyword: a word can do only one thing."),
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
