"""The simulator's fault injection and timing: defaults from the environment (``C4D_SIM_*``), changes
made at runtime by an administrator kept in the one ``simulator_settings`` row so every process agrees,
and one seeded ``random.Random`` per app so a test with a seed sees the same faults every run."""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

from flask import Flask, current_app

from ..extensions import db
from .models import SimulatorSettings

#: Create-time outcomes drawn with one random number per request, in this order.
OUTCOME_RATES = ("rate_429", "rate_500", "rate_timeout", "rate_accepted_then_500", "rate_accepted_then_timeout")
RATES = OUTCOME_RATES + ("rate_21610", "rate_undelivered", "rate_duplicate", "rate_reorder")

#: Application config key (= environment variable) of each setting.
CONFIG_KEYS = {
    "latency_ms": "C4D_SIM_LATENCY_MS",
    "rate_429": "C4D_SIM_RATE_429",
    "rate_500": "C4D_SIM_RATE_500",
    "rate_timeout": "C4D_SIM_RATE_TIMEOUT",
    "rate_accepted_then_500": "C4D_SIM_RATE_ACCEPTED_THEN_500",
    "rate_accepted_then_timeout": "C4D_SIM_RATE_ACCEPTED_THEN_TIMEOUT",
    "rate_21610": "C4D_SIM_RATE_21610",
    "rate_undelivered": "C4D_SIM_RATE_UNDELIVERED",
    "rate_duplicate": "C4D_SIM_RATE_DUPLICATE",
    "rate_reorder": "C4D_SIM_RATE_REORDER",
    "callback_delays": "C4D_SIM_CALLBACK_DELAYS",
    "timeout_seconds": "C4D_SIM_TIMEOUT_SECONDS",
}

DEFAULT_DELAYS = (0.5, 1.5, 4.0)  # sent, delivered, read: seconds after the message was created
MAX_LATENCY_MS = 60_000
MAX_DELAY = 86_400.0


class SettingsError(ValueError):
    """A setting that cannot be used; ``field`` names it, ``str()`` says why (no personal data)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{CONFIG_KEYS.get(field, field)}: {message}")
        self.field = field


@dataclass(frozen=True)
class SimSettings:
    latency_ms: tuple[int, int] = (0, 0)        # each API answer waits a random time in this range
    rate_429: float = 0.0                       # creates answered 429 / 20429, nothing stored
    rate_500: float = 0.0                       # creates answered 500, nothing stored
    rate_timeout: float = 0.0                   # creates held past the client's timeout, nothing stored
    rate_accepted_then_500: float = 0.0         # stored (and delivered), but the answer is a 500
    rate_accepted_then_timeout: float = 0.0     # stored (and delivered), but the answer comes too late
    rate_21610: float = 0.0                     # creates refused with 21610 (the person replied STOP)
    rate_undelivered: float = 0.0               # messages ending undelivered (30003) instead of delivered
    rate_duplicate: float = 0.0                 # each status callback posted twice
    rate_reorder: float = 0.0                   # "sent" posted after the final status
    callback_delays: tuple[float, float, float] = DEFAULT_DELAYS
    timeout_seconds: float = 20.0               # how long a "timeout" holds the answer

    def as_form(self) -> dict[str, str]:
        """Each setting written the way the environment and the settings page take it."""
        return {f.name: format_value(f.name, getattr(self, f.name)) for f in fields(self)}


def format_value(name: str, value) -> str:
    if name == "latency_ms":
        low, high = value
        return str(low) if low == high else f"{low}-{high}"
    if name == "callback_delays":
        return ",".join(_number(v) for v in value)
    return _number(value)


def _number(value: float) -> str:
    return f"{value:g}"


def parse_value(name: str, raw) -> object:
    """One setting from text (environment, form) or from its JSON value, or ``SettingsError``."""
    text = raw if isinstance(raw, str) else None
    if name == "latency_ms":
        if isinstance(raw, (list, tuple)):
            parts = [str(p) for p in raw]
        else:
            parts = [p.strip() for p in str(raw).replace("–", "-").split("-")]
        try:
            bounds = [int(p) for p in parts]
        except ValueError:
            raise SettingsError(name, "milliseconds, or a range such as 50-200") from None
        if len(bounds) == 1:
            bounds *= 2
        if len(bounds) != 2 or not 0 <= bounds[0] <= bounds[1] <= MAX_LATENCY_MS:
            raise SettingsError(name, f"milliseconds from 0 to {MAX_LATENCY_MS}, or a range low-high")
        return (bounds[0], bounds[1])
    if name == "callback_delays":
        parts = list(raw) if isinstance(raw, (list, tuple)) else [p for p in str(raw).split(",")]
        try:
            delays = tuple(float(p) for p in parts)
        except ValueError:
            raise SettingsError(name, "three numbers of seconds: sent,delivered,read") from None
        if len(delays) != 3 or not all(0 <= d <= MAX_DELAY for d in delays) or list(delays) != sorted(delays):
            raise SettingsError(name, "three increasing numbers of seconds: sent,delivered,read")
        return delays
    try:
        number = float(text.strip() if text is not None else raw)
    except (TypeError, ValueError):
        raise SettingsError(name, "a number") from None
    if name == "timeout_seconds":
        if not 0 < number <= 600:
            raise SettingsError(name, "seconds, more than 0 and at most 600")
        return number
    if not 0 <= number <= 1:
        raise SettingsError(name, "a rate from 0 to 1 (0.05 is 5%)")
    return number


def build(values: Mapping[str, object], base: SimSettings | None = None) -> SimSettings:
    """``base`` with ``values`` (text or JSON values by setting name) applied and checked as a whole."""
    known = {f.name for f in fields(SimSettings)}
    parsed = {name: parse_value(name, raw) for name, raw in values.items() if name in known and raw is not None}
    settings = replace(base or SimSettings(), **parsed)
    if sum(getattr(settings, r) for r in OUTCOME_RATES) > 1 + 1e-9:
        raise SettingsError("rates_total", "the rates of 429, 500, timeouts and accepted-then-lost answers "
                                           "add up to more than 1")
    return settings


def defaults(config: Mapping) -> SimSettings:
    """The settings the environment gives (``C4D_SIM_*``), before any change made on the settings page."""
    values = {name: config.get(key) for name, key in CONFIG_KEYS.items() if config.get(key) not in (None, "")}
    if "timeout_seconds" not in values:  # longer than the channel waits, so a "timeout" really is one
        values["timeout_seconds"] = float(config.get("TWILIO_TIMEOUT_SECONDS") or 15) + 5
    return build(values)


def _to_json(settings: SimSettings) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()}


def current() -> SimSettings:
    """The settings in force: the environment's defaults with the stored changes on top."""
    base = defaults(current_app.config)
    row = db.session.get(SimulatorSettings, 1)
    if row is None or not row.values:
        return base
    try:
        return build(row.values, base)
    except SettingsError:  # a stored value the code no longer accepts: the defaults are safe
        current_app.logger.warning("simulator settings row ignored: invalid values")
        return base


