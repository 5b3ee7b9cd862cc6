"""Account, session, token and audit operations. Plain arguments in, plain results out; callers commit."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from ..core import retention
from ..core.crypto import keys, token_hash
from ..core.errors import ServiceError
from ..core.models import utcnow
from ..core.permissions import ROLES
from ..extensions import db
from .models import (
    ApiToken,
    AuditEvent,
    LoginAttempt,
    PartnerOrganisation,
    SetupToken,
    User,
    UserCountry,
    UserSession,
)

MIN_PASSWORD_LENGTH = 12


def _hasher() -> PasswordHasher:
    return PasswordHasher(**current_app.config["C4D_ARGON2"])


# A hash of a random password, verified against when the e-mail is unknown, so the response time
# does not tell whether an account exists.
_DUMMY: dict[str, str] = {}


def _dummy_hash() -> str:
    key = repr(current_app.config["C4D_ARGON2"])
    if key not in _DUMMY:
        _DUMMY[key] = _hasher().hash(secrets.token_urlsafe(16))
    return _DUMMY[key]


# --- audit -----------------------------------------------------------------------------------

def audit(action: str, actor: User | None = None, *, target_type: str | None = None,
          target_id: int | None = None, ip: str | None = None, **details: Any) -> AuditEvent:
    """Append one audit event. Details must never hold a phone number or message text."""
    event = AuditEvent(
        action=action,
        actor_id=actor.id if actor else None,
        actor_label=actor.email if actor else None,
        target_type=target_type,
        target_id=target_id,
        ip=mask_ip(ip),
        details=details,
    )
    db.session.add(event)
    db.session.flush()
    return event


def mask_ip(ip: str | None) -> str | None:
    """Keep the network part only: enough to spot abuse, not to identify a household."""
    if not ip:
        return None
    if ":" in ip:
        return ":".join(ip.split(":")[:3]) + "::/48"
    parts = ip.split(".")
    return ".".join(parts[:3]) + ".0/24" if len(parts) == 4 else None


# --- users -----------------------------------------------------------------------------------

def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ServiceError("password_too_short", min=MIN_PASSWORD_LENGTH)


def set_password(user: User, password: str) -> None:
    check_password_strength(password)
    user.password_hash = _hasher().hash(password)


def create_user(email: str, name: str, role: str, *, password: str | None = None,
                partner_id: int | None = None, countries: list[str] | None = None,
                ui_language: str | None = None, actor: User | None = None) -> User:
    email = normalise_email(email)
    if role not in ROLES:
        raise ServiceError("unknown_role", role=role)
    if "@" not in email or len(email) > 254:
        raise ServiceError("invalid_email")
    if db.session.scalar(sa.select(User.id).where(User.email == email)):
        raise ServiceError("email_taken")
    if role == "partner" and not partner_id:
        raise ServiceError("partner_needs_organisation")
    user = User(email=email, name=name.strip() or email, role=role, ui_language=ui_language,
                partner_id=partner_id if role == "partner" else None, active=True)
    if password is not None:
        set_password(user, password)
    user.country_limits = [UserCountry(country=c) for c in sorted(set(countries or []))] if role == "officer" else []
    db.session.add(user)
    db.session.flush()
    audit("user.created", actor, target_type="user", target_id=user.id, role=role)
    return user


def update_user(user: User, *, name: str, role: str, active: bool, partner_id: int | None,
                countries: list[str], ui_language: str | None, actor: User) -> User:
    if role not in ROLES:
        raise ServiceError("unknown_role", role=role)
    if role == "partner" and not partner_id:
        raise ServiceError("partner_needs_organisation")
    if user.id == actor.id and (role != user.role or not active):
        raise ServiceError("cannot_demote_self")
    if user.role != role:
        audit("user.role_changed", actor, target_type="user", target_id=user.id, old=user.role, new=role)
    if user.active and not active:
        audit("user.disabled", actor, target_type="user", target_id=user.id)
        revoke_sessions(user)
    elif not user.active and active:
        audit("user.enabled", actor, target_type="user", target_id=user.id)
    user.name, user.role, user.active = name.strip() or user.email, role, active
    user.partner_id = partner_id if role == "partner" else None
    user.ui_language = ui_language or None
    wanted = sorted(set(countries)) if role == "officer" else []
    if wanted != user.countries:
        audit("user.countries_changed", actor, target_type="user", target_id=user.id, countries=wanted)
        user.country_limits = [UserCountry(country=c) for c in wanted]
    db.session.flush()
    return user


def change_own_password(user: User, current: str, new: str) -> None:
    if not verify_password(user, current):
        raise ServiceError("wrong_password")
    set_password(user, new)
    audit("user.password_changed", user, target_type="user", target_id=user.id)


def verify_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        ok = _hasher().verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if ok and _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = _hasher().hash(password)
    return ok


# --- login, throttling, sessions ---------------------------------------------------------------

def _keyed(value: str) -> str:
    return hmac.new(keys().blind, value.encode(), hashlib.sha256).hexdigest()


@dataclass
class LoginResult:
    user: User | None
    token: str | None = None
    throttled: bool = False
    retry_after: int | None = None  # seconds: the account's growing delay (None: this client is stopped)
    second_step: str | None = None  # the password is right; two-step login still to do: "code" or "enrol"


def _failures(since: datetime, **where: str) -> int:
    q = sa.select(sa.func.count()).select_from(LoginAttempt).where(LoginAttempt.at >= since)
    for column, value in where.items():
        q = q.where(getattr(LoginAttempt, column) == value)
    return db.session.scalar(q) or 0


def client_throttled(email: str, ip: str | None, now: datetime | None = None) -> bool:
    """Hard limits per client: this address's failures on this account, and this address's failures on
    any account (someone trying many). Behind a proxy ``ip`` is the client's (``C4D_TRUSTED_PROXIES``)."""
    cfg = current_app.config
    since = (now or utcnow()) - cfg["C4D_LOGIN_WINDOW"]
    ip_hash = _keyed(ip or "-")
    if _failures(since, email_hash=_keyed(normalise_email(email)), ip_hash=ip_hash) >= cfg["C4D_LOGIN_MAX_FAILURES"]:
        return True
    return _failures(since, ip_hash=ip_hash) >= cfg["C4D_LOGIN_MAX_FAILURES_PER_IP"]


