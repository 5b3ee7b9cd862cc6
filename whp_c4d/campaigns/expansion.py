"""Expanding a step occurrence into the outbox: one row per recipient, in bulk, at most once."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..core.models import utcnow
from ..extensions import db
from ..messaging.models import OutboundMessage
from .models import Step
from .planning import PlannedGroup, plan_recipients, purpose_of

BATCH = 1000


def occurrence_key(step: Step, occurrence: date | None) -> str:
    """What makes an occurrence unique: its date for dated and recurring steps; drip steps happen once
    per contact."""
    if step.timing_type == "drip":
        return "drip"
    if step.timing_type == "at":
        return step.at_date.isoformat()
    if occurrence is None:
        raise ValueError("a recurring step needs the occurrence date")
    return occurrence.isoformat()


def _insert(rows: list[tuple[int, dict]]) -> int:
    """Insert outbox rows, skipping those the occurrence already has; returns how many were added.

    ``rows``: (contact id, the row's other columns), in the order the rows should get their ids; rows
    that differ only by contact share one dict (a step's rows come in a few such groups).

    The unique (step, contact, occurrence) constraint is what makes expansion exactly-once, even when
    several workers sweep at the same time: ON CONFLICT DO NOTHING skips (or, on PostgreSQL, waits for
    and then skips) a row another transaction holds. The count is the statement's rowcount, which
    counts only the rows this call really inserted (never those another worker added meanwhile).

    PostgreSQL: one INSERT … SELECT per batch that joins the contact ids (with the number of their
    group) to the groups' columns, all passed as arrays: a few dozen parameters, where a multi-row
    VALUES had ~23,000 placeholders for psycopg to parse and the server to plan for every batch, and an
    executemany a round trip of 23 parameters per row. ORDER BY keeps the ids in the order given (the
    dispatcher sends rows due at the same time in id order, as before: by contact).
    SQLite: an executemany of the plain INSERT on the driver's cursor, each group's values converted
    once by SQLAlchemy's own bind processors (sqlite3 sums the rowcount over the rows)."""
    if not rows:
        return 0
    if db.engine.dialect.name == "postgresql":
        number: dict[int, int] = {}  # id() of a group's dict -> its position in ``groups``, from 1
        groups: list[dict] = []
        of_row = []
        for _contact_id, columns in rows:
            n = number.get(id(columns))
            if n is None:
                groups.append(columns)
                n = number[id(columns)] = len(groups)
            of_row.append(n)
        names = tuple(groups[0])
        params = {"contact_ids": ",".join(str(contact_id) for contact_id, _ in rows),
                  "groups": ",".join(map(str, of_row)),
                  **{f"g{i}": [g[name] for g in groups] for i, name in enumerate(names)}}
        result = db.session.execute(_grouped_insert(names), params, execution_options={"preserve_rowcount": True})
    else:
        sql, order = _sqlite_insert(tuple(rows[0][1]))
        bound: dict[int, tuple[tuple, tuple]] = {}  # id() of a group's dict -> its values, converted once
        values = []
        for contact_id, columns in rows:
            around = bound.get(id(columns))
            if around is None:
                around = bound[id(columns)] = _bind(columns, order)
            values.append((*around[0], contact_id, *around[1]))
        result = db.session.connection().exec_driver_sql(sql, values, execution_options={"preserve_rowcount": True})
    if result.rowcount < 0:  # pragma: no cover - a driver that does not report it
        raise RuntimeError("the database driver did not report how many rows were inserted")
    return result.rowcount


@functools.cache
def _sqlite_insert(names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The INSERT … ON CONFLICT DO NOTHING for SQLite, and its parameters' order."""
    stmt = sqlite.insert(OutboundMessage.__table__).on_conflict_do_nothing(
        index_elements=["step_id", "contact_id", "occurrence"])
    compiled = stmt.compile(dialect=db.engine.dialect, column_keys=[*names, "contact_id"])
    order = tuple(compiled.positiontup)
    assert sorted(order) == sorted([*names, "contact_id"]), order  # no column defaults left to SQLAlchemy
    return str(compiled), order


def _bind(columns: dict, order: tuple[str, ...]) -> tuple[tuple, tuple]:
    """A group's values as the driver gets them (SQLAlchemy's conversions: JSON, UTC datetimes…), split
    around the contact id."""
    dialect, table = db.engine.dialect, OutboundMessage.__table__
    out = []
    for name in order:
        if name == "contact_id":
            continue
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        out.append(process(columns[name]) if process else columns[name])
    at = order.index("contact_id")
    return tuple(out[:at]), tuple(out[at:])


@functools.cache
def _grouped_insert(names: tuple[str, ...]) -> sa.Insert:
    """INSERT INTO outbound_message (names…, contact_id)
       SELECT g.names…, r.contact_id
       FROM unnest(string_to_array(:contact_ids, ',')::int[], string_to_array(:groups, ',')::int[])
            WITH ORDINALITY AS r(contact_id, grp, position)
       JOIN unnest(:g0, :g1, …) WITH ORDINALITY AS g(names…, grp) ON g.grp = r.grp
       ORDER BY r.position ON CONFLICT (step_id, contact_id, occurrence) DO NOTHING"""
    table = OutboundMessage.__table__

    def numbers(name: str):
        return sa.cast(sa.func.string_to_array(sa.bindparam(name, type_=sa.Text), ","), postgresql.ARRAY(sa.Integer))

    r = sa.func.unnest(numbers("contact_ids"), numbers("groups")).table_valued(
        "contact_id", "grp", with_ordinality="position").render_derived(name="r")
    g = sa.func.unnest(*[sa.bindparam(f"g{i}", type_=postgresql.ARRAY(table.c[name].type))
                         for i, name in enumerate(names)]).table_valued(
        *names, with_ordinality="grp").render_derived(name="g")
    select = (sa.select(*[g.c[name] for name in names], r.c.contact_id).select_from(r.join(g, g.c.grp == r.c.grp))
              .order_by(r.c.position))
    return postgresql.insert(table).from_select([*names, "contact_id"], select).on_conflict_do_nothing(
        index_elements=["step_id", "contact_id", "occurrence"])


def expand_step(step: Step, occurrence: date | None = None, *, contact_ids: list[int] | None = None) -> int:
    """Put one outbound message per planned recipient into the outbox; a second expansion of the same
    occurrence adds nothing (unique step, contact, occurrence). Returns how many rows were added.
    The caller commits (one transaction per expansion)."""
    key = occurrence_key(step, occurrence)
    purpose = purpose_of(step)
    campaign = step.campaign
    now = utcnow()
    delay = timedelta(hours=campaign.max_delay_hours or 24)
    templates: dict[PlannedGroup, dict] = {}  # rows of a group differ only by their contact

    def template(p: PlannedGroup) -> dict:
        expires = p.earliest_utc + delay
        if campaign.end_date:  # nothing goes out after the campaign's last day, in the person's own zone
            end = datetime.combine(campaign.end_date + timedelta(days=1), time(0), tzinfo=ZoneInfo(p.timezone))
            expires = min(expires, end.astimezone(UTC))
        return {
            "campaign_id": step.campaign_id, "step_id": step.id, "occurrence": key,
            "language": p.language, "channel": p.channel, "purpose": purpose, "country": p.country,
            "body": p.body, "template_sid": p.template_sid, "template_variables": p.template_variables,
            "media_url": p.media_url, "sms_fallback_body": p.sms_fallback_body, "segments": p.segments,
            "earliest_at": p.earliest_utc, "expires_at": expires, "timezone": p.timezone,
            "quiet_start": campaign.quiet_start, "quiet_end": campaign.quiet_end, "status": "pending",
            "attempts": 0, "created_at": now, "updated_at": now,
        }

    added = 0
    for chunk in plan_recipients(step, occurrence, contact_ids=contact_ids, chunk=BATCH, missing_only=key):
        rows = []
        for contact_id, group in chunk:
            columns = templates.get(group)
            if columns is None:
                columns = templates[group] = template(group)
            rows.append((contact_id, columns))
        added += _insert(rows)
    return added
