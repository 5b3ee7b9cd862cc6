"""Two-step login: a time-based one-time code (TOTP, RFC 6238) from an authenticator app, or one of ten
one-time recovery codes.

Administrators must use it (enrolment at their first login); for the other staff roles an administrator
decides (``MfaPolicy``). It is asked for once per login and remembered for that server-side session only.
The secret is encrypted at rest like a phone number; recovery codes are kept as keyed hashes; a code is
accepted once (the last accepted time step is stored), within one step of clock drift either way.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp
import segno
import sqlalchemy as sa

from ..core.crypto import keys
from ..core.models import utcnow
from ..extensions import db
from .models import MfaPolicy, RecoveryCode, User

ISSUER = "WHP C4D"
RECOVERY_CODES = 10
DRIFT_STEPS = 1  # a code of the step before or after is accepted: phones' clocks drift
STAFF_ROLES = ("officer", "evaluator")  # roles an administrator may require it of (partners log in rarely)


def required(user: User) -> bool:
    """Whether this user must use two-step login: administrators always, other roles by policy."""
    if user.role == "admin":
        return True
    return bool(db.session.scalar(sa.select(MfaPolicy.required).where(MfaPolicy.role == user.role)))


def enabled(user: User) -> bool:
    return user.mfa_enabled_at is not None and bool(user.mfa_secret)


def policy() -> dict[str, bool]:
    rows = dict(db.session.execute(sa.select(MfaPolicy.role, MfaPolicy.required)).all())
    return {role: bool(rows.get(role, False)) for role in STAFF_ROLES}


def set_policy(role: str, is_required: bool, actor: User) -> None:
    from .services import audit

    if role not in STAFF_ROLES:
        raise ValueError(role)
    row = db.session.get(MfaPolicy, role) or MfaPolicy(role=role)
    if row.required != is_required or row.updated_at is None:
        row.required, row.updated_at = is_required, utcnow()
        db.session.add(row)
        audit("mfa.policy_changed", actor, role=role, required=is_required)


# --- enrolment ------------------------------------------------------------------------------------

def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The enrolment QR code as an inline SVG, drawn here: no image from anywhere else."""
    return segno.make(uri, error="m").svg_inline(scale=5, border=2, dark="#0b2540", light="#ffffff",
                                                 omitsize=True)  # a viewBox: the page sizes it


def _step(code: str, secret: str, now: datetime, last_step: int | None) -> int | None:
    """The time step ``code`` is valid for (within the drift), if it is after ``last_step``."""
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // totp.interval
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and (last_step is None or step > last_step):
            return step
    return None


def enrol(user: User, secret: str, code: str, now: datetime | None = None) -> list[str] | None:
    """Turn two-step login on with ``secret`` if ``code`` proves the app has it; returns the recovery
    codes (shown once), or None when the code is wrong. Flushes; audited."""
    from .services import audit

    now = now or utcnow()
    step = _step(code, secret, now, None)
    if step is None:
        return None
    user.mfa_secret, user.mfa_enabled_at, user.mfa_last_step = secret, now, step
    codes = _new_recovery_codes(user)
    audit("mfa.enrolled", user, target_type="user", target_id=user.id)
    return codes


def _recovery_hash(code: str) -> str:
    normal = "".join(ch for ch in (code or "").lower() if ch.isalnum())
    return hmac.new(keys().blind, ("mfa-recovery:" + normal).encode(), hashlib.sha256).hexdigest()


def _new_recovery_codes(user: User) -> list[str]:
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud or typed from paper
    codes = ["".join(secrets.choice(alphabet) for _ in range(5)) + "-" + "".join(secrets.choice(alphabet)
                                                                                  for _ in range(5))
             for _ in range(RECOVERY_CODES)]
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_recovery_hash(c)) for c in codes)
    db.session.flush()
    return codes


# --- logging in -------------------------------------------------------------------------------------

def check(user: User, code: str, now: datetime | None = None) -> str | None:
    """The second step: a code from the app (``"totp"``) or an unused recovery code (``"recovery"``, then
    spent); None when neither. Flushes; a recovery code's use is audited."""
    from .services import audit

    now = now or utcnow()
    if not enabled(user):
        return None
    step = _step(code, user.mfa_secret, now, user.mfa_last_step)
    if step is not None:
        user.mfa_last_step = step
        return "totp"
    row = db.session.scalar(sa.select(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _recovery_hash(code), RecoveryCode.used_at.is_(None)))
    if row is None:
        return None
    row.used_at = now
    left = db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)))
    audit("mfa.recovery_used", user, target_type="user", target_id=user.id, left=left)
    return "recovery"


def recovery_codes_left(user: User) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) or 0


def reset(user: User, actor: User | None) -> None:
    """Turn two-step login off (a lost phone and no recovery code): the user enrols again at their next
    login if their role requires it. Their sessions end. Audited."""
    from .services import audit, revoke_sessions

    user.mfa_secret = user.mfa_enabled_at = user.mfa_last_step = None
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    revoke_sessions(user)
    audit("mfa.reset", actor, target_type="user", target_id=user.id)