def account_delay(email: str, now: datetime | None = None) -> timedelta:
    """Account-wide, failures from anywhere make the next attempt wait, never block it: nothing up to the
    per-client limit, then 1, 2, 4… seconds after the latest failure, at most C4D_LOGIN_MAX_DELAY. So
    nobody who knows an address can lock its owner out; guessing from many addresses gets slow."""
    cfg = current_app.config
    now = now or utcnow()
    email_hash = _keyed(normalise_email(email))
    since = now - cfg["C4D_LOGIN_WINDOW"]
    failures = _failures(since, email_hash=email_hash)
    if failures < cfg["C4D_LOGIN_MAX_FAILURES"]:
        return timedelta(0)
    step = min(2 ** (failures - cfg["C4D_LOGIN_MAX_FAILURES"]), cfg["C4D_LOGIN_MAX_DELAY"].total_seconds())
    return timedelta(seconds=step)


def _account_wait(email: str, now: datetime) -> int:
    """Seconds the account must still wait before an attempt is heard (0: go)."""
    delay = account_delay(email, now)
    if not delay:
        return 0
    latest = db.session.scalar(sa.select(sa.func.max(LoginAttempt.at)).where(
        LoginAttempt.email_hash == _keyed(normalise_email(email))))
    left = (latest + delay - now).total_seconds() if latest else 0
    return max(0, int(left + 0.999))


def authenticate(email: str, password: str, ip: str | None) -> LoginResult:
    """Check credentials with throttling; on success open a server-side session. An attempt refused by
    a limit is not counted as a failure (it was not heard)."""
    email = normalise_email(email)
    now = utcnow()
    if client_throttled(email, ip, now):
        audit("login.throttled", None, ip=ip, email_hash=_keyed(email)[:12])
        return LoginResult(None, throttled=True)
    wait = _account_wait(email, now)
    if wait:
        audit("login.delayed", None, ip=ip, email_hash=_keyed(email)[:12], seconds=wait)
        return LoginResult(None, throttled=True, retry_after=wait)
    user = db.session.scalar(sa.select(User).where(User.email == email))
    if user is None:
        try:
            _hasher().verify(_dummy_hash(), password)
        except VerificationError:
            pass
        ok = False
    else:
        ok = verify_password(user, password) and user.active
    if not ok:
        record_failure(email, ip, user, now=now)
        return LoginResult(None)
    from . import mfa

    if mfa.enabled(user) or mfa.required(user):  # no session until the second step is done
        audit("login.password_ok", user, ip=ip, target_type="user", target_id=user.id)
        return LoginResult(user, second_step="code" if mfa.enabled(user) else "enrol")
    return LoginResult(user, complete_login(user, ip, now=now))


def record_failure(email: str, ip: str | None, user: User | None, *, now: datetime | None = None,
                   action: str = "login.failed") -> None:
    """A wrong password (or a wrong second-step code): counted for the limits, audited."""
    db.session.add(LoginAttempt(email_hash=_keyed(normalise_email(email)), ip_hash=_keyed(ip or "-"),
                                at=now or utcnow()))
    audit(action, user, ip=ip, target_type="user" if user else None, target_id=user.id if user else None)


def complete_login(user: User, ip: str | None, *, now: datetime | None = None, how: str = "password") -> str:
    """Every step passed: the account's failures are forgotten and a server-side session opens."""
    db.session.execute(sa.delete(LoginAttempt).where(LoginAttempt.email_hash == _keyed(user.email)))
    user.last_login_at = now or utcnow()
    token = open_session(user)
    audit("login.succeeded", user, ip=ip, target_type="user", target_id=user.id, how=how)
    return token


