"""Segments: saved audience filters and the query they stand for."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from ..auth.models import User
from ..auth.services import audit
from ..core.errors import ServiceError
from ..core.models import utcnow
from ..extensions import db
from .models import Contact, ContactChannel, Segment, Tag, contact_tag
from .services import visible_contacts

FILTER_KEYS = ("countries", "languages", "channels", "tags", "consent", "active_within_days",
               "inactive_for_days")


def clean_filters(raw: dict[str, Any]) -> dict[str, Any]:
    """Keep known keys in a stable shape; lists are sorted, upper/lower-cased, de-duplicated."""
    out: dict[str, Any] = {}
    for key in ("countries", "languages", "channels", "tags"):
        values = raw.get(key) or []
        if isinstance(values, str):
            values = [v for v in values.replace(";", ",").split(",")]
        values = sorted({v.strip().upper() if key == "countries" else v.strip().lower() for v in values if v and v.strip()})
        if values:
            out[key] = values
    consent = raw.get("consent")
    if consent in ("campaigns", "polls"):
        out["consent"] = consent
    for key in ("active_within_days", "inactive_for_days"):
        try:
            n = int(raw.get(key) or 0)
        except (TypeError, ValueError):
            n = 0
        if n > 0:
            out[key] = min(n, 3650)
    return out


def filtered(query: sa.Select, filters: dict[str, Any]) -> sa.Select:
    f = clean_filters(filters)
    if f.get("countries"):
        query = query.where(Contact.country.in_(f["countries"]))
    if f.get("languages"):
        query = query.where(Contact.language.in_(f["languages"]))
    if f.get("channels") or f.get("consent"):
        cond = [ContactChannel.contact_id == Contact.id, ContactChannel.opted_out_at.is_(None)]
        if f.get("channels"):
            cond.append(ContactChannel.channel.in_(f["channels"]))
        if f.get("consent"):
            cond.append(getattr(ContactChannel, f["consent"]).is_(True))
        query = query.where(sa.exists().where(*cond))
    if f.get("tags"):
        query = query.where(sa.exists().where(
            contact_tag.c.contact_id == Contact.id, contact_tag.c.tag_id == Tag.id, Tag.name.in_(f["tags"])))
    now = utcnow()
    if f.get("active_within_days"):
        query = query.where(Contact.last_activity_at >= now - timedelta(days=f["active_within_days"]))
    if f.get("inactive_for_days"):
        cutoff = now - timedelta(days=f["inactive_for_days"])
        query = query.where(sa.func.coalesce(Contact.last_activity_at, Contact.created_at) < cutoff)
    return query


def count(user: User, filters: dict[str, Any]) -> int:
    q = filtered(visible_contacts(user), filters).with_only_columns(sa.func.count(Contact.id))
    return db.session.scalar(q.order_by(None)) or 0


def members(user: User, filters: dict[str, Any]) -> sa.Select:
    return filtered(visible_contacts(user), filters)


def save_segment(segment: Segment | None, *, name: str, filters: dict[str, Any], actor: User) -> Segment:
    name = name.strip()
    clash = db.session.scalar(sa.select(Segment.id).where(sa.func.lower(Segment.name) == name.lower()))
    if clash and (segment is None or segment.id != clash):
        raise ServiceError("segment_name_taken")
    created = segment is None
    segment = segment or Segment(created_by_id=actor.id)
    segment.name, segment.filters = name, clean_filters(filters)
    db.session.add(segment)
    db.session.flush()
    audit("segment.created" if created else "segment.updated", actor, target_type="segment", target_id=segment.id)
    return segment
