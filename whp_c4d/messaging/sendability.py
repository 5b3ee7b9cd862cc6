"""One sendability decision: may this message go to this person, on which channel and in which form?

The same pure function answers the dispatcher's last check before a call, the checks before approval,
the cost estimate and the progress page's "cannot be reached", so a campaign that passes its checks is
one the dispatcher sends. It reads nothing from the database: callers describe the person and the
message, the rules are here.

- An **answer** (``purpose = "reply"``) needs no campaign consent (the person wrote to us), but an
  answer queued before the person opted out of that channel never goes; WhatsApp free text only
  inside the 24-hour window.
- A **campaign message** (``campaigns``, ``polls``) needs an active person with consent for that
  purpose on the channel. On WhatsApp: free text inside the 24-hour window, else the approved template
  for the language, else the SMS fallback if the campaign has one and the person consented to SMS,
  else nothing. Before a send the window cannot be known: the checks and the estimate take it as
  closed, so they never promise more than the dispatcher does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..audience.models import Contact

WHATSAPP_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class ChannelState:
    """What we know of a person on one channel."""

    consented: bool = False  # consent for the message's purpose (campaigns, polls), not opted out
    opted_out_at: datetime | None = None
    last_inbound_at: datetime | None = None

    def window_open(self, now: datetime | None) -> bool:
        """Whether the person wrote to us on this channel in the last 24 hours (None: unknown, closed)."""
        return now is not None and self.last_inbound_at is not None and now - self.last_inbound_at < WHATSAPP_WINDOW


@dataclass(frozen=True)
class Message:
    """What is to be sent, as far as the decision cares."""

    purpose: str                     # campaigns | polls | reply
    channel: str                     # the planned channel
    has_text: bool = True            # SMS text, or WhatsApp free text
    has_template: bool = False       # an approved WhatsApp template for the language
    has_fallback: bool = False       # an SMS text to send when WhatsApp cannot go
    created_at: datetime | None = None


@dataclass(frozen=True)
class Route:
    channel: str
    form: str  # "text" (SMS, or WhatsApp free text), "template" (WhatsApp), "fallback" (SMS instead of WhatsApp)


def decide(message: Message, *, active: bool, has_number: bool, channels: Mapping[str, ChannelState],
           now: datetime | None) -> Route | str:
    """The route the message takes now, or the reason it cannot go. ``now`` None: at planning time,
    when the WhatsApp window cannot be known (taken as closed)."""
    if message.purpose != "reply" and not active:
        return "not_active"
    if not has_number:
        return "no_number"
    state = channels.get(message.channel) or ChannelState()
    if message.purpose == "reply":
        if state.opted_out_at is not None and (message.created_at is None or message.created_at < state.opted_out_at):
            return "opted_out"
        if message.channel == "whatsapp" and not state.window_open(now):
            return "whatsapp_window_closed"
        return Route(message.channel, "text")
    if message.channel == "whatsapp":
        if state.consented:
            if message.has_text and state.window_open(now):
                return Route("whatsapp", "text")
            if message.has_template:
                return Route("whatsapp", "template")
        sms = channels.get("sms") or ChannelState()
        if message.has_fallback and sms.consented:
            return Route("sms", "fallback")
        if state.consented:
            return "no_whatsapp_template"
        return "opted_out" if state.opted_out_at is not None else "no_consent"
    if state.consented:
        return Route(message.channel, "text")
    return "opted_out" if state.opted_out_at is not None else "no_consent"


# --- describing what the database holds ---------------------------------------------------------------

def states_of(contact: Contact, purpose: str) -> dict[str, ChannelState]:
    """A contact's channels as the decision sees them, for a message of ``purpose``."""
    consenting = purpose in ("campaigns", "polls")
    return {c.channel: ChannelState(consented=consenting and c.opted_out_at is None and bool(getattr(c, purpose)),
                                    opted_out_at=c.opted_out_at, last_inbound_at=c.last_inbound_at)
            for c in contact.channels}


def message_of(row) -> Message:
    """An outbox row as the decision sees it."""
    return Message(purpose=row.purpose, channel=row.channel, has_text=bool(row.body),
                   has_template=bool(row.template_sid), has_fallback=bool(row.sms_fallback_body),
                   created_at=row.created_at)


def whatsapp_window_open(contact: Contact, now: datetime) -> bool:
    """Whether the person wrote to us on WhatsApp in the last 24 hours: then free text may go."""
    state = contact.channel("whatsapp")
    return state is not None and ChannelState(last_inbound_at=state.last_inbound_at).window_open(now)