def open_session(user: User) -> str:
    token = secrets.token_urlsafe(32)
    db.session.add(UserSession(token_hash=token_hash(token), user_id=user.id))
    db.session.flush()
    user.session_token = token
    return token


def load_session(token: str, now: datetime | None = None) -> User | None:
    """The user behind a live session token, or None when revoked, timed out or disabled."""
    cfg = current_app.config
    now = now or utcnow()
    row = db.session.scalar(sa.select(UserSession).where(UserSession.token_hash == token_hash(token)))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    expired = (now - row.last_seen_at > cfg["C4D_SESSION_IDLE"]
               or now - row.created_at > cfg["C4D_SESSION_ABSOLUTE"])
    # Touch at most once a minute: a write per request would serialise SQLite for nothing. Written in
    # its own short transaction so it holds whether or not the request itself commits.
    if expired or now - row.last_seen_at > timedelta(minutes=1):
        values = {"revoked_at": now} if expired else {"last_seen_at": now}
        with db.engine.begin() as conn:
            conn.execute(sa.update(UserSession).where(UserSession.id == row.id).values(**values))
    if expired:
        return None
    row.user.session_token = token
    return row.user


def close_session(token: str) -> None:
    db.session.execute(
        sa.update(UserSession).where(UserSession.token_hash == token_hash(token), UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def revoke_sessions(user: User) -> None:
    db.session.execute(
        sa.update(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    # API tokens are kept: a disabled user's tokens are refused at use (user_for_api_token).


# --- first administrator ---------------------------------------------------------------------

def has_admin() -> bool:
    return bool(db.session.scalar(sa.select(User.id).where(User.role == "admin", User.active.is_(True)).limit(1)))


def create_setup_token(hours: int = 24) -> str:
    token = secrets.token_urlsafe(24)
    db.session.add(SetupToken(token_hash=token_hash(token), expires_at=utcnow() + timedelta(hours=hours)))
    db.session.flush()
    return token


def setup_token_valid(token: str) -> SetupToken | None:
    row = db.session.scalar(sa.select(SetupToken).where(SetupToken.token_hash == token_hash(token)))
    if row is None or row.used_at is not None or row.expires_at < utcnow() or has_admin():
        return None
    return row


def complete_setup(token: str, email: str, name: str, password: str) -> User:
    row = setup_token_valid(token)
    if row is None:
        raise ServiceError("setup_link_invalid")
    user = create_user(email, name, "admin", password=password)
    row.used_at = utcnow()
    return user


# --- partner organisations -------------------------------------------------------------------

def save_partner(org: PartnerOrganisation | None, *, name: str, country: str, active: bool,
                 actor: User) -> PartnerOrganisation:
    name = name.strip()
    clash = db.session.scalar(sa.select(PartnerOrganisation.id).where(
        sa.func.lower(PartnerOrganisation.name) == name.lower()))
    if clash and (org is None or clash != org.id):
        raise ServiceError("partner_name_taken")
    created = org is None
    org = org or PartnerOrganisation()
    org.name, org.country, org.active = name, country, active
    db.session.add(org)
    db.session.flush()
    audit("partner.created" if created else "partner.updated", actor, target_type="partner", target_id=org.id)
    return org


# --- API tokens ------------------------------------------------------------------------------

def create_api_token(user: User, name: str, actor: User | None = None) -> tuple[ApiToken, str]:
    secret = "c4d_" + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name.strip() or "token", prefix=secret[:10], token_hash=token_hash(secret))
    db.session.add(row)
    db.session.flush()
    audit("api_token.created", actor or user, target_type="user", target_id=user.id, token_id=row.id)
    return row, secret


def revoke_api_token(row: ApiToken, actor: User) -> None:
    row.revoked_at = utcnow()
    audit("api_token.revoked", actor, target_type="user", target_id=row.user_id, token_id=row.id)


def user_for_api_token(secret: str) -> User | None:
    row = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == token_hash(secret)))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=5):
        row.last_used_at = now
    return row.user


# --- retention of this domain's data ----------------------------------------------------------

def _purge_audit(cutoff: datetime) -> int:
    return db.session.execute(sa.delete(AuditEvent).where(AuditEvent.at < cutoff)).rowcount


def _purge_login_records(cutoff: datetime) -> int:
    n = db.session.execute(sa.delete(LoginAttempt).where(LoginAttempt.at < cutoff)).rowcount
    n += db.session.execute(sa.delete(UserSession).where(UserSession.last_seen_at < cutoff)).rowcount
    n += db.session.execute(sa.delete(SetupToken).where(SetupToken.expires_at < cutoff)).rowcount
    return n


def _register_retention() -> None:
    from flask_babel import lazy_gettext as _l

    retention.register(retention.DataKind("audit_log", lambda: _l("Audit log"), 730, _purge_audit, 90))
    retention.register(retention.DataKind("login_records", lambda: _l("Sessions and failed logins"),
                                          90, _purge_login_records, 1))


_register_retention()
