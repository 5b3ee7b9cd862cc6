"""REST API v1 for two-way messaging: conversations (who wrote to us; counts, never text), one
conversation's messages (texts: officers and administrators only), and a poll's results (counts of
1 to 4 shown as "<5" to those who do not operate campaigns). People appear by pseudonym, never by number.

Routes are added to the API blueprint of ``views`` (same bearer tokens, same permission map)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import g, jsonify, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import NotFound

from ..audience import services as audience
from ..audience.models import Contact
from ..core.database import id_arg
from ..core.errors import ServiceError
from ..core.permissions import requires
from ..core.smallcells import hides_small_cells
from ..extensions import db
from ..inbound.inbox_services import InboxFilters, conversation_query
from ..inbound.models import KINDS, InboundMessage
from ..inbound.results import poll_results
from ..messaging.models import OutboundMessage
from .views import MAX_PAGE, _validation_error, bp


class _BadCursor(ValueError):
    pass


def _limit() -> int:
    return min(max(request.args.get("limit", 50, type=id_arg), 1), MAX_PAGE)


def _encode(*parts) -> str:
    return base64.urlsafe_b64encode("|".join(str(p) for p in parts).encode()).decode().rstrip("=")


def _decode(raw: str, size: int) -> list[str]:
    try:
        parts = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _BadCursor(raw) from None
    if len(parts) != size:
        raise _BadCursor(raw)
    return parts


def _aware(raw: str) -> datetime:
    raw = raw.strip()
    if "T" in raw:  # a "+" in a query string arrives as a space
        raw = raw.replace(" ", "+")
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


# --- conversations ---------------------------------------------------------------------------------

@bp.get("/conversations")
@requires("conversations.view")
def conversations_list():
    """One conversation per person who wrote to us, most recent first: pseudonym, country, language,
    last message time, counts and the kinds of messages. No message text, whoever asks."""
    limit, fields = _limit(), []
    args = request.args
    country = (args.get("country") or "").strip().upper() or None
    language = (args.get("language") or "").strip().lower() or None
    kind = (args.get("kind") or "").strip().lower() or None
    campaign = args.get("campaign", type=id_arg)
    since = after = None
    if country:
        try:
            audience.check_country(country)
        except ServiceError as exc:
            fields.append(("country", exc.message))
    if args.get("campaign") and campaign is None:
        fields.append(("campaign", _("“%(value)s” is not a campaign id.", value=args["campaign"][:40])))
    if kind and kind not in KINDS:
        fields.append(("kind", _("Unknown kind “%(value)s”: use one of %(kinds)s.", value=kind[:40],
                                 kinds=", ".join(KINDS))))
    if args.get("since"):
        try:
            since = _aware(args["since"])
        except ValueError:
            fields.append(("since", _("“%(value)s” is not a date or time such as 2026-03-01 or "
                                      "2026-03-01T10:00:00Z.", value=args["since"][:40])))
    if args.get("after"):
        try:
            at, contact_id = _decode(args["after"], 2)
            after = (_aware(at), int(contact_id))
        except (_BadCursor, ValueError):
            fields.append(("after", _("This paging cursor is not valid: start again from the first page.")))
    if fields:
        return _validation_error(fields)

    m = InboundMessage
    sub = conversation_query(g.user, InboxFilters(campaign_id=campaign, country=country, language=language,
                                                   kind=kind)).subquery()
    q = sa.select(sub.c.contact_id, sub.c.last_at, sub.c.total, sub.c.unread, sub.c.flagged_open)
    if since is not None:
        q = q.where(sub.c.last_at >= since)
    if after is not None:
        q = q.where(sa.or_(sub.c.last_at < after[0], sa.and_(sub.c.last_at == after[0], sub.c.contact_id < after[1])))
    rows = db.session.execute(q.order_by(sub.c.last_at.desc(), sub.c.contact_id.desc()).limit(limit + 1)).all()
    more, rows = len(rows) > limit, rows[:limit]
    ids = [r[0] for r in rows]
    contacts = {c.id: c for c in db.session.scalars(sa.select(Contact).where(Contact.id.in_(ids)))} if ids else {}
    kinds: dict[int, set[str]] = {}
    if ids:
        for contact_id, k in db.session.execute(sa.select(m.contact_id, m.kind).where(
                m.contact_id.in_(ids), m.kind.is_not(None)).distinct()):
            kinds.setdefault(contact_id, set()).add(k)
    data = []
    for contact_id, last_at, count, unread_n, flagged_n in rows:
        c = contacts[contact_id]
        data.append({"contact_id": c.id, "pseudonym": c.pseudonym, "country": c.country, "language": c.language,
                     "last_message_at": _iso(last_at), "messages": count, "unread": int(unread_n or 0),
                     "kinds": sorted(kinds.get(contact_id, ())), "flagged": bool(flagged_n)})
    nxt = None
    if more:
        keep = {k: v for k, v in args.items() if k not in ("after", "limit")}
        nxt = url_for("api.conversations_list", **keep, limit=limit, after=_encode(_iso(rows[-1][1]), rows[-1][0]))
    return jsonify(data=data, next=nxt)


def _contact_by_ref(ref: str) -> Contact:
    """A visible contact by pseudonym (C-XXXXXX) or id; 404 otherwise."""
    ref = (ref or "").strip()
    visible = audience.visible_contacts(g.user)
    if ref.upper().startswith("C-"):
        contact = db.session.scalar(visible.where(Contact.pseudonym == ref.upper()))
    elif ref.isdigit() and len(ref) < 19:
        contact = db.session.scalar(visible.where(Contact.id == int(ref)))
    else:
        contact = None
    if contact is None:
        raise NotFound()
    return contact


def _before(at_col, id_col, rank: int, cursor: tuple[datetime, int, int]):
    """Rows strictly after the cursor in the order (time, inbound first, id), newest first."""
    at, cursor_rank, cursor_id = cursor
    if rank < cursor_rank:
        return at_col <= at
    if rank > cursor_rank:
        return at_col < at
    return sa.or_(at_col < at, sa.and_(at_col == at, id_col < cursor_id))


@bp.get("/conversations/<ref>/messages")
@requires("conversations.read")
def conversation_messages(ref: str):
    """One person's conversation, newest first: what they wrote (``in``) and what we sent them (``out``,
    once it left). Texts included: officers and administrators only. Reading here marks nothing read."""
    contact = _contact_by_ref(ref)
    limit, cursor = _limit(), None
    if request.args.get("before"):
        try:
            at, rank, message_id = _decode(request.args["before"], 3)
            cursor = (_aware(at), int(rank), int(message_id))
        except (_BadCursor, ValueError):
            return _validation_error(
                [("before", _("This paging cursor is not valid: start again from the first page."))])
    i, o = InboundMessage, OutboundMessage
    q_in = sa.select(i).where(i.contact_id == contact.id)
    q_out = sa.select(o).where(o.contact_id == contact.id, o.sent_at.is_not(None))
    if cursor:
        q_in = q_in.where(_before(i.received_at, i.id, 1, cursor))
        q_out = q_out.where(_before(o.sent_at, o.id, 0, cursor))
    items = [(m.received_at, 1, m.id, m) for m in db.session.scalars(
        q_in.order_by(i.received_at.desc(), i.id.desc()).limit(limit + 1))]
    items += [(m.sent_at, 0, m.id, m) for m in db.session.scalars(
        q_out.order_by(o.sent_at.desc(), o.id.desc()).limit(limit + 1))]
    items.sort(key=lambda t: (t[0], t[1], t[2]), reverse=True)
    more, items = len(items) > limit, items[:limit]
    data = []
    for at, rank, _id, m in items:
        if rank:
            data.append({"direction": "in", "id": m.id, "at": _iso(at), "channel": m.channel, "text": m.body,
                         "media": m.num_media, "kind": m.kind, "action": m.action, "flag": m.flag,
                         "campaign_id": m.campaign_id, "step_id": m.step_id,
                         "read": m.read_at is not None, "handled": m.handled_at is not None})
        else:
            data.append({"direction": "out", "id": m.id, "at": _iso(at), "channel": m.sent_channel or m.channel,
                         "text": m.body, "purpose": m.purpose, "status": m.status,
                         "campaign_id": m.campaign_id, "step_id": m.step_id})
    nxt = None
    if more:
        at, rank, message_id, _m = items[-1]
        nxt = url_for("api.conversation_messages", ref=contact.pseudonym, limit=limit,
                      before=_encode(_iso(at), rank, message_id))
    return jsonify(contact={"id": contact.id, "pseudonym": contact.pseudonym, "country": contact.country,
                            "language": contact.language}, data=data, next=nxt)


# --- polls -----------------------------------------------------------------------------------------

@bp.get("/polls/<int:step_id>/results")
@requires("campaigns.view")
def poll_results_get(step_id: int):
    """A poll step's results; counts of 1 to 4 are "<5" for those who do not operate campaigns."""
    results = poll_results(step_id, occurrence=request.args.get("occurrence") or None,
                           suppress_small_cells=hides_small_cells(g.user.role))
    if results is None:
        raise NotFound()
    return jsonify(results.as_json())
