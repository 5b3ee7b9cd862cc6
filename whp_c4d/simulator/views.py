"""Twilio's Messages API, mounted at /simulator: the channel points TWILIO_API_BASE here when no Twilio
account is configured. Views are ``@public`` for the app's login and do Twilio's HTTP Basic auth."""

from __future__ import annotations

import hmac
from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, request

from ..core.permissions import public
from ..extensions import db
from . import services
from .services import DEFAULT_PAGE_SIZE, TwilioApiError

bp = Blueprint("simulator", __name__)

ACCOUNT = f"/{services.API_VERSION}/Accounts/<account_sid>"


def _error(exc: TwilioApiError):
    response = jsonify(exc.payload())
    response.status_code = exc.status
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response


def _same(given: str | None, expected: str) -> bool:
    return hmac.compare_digest((given or "").encode(), expected.encode())


def _check_auth(account_sid: str) -> None:
    """Twilio's rule: Basic auth with the account SID and its auth token, for that account's URLs."""
    cfg = current_app.config
    expected_sid, token = cfg["C4D_SIMULATOR_ACCOUNT_SID"], cfg["C4D_SIMULATOR_AUTH_TOKEN"]
    auth = request.authorization
    ok = (auth is not None and auth.type == "basic" and _same(auth.username, expected_sid)
          and _same(auth.password, token))
    if not ok or account_sid != expected_sid:
        raise TwilioApiError(20003, "Authenticate", 401)


@bp.post(f"{ACCOUNT}/Messages.json")
@public
def message_create(account_sid: str):
    form = request.form
    try:
        _check_auth(account_sid)
        message = services.create_message(
            account_sid, to=form.get("To"), from_=form.get("From"),
            messaging_service_sid=form.get("MessagingServiceSid"), body=form.get("Body"),
            media_urls=form.getlist("MediaUrl"), status_callback=form.get("StatusCallback"),
            content_sid=form.get("ContentSid"), content_variables=form.get("ContentVariables"),
            validity_period=form.get("ValidityPeriod"))
    except TwilioApiError as exc:
        db.session.rollback()
        return _error(exc)
    db.session.commit()
    return jsonify(services.message_resource(message)), 201


@bp.get(f"{ACCOUNT}/Messages/<message_sid>.json")
@public
def message_fetch(account_sid: str, message_sid: str):
    try:
        _check_auth(account_sid)
        message = services.get_message(account_sid, message_sid)
    except TwilioApiError as exc:
        return _error(exc)
    return jsonify(services.message_resource(message))


@bp.get(f"{ACCOUNT}/Messages.json")
@public
def message_list(account_sid: str):
    args = request.args
    filters = {k: args[k] for k in ("To", "From", "DateSent", "DateSent<", "DateSent>") if args.get(k)}
    try:
        _check_auth(account_sid)
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
    return jsonify({
        "first_page_uri": page_uri(0),
        "end": start + len(rows) - 1 if rows else start,
        "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        "messages": [services.message_resource(m) for m in rows],
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
