"""The Twilio channel: send and fetch messages with the official SDK, at Twilio or at the simulator.

The only module that imports ``twilio.rest``. ``TWILIO_API_BASE`` points the SDK at another host with
the same paths (the simulator, a test fake) through a custom HTTP client, the SDK's supported hook.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from . import FATAL, UNCERTAIN, SendError, SendResult, error_kind

DEFAULT_API_BASE = "https://api.twilio.com"
DEFAULT_TIMEOUT = 5.0  # seconds for Twilio's answer (TWILIO_TIMEOUT_SECONDS)
DEFAULT_CONNECT_TIMEOUT = 3.0  # seconds to connect (TWILIO_CONNECT_TIMEOUT_SECONDS)
_MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-f]{32}$")

log = logging.getLogger(__name__)


_gate = threading.local()


class _GatedAdapter(HTTPAdapter):
    """Runs the calling thread's gate (the dispatcher's pacing) at the last moment before the request
    goes on the wire: after the SDK has built it, so the time the SDK and requests spend preparing it,
    delayed by whatever else holds the interpreter, cannot bunch paced calls together at Twilio's end."""

    def send(self, request, *args, **kwargs):
        gate = getattr(_gate, "fn", None)
        if gate is not None:
            _gate.fn = None  # once per send, whatever happens next
            gate()
        return super().send(request, *args, **kwargs)


class BaseUrlHttpClient(TwilioHttpClient):
    """Sends every SDK request to ``api_base``: its scheme and host replace Twilio's, its path (if any,
    e.g. ``/simulator``) goes in front of the path the SDK built, and the query is kept. With the
    default base nothing is rewritten, so Twilio's other domains keep working."""

    def __init__(self, api_base: str = DEFAULT_API_BASE, *, timeout: float | None = None,
                 connect_timeout: float | None = None):
        super().__init__(pool_connections=True, timeout=timeout, logger=log)
        if timeout is not None and connect_timeout is not None:
            # requests' (connect, read): a host that does not answer the handshake is given up sooner
            # than an answer that is slow to come.
            self.timeout = (connect_timeout, timeout)
        base = urlsplit(api_base.rstrip("/"))
        if base.scheme not in ("http", "https") or not base.netloc:
            raise ValueError("TWILIO_API_BASE must be an http:// or https:// URL")
        self.api_base = urlunsplit((base.scheme, base.netloc, base.path, "", ""))
        self._base = base
        self._rewrites = self.api_base != DEFAULT_API_BASE
        # requests reads the proxy and CA-bundle environment on every call (a scan of os.environ, a
        # sixth of a send's CPU at hundreds per second); read it once here instead.
        self.proxy = {k: v for k, v in requests.utils.get_environ_proxies(self.api_base).items()
                      if k in ("http", "https", "all")}
        self.session.trust_env = False
        adapter = _GatedAdapter()
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True

    def rewrite(self, url: str) -> str:
        if not self._rewrites:
            return url
        parts = urlsplit(url)
        return urlunsplit((self._base.scheme, self._base.netloc, self._base.path + parts.path, parts.query, ""))

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        return super().request(method, self.rewrite(url), params=params, data=data, headers=headers, auth=auth,
                               timeout=timeout, allow_redirects=allow_redirects)

    # The SDK's own request log prints query parameters, and a ``To`` filter is a phone number.
    def log_request(self, kwargs) -> None:
        log.debug("twilio request %s %s", kwargs["method"], urlsplit(kwargs["url"]).path)

    def log_response(self, status_code, response) -> None:
        log.debug("twilio response %s", status_code)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


