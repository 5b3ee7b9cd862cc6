"""Settings read from the environment, with safe defaults for the embedded (SQLite + simulator) mode."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

# The simulator's account: fixed and obviously fake, so it can never be mistaken for a real one.
SIMULATOR_ACCOUNT_SID = "AC" + "0" * 32


def _secret_from_file(instance_path: Path, name: str, nbytes: int = 32) -> str:
    """Return the secret stored in instance/<name>, creating it on first run.

    The file is created with mode 0600 and written atomically so two processes starting at once
    end up with the same value.
    """
    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / name
    if not path.exists():
        value = secrets.token_urlsafe(nbytes)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        try:
            os.link(tmp, path)  # fails if another process won the race; theirs is kept
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_config(instance_path: Path, overrides: dict | None = None) -> dict:
    env = os.environ
    overrides = dict(overrides or {})
    cfg: dict = {}

    default_db = f"sqlite:///{instance_path / 'c4d.db'}"
    cfg["SQLALCHEMY_DATABASE_URI"] = overrides.pop("DATABASE_URL", None) or env.get("DATABASE_URL") or default_db
    cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    cfg["SECRET_KEY"] = env.get("SECRET_KEY") or _secret_from_file(instance_path, "secret_key")
    cfg["C4D_DATA_KEY"] = env.get("C4D_DATA_KEY") or _secret_from_file(instance_path, "data_key")
    cfg["C4D_PUBLIC_URL"] = env.get("C4D_PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/")

    cfg["TWILIO_ACCOUNT_SID"] = env.get("TWILIO_ACCOUNT_SID")
    cfg["TWILIO_AUTH_TOKEN"] = env.get("TWILIO_AUTH_TOKEN")
    cfg["TWILIO_API_BASE"] = env.get("TWILIO_API_BASE", "https://api.twilio.com").rstrip("/")
    cfg["TWILIO_MESSAGING_SERVICE_SID"] = env.get("TWILIO_MESSAGING_SERVICE_SID")
    cfg["TWILIO_SMS_FROM"] = env.get("TWILIO_SMS_FROM")
    cfg["TWILIO_WHATSAPP_FROM"] = env.get("TWILIO_WHATSAPP_FROM")
    # Short: Twilio answers a create in well under a second, and a call left hanging holds one of the
    # dispatcher's threads; an answer that does not come is reconciled by a lookup, never resent blindly.
    cfg["TWILIO_TIMEOUT_SECONDS"] = float(env.get("TWILIO_TIMEOUT_SECONDS", "5"))  # waiting for the answer
    cfg["TWILIO_CONNECT_TIMEOUT_SECONDS"] = float(env.get("TWILIO_CONNECT_TIMEOUT_SECONDS", "3"))
    # Dispatcher timing: how long a claimed send may take before it counts as uncertain, how long a
    # lookup must find nothing before an uncertain send goes again, and when a silent SQLite dispatcher's
    # lock may be taken over. Production keeps the defaults; tests of crashes shorten them.
    cfg["C4D_DISPATCH_LEASE_SECONDS"] = float(env.get("C4D_DISPATCH_LEASE_SECONDS", "60"))
    cfg["C4D_RECONCILE_GRACE_SECONDS"] = float(env.get("C4D_RECONCILE_GRACE_SECONDS", "10"))
    # A message Twilio accepted with no final status callback this long after: ask Twilio (lost callbacks).
    cfg["C4D_STATUS_CHECK_AFTER_MINUTES"] = float(env.get("C4D_STATUS_CHECK_AFTER_MINUTES", "30"))
    cfg["C4D_DISPATCH_LOCK_STALE_SECONDS"] = float(env.get("C4D_DISPATCH_LOCK_STALE_SECONDS", "30"))
    # The Twilio-compatible simulator (/simulator): on by default when no Twilio account is configured,
    # and then the channel talks to it with these simulator-only credentials (see messaging/channels).
    cfg["C4D_SIMULATOR"] = _bool(env.get("C4D_SIMULATOR"), default=not cfg["TWILIO_ACCOUNT_SID"])
    cfg["C4D_SIMULATOR_ACCOUNT_SID"] = SIMULATOR_ACCOUNT_SID
    cfg["C4D_SIMULATOR_AUTH_TOKEN"] = (env.get("C4D_SIMULATOR_AUTH_TOKEN")
                                       or _secret_from_file(instance_path, "simulator_token", 24))
    # Simulator faults and timing: the defaults; administrators change them at runtime on
    # /simulator/settings (checked by simulator/settings.py). Rates are shares from 0 to 1.
    for key, default in (("C4D_SIM_LATENCY_MS", "0"), ("C4D_SIM_RATE_429", "0"), ("C4D_SIM_RATE_500", "0"),
                         ("C4D_SIM_RATE_TIMEOUT", "0"), ("C4D_SIM_RATE_ACCEPTED_THEN_500", "0"),
                         ("C4D_SIM_RATE_ACCEPTED_THEN_TIMEOUT", "0"), ("C4D_SIM_RATE_21610", "0"),
                         ("C4D_SIM_RATE_UNDELIVERED", "0"), ("C4D_SIM_RATE_DUPLICATE", "0"),
                         ("C4D_SIM_RATE_REORDER", "0"), ("C4D_SIM_CALLBACK_DELAYS", "0.5,1.5,4"),
                         ("C4D_SIM_TIMEOUT_SECONDS", "")):
        cfg[key] = env.get(key, default)
    cfg["C4D_SIM_SEED"] = int(env["C4D_SIM_SEED"]) if env.get("C4D_SIM_SEED") else None
    cfg["C4D_SIM_CALLBACK_TIMEOUT"] = float(env.get("C4D_SIM_CALLBACK_TIMEOUT", "5"))
    cfg["C4D_SIM_CALLBACK_ATTEMPTS"] = int(env.get("C4D_SIM_CALLBACK_ATTEMPTS", "4"))
    cfg["C4D_SIM_CALLBACK_BACKOFF"] = float(env.get("C4D_SIM_CALLBACK_BACKOFF", "1"))
    cfg["C4D_SIM_CALLBACK_WORKERS"] = int(env.get("C4D_SIM_CALLBACK_WORKERS", "4"))

    https = urlsplit(cfg["C4D_PUBLIC_URL"]).scheme == "https"
    cfg["C4D_HTTPS"] = https
    cfg["SESSION_COOKIE_HTTPONLY"] = True
    cfg["SESSION_COOKIE_SAMESITE"] = "Lax"
    cfg["SESSION_COOKIE_SECURE"] = https
    # Under https a __Host- cookie: browsers take it only if Secure, for path / and without a Domain, so
    # another subdomain (or a page on plain http) cannot plant or overwrite it.
    cfg["SESSION_COOKIE_NAME"] = "__Host-c4d_session" if https else "c4d_session"
    cfg["SESSION_COOKIE_PATH"] = "/"
    cfg["SESSION_COOKIE_DOMAIN"] = None
    cfg["REMEMBER_COOKIE_DURATION"] = timedelta(seconds=0)
    cfg["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=12)
    # Server-side session limits (see auth.services): idle and absolute.
    cfg["C4D_SESSION_IDLE"] = timedelta(minutes=int(env.get("C4D_SESSION_IDLE_MINUTES", "30")))
    cfg["C4D_SESSION_ABSOLUTE"] = timedelta(hours=int(env.get("C4D_SESSION_ABSOLUTE_HOURS", "12")))

    # Whole-request cap; CSV imports have their own, lower cap checked with a clear message.
    cfg["MAX_CONTENT_LENGTH"] = int(env.get("C4D_MAX_REQUEST_MB", "12")) * 1024 * 1024
    cfg["MAX_FORM_MEMORY_SIZE"] = 2 * 1024 * 1024
    cfg["C4D_IMPORT_MAX_BYTES"] = int(env.get("C4D_IMPORT_MAX_MB", "10")) * 1024 * 1024
    cfg["C4D_IMPORT_MAX_ROWS"] = int(env.get("C4D_IMPORT_MAX_ROWS", "100000"))

    cfg["C4D_LOGIN_MAX_FAILURES"] = int(env.get("C4D_LOGIN_MAX_FAILURES", "5"))
    cfg["C4D_LOGIN_WINDOW"] = timedelta(minutes=int(env.get("C4D_LOGIN_WINDOW_MINUTES", "15")))
    cfg["C4D_LOGIN_MAX_FAILURES_PER_IP"] = int(env.get("C4D_LOGIN_MAX_FAILURES_PER_IP", "30"))
    cfg["C4D_LOGIN_MAX_DELAY"] = timedelta(seconds=int(env.get("C4D_LOGIN_MAX_DELAY_SECONDS", "60")))
    # Reverse proxies in front of the app (each adds one X-Forwarded-For hop): their number, so that login
    # limits and the audit log use the client's address. 0 believes no forwarded header at all.
    cfg["C4D_TRUSTED_PROXIES"] = int(env.get("C4D_TRUSTED_PROXIES", "0"))

    # How long a campaign report may show counts computed before the latest messages (reports.rollup).
    cfg["C4D_REPORT_REFRESH_SECONDS"] = int(env.get("C4D_REPORT_REFRESH_SECONDS", "300"))

    cfg["BABEL_DEFAULT_LOCALE"] = "es"
    cfg["BABEL_DEFAULT_TIMEZONE"] = "UTC"
    cfg["BABEL_TRANSLATION_DIRECTORIES"] = str(Path(__file__).resolve().parent.parent / "translations")
    cfg["WTF_CSRF_TIME_LIMIT"] = None  # tied to the session, which has its own timeouts
    cfg["JSON_SORT_KEYS"] = False
    # Argon2id parameters: RFC 9106 second recommended option (64 MiB, 3 passes); tests lower them.
    cfg["C4D_ARGON2"] = {"time_cost": 3, "memory_cost": 65536, "parallelism": 4}

    cfg.update(overrides)
    return cfg


UI_LOCALES = ("es", "en", "fr", "ht", "nl")
# Pages partners use are translated in all five; staff pages are complete in es, en, fr.
STAFF_LOCALES = ("es", "en", "fr")
