"""Request plumbing every page shares: permission enforcement, security headers, errors, health, logs."""

from __future__ import annotations

import logging
import re

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from ..config import UI_LOCALES
from ..extensions import db
from .database import database_state
from .permissions import can, public

bp = Blueprint("core", __name__)

# "+" and 7+ digits (E.164, spaced or not), or a bare run of 8-15 digits that is not part of an IP
# address, a date or a time.
_PHONE_LIKE = re.compile(r"\+\d[\d ()-]{6,}\d|(?<![\d.:/-])\d{8,15}(?![\d.:/-])")


class _RedactNumbers(logging.Filter):
    """Last line of defence: no phone-number-like digit run reaches a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if _PHONE_LIKE.search(msg):
            record.msg = _PHONE_LIKE.sub("[redacted-number]", msg)
            record.args = ()
        return True


class _DatabaseInt(IntegerConverter):
    """``<int:…>`` in our URLs: a number too large for the database is a 404, not a driver's error."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def configure_url_converters(app: Flask) -> None:
    """Before any blueprint adds its rules (they are compiled with the converters of that moment)."""
    app.url_map.converters["int"] = _DatabaseInt


class _TrustedProxies:
    """Werkzeug's ProxyFix with as many hops as ``C4D_TRUSTED_PROXIES`` says (read per request, so the
    setting is the configuration's): the client's address from X-Forwarded-For for login limits and the
    audit log, and the scheme from X-Forwarded-Proto. With 0 no forwarded header is believed."""

    def __init__(self, app: Flask):
        self.app, self.wsgi_app = app, app.wsgi_app
        self.fixed: dict[int, ProxyFix] = {}

    def __call__(self, environ, start_response):
        hops = int(self.app.config.get("C4D_TRUSTED_PROXIES") or 0)
        if hops <= 0:
            return self.wsgi_app(environ, start_response)
        fix = self.fixed.get(hops)
        if fix is None:
            fix = self.fixed[hops] = ProxyFix(self.wsgi_app, x_for=hops, x_proto=hops)
        return fix(environ, start_response)


def configure_proxies(app: Flask) -> None:
    app.wsgi_app = _TrustedProxies(app)


def configure_logging(app: Flask) -> None:
    redact = _RedactNumbers()
    for name in ("whp_c4d", "werkzeug", "gunicorn.access", "gunicorn.error", "apscheduler"):
        logging.getLogger(name).addFilter(redact)
    app.logger.addFilter(redact)


@bp.get("/healthz")
@public
def healthz():
    state = database_state()
    return jsonify(status="ok" if state["ok"] else "degraded", database=state), (200 if state["ok"] else 503)


@bp.post("/language")
@public
def set_language():
    """Lets a visitor (login page, partner form) pick the UI language before logging in."""
    code = request.form.get("language", "")
    if code in UI_LOCALES:
        session["ui_language"] = code
        if current_user.is_authenticated:
            current_user.ui_language = code
            db.session.commit()
    target = request.form.get("next") or ""
    return redirect(target if target.startswith("/") and not target.startswith("//") else url_for("reports.dashboard"))


def _api_user():
    from ..auth.services import user_for_api_token

    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    return user_for_api_token(header[7:].strip())


def _nul_paths(value, path: str = "") -> list[str]:
    """Where NUL characters are in a parsed value: field names, dotted for JSON (``steps.0.key``)."""
    if isinstance(value, str):
        return [path or "(value)"] if "\x00" in value else []
    if isinstance(value, dict):
        return [p for k, v in value.items()
                for p in ([f"{path}.{k}".lstrip(".") + " (name)"] if "\x00" in str(k) else [])
                + _nul_paths(v, f"{path}.{k}".lstrip("."))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nul_paths(v, f"{path}.{i}".lstrip("."))]
    return []