class TwilioChannel:
    """Sends one message per call; classifies every failure into a ``SendError`` kind."""

    def __init__(self, account_sid: str, auth_token: str, *, api_base: str = DEFAULT_API_BASE,
                 timeout: float | None = DEFAULT_TIMEOUT, connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT):
        self.account_sid = account_sid
        self.http_client = BaseUrlHttpClient(api_base, timeout=timeout, connect_timeout=connect_timeout)
        # A non-empty environment without TWILIO_* keys: the SDK must not pick up credentials, a region
        # or an edge from the process environment; the app's configuration is the one source.
        self.client = Client(account_sid, auth_token, http_client=self.http_client,
                             environment={"C4D_CONFIGURED": "1"})

    @classmethod
    def from_config(cls, config: Mapping) -> TwilioChannel:
        """Twilio with the configured account; without one, the simulator with its own credentials at
        ``C4D_PUBLIC_URL/simulator`` (or at ``TWILIO_API_BASE`` when that is set to another host)."""
        sid, token = config.get("TWILIO_ACCOUNT_SID"), config.get("TWILIO_AUTH_TOKEN")
        base = (config.get("TWILIO_API_BASE") or DEFAULT_API_BASE).rstrip("/")
        if sid and not token:
            raise RuntimeError("TWILIO_ACCOUNT_SID is set but TWILIO_AUTH_TOKEN is not")
        if not sid:
            sid, token = config["C4D_SIMULATOR_ACCOUNT_SID"], config["C4D_SIMULATOR_AUTH_TOKEN"]
            if base == DEFAULT_API_BASE:
                base = config["C4D_PUBLIC_URL"].rstrip("/") + "/simulator"
        return cls(sid, token, api_base=base, timeout=config.get("TWILIO_TIMEOUT_SECONDS", DEFAULT_TIMEOUT),
                   connect_timeout=config.get("TWILIO_CONNECT_TIMEOUT_SECONDS", DEFAULT_CONNECT_TIMEOUT))

    @property
    def api_base(self) -> str:
        return self.http_client.api_base

    def send(self, *, to: str, from_: str | None = None, messaging_service_sid: str | None = None,
             body: str | None = None, media_url: list[str] | None = None, content_sid: str | None = None,
             content_variables: Mapping | str | None = None, status_callback: str | None = None,
             validity_period: int | None = None, before_call: Callable[[], None] | None = None) -> SendResult:
        """Create one message. ``before_call`` runs right before the request leaves (the dispatcher's
        pacing), once, and not at all when the request fails before that."""
        if not from_ and not messaging_service_sid:
            raise ValueError("a message needs from_ or messaging_service_sid")
        if isinstance(content_variables, Mapping):
            content_variables = json.dumps(content_variables, ensure_ascii=False)
        fields = {"from_": from_, "messaging_service_sid": messaging_service_sid, "body": body,
                  "media_url": list(media_url) if media_url else None, "content_sid": content_sid,
                  "content_variables": content_variables, "status_callback": status_callback,
                  "validity_period": validity_period}
        _gate.fn = before_call
        try:
            message = self.client.messages.create(to=to, **{k: v for k, v in fields.items() if v is not None})
        except Exception as exc:  # noqa: BLE001 - every failure is classified; nothing else escapes
            raise _send_error(exc, "send") from None
        finally:
            _gate.fn = None
        return _result(message)

    def fetch(self, sid: str) -> SendResult:
        if not _MESSAGE_SID.match(sid or ""):
            raise ValueError("not a message SID")
        try:
            message = self.client.messages(sid).fetch()
        except Exception as exc:  # noqa: BLE001
            raise _send_error(exc, "fetch") from None
        return _result(message)

    def find(self, *, to: str, since: datetime, from_: str | None = None, limit: int = 100) -> list[SendResult]:
        """Messages to ``to`` (from ``from_`` when given) created at or after ``since``, newest first: how
        a send whose answer never arrived is found again before anything is resent. Listed by To and From
        and compared on ``date_created``, never filtered on ``DateSent``: Twilio leaves ``date_sent`` empty
        while a message waits in its queue, so a DateSent filter misses exactly the messages it accepted
        but has not sent yet, and a resend would duplicate them."""
        filters = {"to": to, "limit": limit, "page_size": min(limit, 100)}
        if from_:
            filters["from_"] = from_
        try:
            found = [_result(m) for m in self.client.messages.list(**filters)]
        except Exception as exc:  # noqa: BLE001
            raise _send_error(exc, "find") from None
        return [m for m in found if m.date_created is None or m.date_created >= since.replace(microsecond=0)]

    def close(self) -> None:
        self.http_client.close()


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _result(message) -> SendResult:
    return SendResult(sid=message.sid, status=str(message.status or ""), num_segments=_int(message.num_segments),
                      error_code=_int(message.error_code), body=getattr(message, "body", None),
                      date_created=getattr(message, "date_created", None))


def _send_error(exc: Exception, what: str) -> SendError:
    """Only the kind and the codes survive: Twilio's message text may quote the recipient's number."""
    if isinstance(exc, (TwilioRestException, TwilioServiceException)):
        status = _int(exc.status)
        code = _int(exc.code)
        if code is not None and code == status:  # the SDK puts the HTTP status there when Twilio gave no code
            code = None
        error = SendError(error_kind(code, status), code=code, http_status=status)
    elif isinstance(exc, requests.RequestException):  # timeout, refused, reset: did Twilio get it?
        error = SendError(UNCERTAIN)
        log.warning("twilio %s: %s", what, type(exc).__name__)
    elif isinstance(exc, (TwilioException, ValueError)):  # an unreadable answer to a request that was sent
        error = SendError(UNCERTAIN if what == "send" else FATAL)
        log.warning("twilio %s: unreadable response (%s)", what, type(exc).__name__)
    else:
        raise exc
    log.info("twilio %s failed: %s", what, error)
    return error
