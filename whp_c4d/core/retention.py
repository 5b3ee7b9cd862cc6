"""Retention periods per kind of data, and the registry of purgers domains plug in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .models import UTCDateTime, utcnow


class RetentionPolicy(db.Model):
    __tablename__ = "retention_policy"

    kind: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    days: Mapped[int] = mapped_column(sa.Integer)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


@dataclass(frozen=True)
class DataKind:
    kind: str
    label: Callable[[], str]  # lazy, translated
    default_days: int
    purge: Callable[[datetime], int]  # deletes what is older than the cutoff, returns the count
    minimum_days: int = 1


_KINDS: dict[str, DataKind] = {}


def register(kind: DataKind) -> None:
    _KINDS[kind.kind] = kind


def kinds() -> list[DataKind]:
    return sorted(_KINDS.values(), key=lambda k: k.kind)


def policies() -> list[tuple[DataKind, RetentionPolicy]]:
    """Every registered kind with its policy row, creating rows with the defaults when missing."""
    rows = {p.kind: p for p in db.session.scalars(sa.select(RetentionPolicy))}
    out = []
    for k in kinds():
        row = rows.get(k.kind)
        if row is None:
            row = RetentionPolicy(kind=k.kind, days=k.default_days, enabled=True)
            db.session.add(row)
        out.append((k, row))
    db.session.flush()
    return out


def set_policy(kind: str, days: int, enabled: bool) -> RetentionPolicy:
    k = _KINDS[kind]
    if days < k.minimum_days:
        raise ValueError(kind)
    row = db.session.get(RetentionPolicy, kind) or RetentionPolicy(kind=kind)
    row.days, row.enabled = days, enabled
    db.session.add(row)
    db.session.flush()
    return row


def purge(now: datetime | None = None) -> dict[str, int]:
    """Run every enabled purger; returns rows removed per kind. The caller commits."""
    now = now or utcnow()
    result = {}
    for k, row in policies():
        if row.enabled:
            result[k.kind] = k.purge(now - timedelta(days=row.days))
    return result
