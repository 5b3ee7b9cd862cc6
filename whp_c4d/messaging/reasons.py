"""Why a message did not go (or not yet), in words: one list for the progress page, the campaign page and
the reports. The keys are what the outbox writes in ``outbound_message.reason``."""

from flask_babel import lazy_gettext as _l

REASON_LABELS = {
    # the sendability decision
    "no_consent": _l("no consent for this channel"), "not_active": _l("contact not active"),
    "no_number": _l("no current number"), "opted_out": _l("the person opted out"),
    "no_whatsapp_template": _l("no WhatsApp template or SMS consent"),
    "whatsapp_window_closed": _l("WhatsApp window closed"),
    "opted_out_before_send": _l("opted out just before sending"),
    # the dispatcher and Twilio
    "no_sender": _l("no sender for the country"), "too_late": _l("too late: past the campaign's maximum delay"),
    "rate_limited": _l("Twilio asked us to slow down; retried"), "too_many_attempts": _l("too many attempts"),
    "opted_out_at_twilio": _l("the person replied STOP to this sender"),
    "invalid_number": _l("invalid or landline number"), "undelivered": _l("not delivered by the carrier"),
    "failed_at_twilio": _l("failed at Twilio"), "error": _l("error from Twilio"),
    "lookup_ambiguous": _l("Twilio's answer was lost and two messages there could be this one: not sent again"),
    # the campaign
    "campaign_ended": _l("campaign ended"),
}