def refuse_nul_characters():
    """A NUL character is never part of a name, a number or a message, and PostgreSQL refuses it in text:
    a request carrying one in its URL, form or JSON gets a 400 naming the fields, never an error further
    down."""
    if request.endpoint in ("static", "inbound.inbound_message"):
        return None  # a person's message is never refused for it: the inbound service removes NULs
    def fields(multidict) -> dict:
        return {k: vs[0] if len(vs) == 1 else vs for k, vs in multidict.lists()}

    found = _nul_paths(fields(request.args))
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        found += _nul_paths(fields(request.form))
        if request.is_json:
            found += _nul_paths(request.get_json(silent=True))
    if not found:
        return None
    message = _("The request contains a character that is not allowed (NUL). Remove it and try again.")
    if request.path.startswith("/api/"):
        return jsonify(error="validation", message=message, fields={f: message for f in found}), 400
    return render_template("errors/error.html", code=400, message=message), 400


def enforce_permissions():
    """Every endpoint is public, authenticated, or needs an action from the permission map."""
    endpoint = request.endpoint
    if endpoint is None or endpoint == "static":
        return None
    view = current_app.view_functions[endpoint]
    if getattr(view, "c4d_public", False):
        return None
    is_api = endpoint.startswith("api.")
    if is_api:
        user = _api_user()
        if user is None:
            return jsonify(error="unauthorized", message=_("A valid API token is required.")), 401
        g.user = user
    else:
        user = current_user
        if not user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
        g.user = user
    if getattr(view, "c4d_authenticated", False):
        return None
    action = getattr(view, "c4d_action", None)
    if action is None or not can(user.role, action):
        from ..auth.services import audit

        audit("permission.refused", user, ip=request.remote_addr, endpoint=endpoint, method=request.method)
        db.session.commit()
        if is_api:
            return jsonify(error="forbidden", message=_("Your role does not allow this.")), 403
        return render_template("errors/error.html", code=403,
                               message=_("Your role does not allow this page or action.")), 403
    return None


def security_headers(response):
    h = response.headers
    h.setdefault("Content-Security-Policy",
                 "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                 "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if current_app.config.get("C4D_HTTPS"):
        h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if request.endpoint != "static":
        h.setdefault("Cache-Control", "no-store")
    return response


def register_request_hooks(app: Flask) -> None:
    from flask_babel import format_datetime, get_locale

    from ..core.i18n import country_name, language_name
    from .permissions import ROLE_LABELS

    app.before_request(refuse_nul_characters)
    app.before_request(enforce_permissions)
    app.jinja_env.globals["page_url"] = _page_url  # a global, so imported macros (the pager) see it
    app.jinja_env.filters["datetime"] = lambda value: format_datetime(value, "short") if value else ""
    app.after_request(security_headers)

    @app.context_processor
    def _globals():
        user = current_user
        return {
            "can": lambda action: bool(getattr(user, "is_authenticated", False) and can(user.role, action)),
            "language_name": language_name,
            "country_name": country_name,
            "ui_locales": UI_LOCALES,
            "get_locale": get_locale,
            "role_label": lambda role: ROLE_LABELS.get(role, role),
        }


def _page_url(page: int) -> str:
    """The current URL with every filter kept and only the page changed."""
    from urllib.parse import urlencode

    args = [(k, v) for k, v in request.args.items(multi=True) if k != "page"] + [("page", str(page))]
    return url_for(request.endpoint, **(request.view_args or {})) + "?" + urlencode(args)


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/healthz", "/twilio/"))


def register_error_handlers(app: Flask) -> None:
    messages = {
        400: lambda: _("The request could not be understood. Check what you entered and try again."),
        403: lambda: _("Your role does not allow this page or action."),
        404: lambda: _("This page does not exist, or you do not have access to it."),
        405: lambda: _("This action is not available this way."),
        413: lambda: _("What you sent is too large (the limit is %(mb)s MB). For contact lists, split the "
                       "file into smaller files.", mb=current_app.config["MAX_CONTENT_LENGTH"] // 1048576),
        429: lambda: _("Too many attempts. Wait a few minutes and try again."),
        500: lambda: _("Something went wrong on our side. Nothing you saved before was lost; try again."),
    }

    def render(code: int, message: str):
        if _wants_json():
            return jsonify(error=code, message=message), code
        return render_template("errors/error.html", code=code, message=message), code

    @app.errorhandler(CSRFError)
    def _csrf(exc):
        return render(400, _("The form expired or was sent from elsewhere. Go back, reload the page and "
                             "send it again."))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        code = exc.code or 500
        text = messages.get(code)
        return render(code, text() if text else exc.description or "")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error on %s", request.endpoint)
        return render(500, messages[500]())