def save(values: Mapping[str, object]) -> SimSettings:
    """Check and store the changes (only what differs from the environment's defaults). Flushes."""
    base = defaults(current_app.config)
    settings = build(values, base)
    base_json, new_json = _to_json(base), _to_json(settings)
    changed = {k: v for k, v in new_json.items() if v != base_json[k]}
    row = db.session.get(SimulatorSettings, 1)
    if row is None:
        row = SimulatorSettings(id=1, values=changed)
        db.session.add(row)
    else:
        row.values = changed
    db.session.flush()
    return settings


def reset() -> None:
    """Back to the environment's defaults. Flushes."""
    row = db.session.get(SimulatorSettings, 1)
    if row is not None:
        db.session.delete(row)
        db.session.flush()


# --- randomness ----------------------------------------------------------------------------------

_RNG_KEY = "c4d_simulator_random"
_rng_lock = threading.Lock()


class _LockedRandom:
    """The app's ``random.Random`` behind a lock: request threads and the pump draw from it at once."""

    def __init__(self, seed: int | None):
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def random(self) -> float:
        with self._lock:
            return self._random.random()

    def uniform(self, a: float, b: float) -> float:
        with self._lock:
            return self._random.uniform(a, b)


def rng(app: Flask | None = None) -> _LockedRandom:
    """The app's simulator randomness, seeded with ``C4D_SIM_SEED`` when that is set."""
    app = app or current_app._get_current_object()
    found = app.extensions.get(_RNG_KEY)
    if found is None:
        with _rng_lock:
            found = app.extensions.get(_RNG_KEY)
            if found is None:
                seed = app.config.get("C4D_SIM_SEED")
                found = app.extensions[_RNG_KEY] = _LockedRandom(int(seed) if seed not in (None, "") else None)
    return found


def reseed(seed: int | None, app: Flask | None = None) -> None:
    """Start the app's simulator randomness again from ``seed`` (tests, benchmarks)."""
    app = app or current_app._get_current_object()
    with _rng_lock:
        app.extensions[_RNG_KEY] = _LockedRandom(seed)
