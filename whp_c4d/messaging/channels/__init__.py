"""Channels: the providers messages leave through, behind one small interface.

There is one provider, Twilio (``channels.twilio``, the only module importing ``twilio.rest``); the
simulator speaks Twilio's API, so sends to it take exactly the code path real sends take. What a send
returns and how a failure is classified is provider-neutral and lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

#: What the dispatcher does with a failed send (see shared/guides/twilio.md, "Errors: what to do").
RETRY = "retry"                    # never processed (429, queue or rate limit): back off, send again
UNCERTAIN = "uncertain"            # may or may not have been accepted (5xx, timeout): reconcile first
OPTED_OUT = "opted_out"            # the person replied STOP to this sender: record it, never retry
INVALID_NUMBER = "invalid_number"  # invalid, not mobile, landline: flag the number, no retry
WINDOW = "window"                  # WhatsApp free text outside the 24-hour window: use a template
FATAL = "fatal"                    # anything else: fail the message, surface it to an administrator
KINDS = (RETRY, UNCERTAIN, OPTED_OUT, INVALID_NUMBER, WINDOW, FATAL)

_KIND_BY_CODE = {
    20429: RETRY, 63018: RETRY, 30001: RETRY, 21611: RETRY,
    21610: OPTED_OUT,
    21211: INVALID_NUMBER, 21614: INVALID_NUMBER, 21635: INVALID_NUMBER, 63003: INVALID_NUMBER,
    63016: WINDOW,
}


def error_kind(code: int | None, http_status: int | None) -> str:
    """Classify a provider error by its error code first, then by its HTTP status."""
    if code is not None and code in _KIND_BY_CODE:
        return _KIND_BY_CODE[code]
    if http_status == 429:
        return RETRY
    if http_status is None or http_status >= 500:
        return UNCERTAIN
    return FATAL


@dataclass(frozen=True)
class SendResult:
    """The provider's view of one message: right after the send, or fetched later."""

    sid: str
    status: str
    num_segments: int | None = None
    error_code: int | None = None
    # Filled by fetch and find, for reconciling a send whose reply was lost (never logged).
    body: str | None = None
    date_created: datetime | None = None


class SendError(Exception):
    """A send or fetch that failed. The text holds the kind and the codes only: never a number or
    message text (a provider's own error message may quote the number, so it is not kept)."""

    def __init__(self, kind: str, *, code: int | None = None, http_status: int | None = None):
        if kind not in KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        super().__init__(f"{kind} (code {code}, HTTP {http_status})")
        self.kind = kind
        self.code = code
        self.http_status = http_status

    @property
    def retryable(self) -> bool:
        return self.kind == RETRY


class Channel(Protocol):
    def send(self, *, to: str, from_: str | None = None, messaging_service_sid: str | None = None,
             body: str | None = None, media_url: list[str] | None = None, content_sid: str | None = None,
             content_variables: Mapping | str | None = None, status_callback: str | None = None,
             validity_period: int | None = None, before_call: Callable[[], None] | None = None) -> SendResult: ...

    def fetch(self, sid: str) -> SendResult: ...

    def find(self, *, to: str, since: datetime, from_: str | None = None) -> list[SendResult]: ...

    def close(self) -> None: ...


def auth_token(config: Mapping) -> str:
    """The token Twilio signs webhooks with: the configured account's, else the built-in simulator's
    (the one ``channel_from_config`` sends with, and the simulator signs its callbacks with)."""
    return config.get("TWILIO_AUTH_TOKEN") or config["C4D_SIMULATOR_AUTH_TOKEN"]


def channel_from_config(config: Mapping) -> Channel:
    """The channel the app's configuration asks for: Twilio, or the simulator when no account is set."""
    from .twilio import TwilioChannel

    return TwilioChannel.from_config(config)
