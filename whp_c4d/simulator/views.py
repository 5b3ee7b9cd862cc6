"""Twilio's Messages API, mounted at /simulator: the channel points TWILIO_API_BASE here when no Twilio
account is configured. Views are ``@public`` for the app's login and do Twilio's HTTP Basic auth.

Credentials: any Account SID (the URL's must be the one authenticated); the auth token must be
``TWILIO_AUTH_TOKEN`` when that is configured, else any token is accepted. Faults (latency, 429, 500,
timeouts, accepted-then-lost answers) follow the settings in force (``settings.current()``); they apply
to creates, the latency to every call.
"""

from __future__ import annotations

import hmac
import time
from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, request

from ..core.permissions import public
from ..extensions import db
from . import services
from . import settings as sim_settings
from .services import DEFAULT_PAGE_SIZE, TwilioApiError
from .signature import signing_token

bp = Blueprint("simulator", __name__)

ACCOUNT = f"/{services.API_VERSION}/Accounts/<account_sid>"


@bp.record_once
def _check_settings(state) -> None:
    """A malformed C4D_SIM_* variable stops the start with its name, not the first send with a 500."""
    sim_settings.defaults(state.app.config)


def _error(exc: TwilioApiError):
    response = jsonify(exc.payload())
    response.status_code = exc.status
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response


def _same(given: str | None, expected: str) -> bool:
    return hmac.compare_digest((given or "").encode(), expected.encode())


def _check_auth(account_sid: str) -> None:
    """Twilio's rule, for that account's URLs: HTTP Basic with the account SID and its auth token, compared
    in constant time. The token is the configured TWILIO_AUTH_TOKEN, else the simulator's own generated
    one (``C4D_SIMULATOR_AUTH_TOKEN``, what the app's channel sends): never "any password", since the
    simulator's messages hold real-looking numbers and texts. Any account SID with the token works, and
    sees its own messages only."""
    token = signing_token(current_app.config)
    auth = request.authorization
    ok = (auth is not None and auth.type == "basic" and bool(auth.username) and _same(auth.username, account_sid)
          and bool(token) and _same(auth.password, token))
    if not ok:
        raise TwilioApiError(20003, "Authenticate", 401)


def _settings() -> sim_settings.SimSettings:
    settings = sim_settings.current()
    delay = services.latency_seconds(settings)
    if delay:
        time.sleep(delay)
    return settings


def _server_error(status: int = 500):
    exc = TwilioApiError(20500, "An internal server error has occurred", status)
    return _error(exc)


@bp.post(f"{ACCOUNT}/Messages.json")
@public
def message_create(account_sid: str):
    form = request.form
    try:
        _check_auth(account_sid)
    except TwilioApiError as exc:
        return _error(exc)
    settings = _settings()
    db.session.commit()  # nothing held open while a fault makes the caller wait
    outcome = services.draw_outcome(settings)
    if outcome == "429":
        return _error(TwilioApiError(20429, "Too Many Requests", 429))
    if outcome == "500":
        return _server_error()
    if outcome == "timeout":  # held past the caller's timeout; it has hung up by the time this answers
        time.sleep(settings.timeout_seconds)
        return _server_error(504)
    try:
        message = services.create_message(
            account_sid, to=form.get("To"), from_=form.get("From"),
            messaging_service_sid=form.get("MessagingServiceSid"), body=form.get("Body"),
            media_urls=form.getlist("MediaUrl"), status_callback=form.get("StatusCallback"),
            content_sid=form.get("ContentSid"), content_variables=form.get("ContentVariables"),
            validity_period=form.get("ValidityPeriod"), settings=settings)
    except TwilioApiError as exc:
        db.session.rollback()
        return _error(exc)
    resource = services.message_resource(message)
    db.session.commit()
    if outcome == "accepted_then_500":  # stored and on its way, but the caller never learns it
        return _server_error()
    if outcome == "accepted_then_timeout":
        time.sleep(settings.timeout_seconds)
    return jsonify(resource), 201


@bp.get(f"{ACCOUNT}/Messages/<message_sid>.json")
@public
def message_fetch(account_sid: str, message_sid: str):
    try:
        _check_auth(account_sid)
        _settings()
        message = services.get_message(account_sid, message_sid)
    except TwilioApiError as exc:
        return _error(exc)
    resource = services.message_resource(message)
    db.session.commit()  # statuses that fell due since the last look
    return jsonify(resource)


@bp.get(f"{ACCOUNT}/Messages.json")
@public
def message_list(account_sid: str):
    args = request.args
    filters = {k: args[k] for k in ("To", "From", "DateSent", "DateSent<", "DateSent>") if args.get(k)}
    try:
        _check_auth(account_sid)
        _settings()
        page = _int_arg("Page", 0)
        page_size = _int_arg("PageSize", DEFAULT_PAGE_SIZE)
        rows, more = services.list_messages(
            account_sid, to=filters.get("To"), from_=filters.get("From"), page=page, page_size=page_size,
            dates=services.DateFilter(on=filters.get("DateSent"), before=filters.get("DateSent<"),
                                      after=filters.get("DateSent>")))
    except TwilioApiError as exc:
        return _error(exc)

    base = f"/{services.API_VERSION}/Accounts/{account_sid}/Messages.json"

    def page_uri(n: int) -> str:
        return base + "?" + urlencode({**filters, "PageSize": page_size, "Page": n})

    start = page * page_size
    messages = [services.message_resource(m) for m in rows]
    db.session.commit()  # statuses that fell due since the last look
    return jsonify({
        "first_page_uri": page_uri(0),
        "end": start + len(rows) - 1 if rows else start,
        "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        "messages": messages,
        "uri": page_uri(page),
        "page_size": page_size,
        "start": start,
        "next_page_uri": page_uri(page + 1) if more else None,
        "page": page,
    })


def _int_arg(name: str, default: int) -> int:
    value = request.args.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise TwilioApiError(20001, f"Invalid value for parameter {name}") from None
