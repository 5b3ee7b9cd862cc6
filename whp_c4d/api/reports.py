"""REST API v1 for reports: the engagement funnel, a campaign's poll results and feedback counts, with the
same filters as the report pages and the same suppression (counts of 1 to 4 are the string "<5", for
every caller). Routes are added to the API blueprint of ``views`` (same bearer tokens, same permission map)."""

from __future__ import annotations

from apispec import APISpec
from flask import g, jsonify, request
from flask_babel import gettext as _

from ..core.permissions import requires
from ..extensions import db
from ..reports import queries
from ..reports.facts import day_key
from ..reports.filters import DIMENSIONS, parse_filters
from ..reports.guard import reason_key
from ..reports.queries import FUNNEL_STAGES, NOT_CODED
from ..reports.tables import shown
from .views import _validation_error, bp

FILTERS = ("campaign", "step", "country", "language", "channel", "from", "to")


def _key(dim: str, key):
    return day_key(key) if dim == "week" else key


def _stages(e: queries.Engagement, dim: str | None = None, key=None) -> dict:
    return {stage: e.shown(stage, dim, key) for stage in FUNNEL_STAGES}


@bp.get("/reports/funnel")
@requires("reports.view")
def reports_funnel():
    """The engagement funnel overall and by one breakdown (``by``), and the failures by reason."""
    from ..reports.tables import dimension_label

    f, errors = parse_filters(request.args, g.user)
    if errors:
        return _validation_error(errors)
    e = queries.engagement(f, (f.by,))
    db.session.commit()  # a rollup computed for this answer is kept
    return jsonify(
        filters=f.args(), by=f.by, small_cells_suppressed=True,
        as_of=e.as_of.isoformat().replace("+00:00", "Z") if e.as_of else None, total=_stages(e),
        rows=[{"key": _key(f.by, key), "label": dimension_label(f.by, key, e.names), **_stages(e, f.by, key)}
              for key in e.by[f.by]],
        failed_by_reason=[{"reason": reason, "error_code": code, "messages": e.shown("failed", "reason", reason_key(reason, code))}
                          for (reason, code), _n in sorted(e.reasons.items(), key=lambda kv: -kv[1])])


@bp.get("/reports/polls")
@requires("reports.view")
def reports_polls():
    """A campaign's poll results, per question, by language, country and channel."""
    f, errors = parse_filters(request.args, g.user)
    if not errors and not f.campaign_id:
        errors = [("campaign", _("Choose the campaign whose polls you want (campaign=ID)."))]
    if errors:
        return _validation_error(errors)
    return jsonify(campaign_id=f.campaign_id, small_cells_suppressed=True,
                   polls=[r.as_json() for r in queries.polls(f)])


@bp.get("/reports/feedback")
@requires("reports.view")
def reports_feedback():
    """Feedback items by type (``not_coded``: nobody typed them yet), topic, country, month and source."""
    f, errors = parse_filters(request.args, g.user)
    if errors:
        return _validation_error(errors)
    r = queries.feedback(f, g.user)

    def counts(dim: str, values: dict) -> dict:
        return {(k if k != NOT_CODED else "not_coded"): r.guard.shown("items", **{dim: k}) for k in values}

    return jsonify(filters=f.args(), small_cells_suppressed=True, total=r.guard.shown("items"),
                   by_type=counts("type", r.by_type), by_topic=counts("topic", r.by_topic),
                   by_country=counts("country", r.by_country), by_month=counts("month", r.by_month),
                   by_source=counts("source", r.by_source), rumours=shown(r.rumours_total))


def _report_paths(spec: APISpec, errors: dict, ref: dict) -> None:
    """The reports' paths in the OpenAPI document."""
    bearer = [{"bearer": []}]
    count = {"oneOf": [{"type": "integer"}, {"type": "string", "enum": ["<5"]}],
             "description": "A count; \"<5\" for 1 to 4 (small-cell suppression, for every caller)"}
    described = {
        "campaign": ("integer", "A campaign's id"), "step": ("integer", "A step's id (of the campaign)"),
        "country": ("string", "ISO 3166 alpha-2 code, e.g. GT"), "language": ("string", "ISO 639 code, e.g. ht"),
        "channel": ("string", "sms or whatsapp"), "from": ("string", "First day, ISO date (UTC), inclusive"),
        "to": ("string", "Last day, ISO date (UTC), inclusive")}
    params = [{"name": name, "in": "query", "schema": {"type": kind, **({"format": "date"} if name in ("from", "to")
                                                                          else {})}, "description": text}
              for name, (kind, text) in described.items()]
    invalid = {"400": {"description": "Invalid filter: fields maps each parameter to a message",
                       "content": {"application/json": {"schema": ref}}}}
    stages = {stage: count for stage in FUNNEL_STAGES}
    spec.components.schema("Funnel", {"type": "object", "properties": stages, "description": (
        "targeted: outbox rows of campaign steps; sent: accepted by Twilio; delivered: delivered or read; read: "
        "read (WhatsApp); replied: people who wrote in the campaign's context except to opt out; opted_out: "
        "people who sent an opt-out keyword there or whose message failed with Twilio error 21610; failed: "
        "failed, undelivered, skipped or missed messages. Messages except replied and opted_out (people).")})
    funnel = {"$ref": "#/components/schemas/Funnel"}
    spec.path(path="/api/v1/reports/funnel", operations={"get": {
        "summary": "The engagement funnel, overall and by campaign, step, country, language, channel or week",
        "security": bearer, "parameters": params + [
            {"name": "by", "in": "query", "schema": {"type": "string", "enum": list(DIMENSIONS),
                                                     "default": "campaign"}}],
        "responses": {"200": {"description": "The funnel", "content": {"application/json": {"schema": {
            "type": "object", "properties": {
                "filters": {"type": "object", "additionalProperties": {"type": "string"}},
                "by": {"type": "string"}, "small_cells_suppressed": {"type": "boolean"},
                "as_of": {"type": "string", "format": "date-time", "nullable": True,
                          "description": "Set when message counts come from a rollup older than the latest activity"},
                "total": funnel,
                "rows": {"type": "array", "items": {"allOf": [funnel, {"type": "object", "properties": {
                    "key": {"description": "The id, code or week (Monday, ISO date) of the row"},
                    "label": {"type": "string"}}}]}},
                "failed_by_reason": {"type": "array", "items": {"type": "object", "properties": {
                    "reason": {"type": "string", "nullable": True},
                    "error_code": {"type": "integer", "nullable": True}, "messages": count}}}}}}}},
            **invalid, **errors}}})
    spec.path(path="/api/v1/reports/polls", operations={"get": {
        "summary": "A campaign's poll results, per question, by language, country and channel",
        "security": bearer, "parameters": [{**params[0], "required": True}, params[1]],
        "responses": {"200": {"description": "The poll results", "content": {"application/json": {"schema": {
            "type": "object", "properties": {
                "campaign_id": {"type": "integer"}, "small_cells_suppressed": {"type": "boolean"},
                "polls": {"type": "array", "items": {"$ref": "#/components/schemas/PollResults"}}}}}}},
            **invalid, **errors}}})
    breakdown = {"type": "object", "additionalProperties": count}
    spec.path(path="/api/v1/reports/feedback", operations={"get": {
        "summary": "Feedback items by type, topic, country, month and source",
        "security": bearer, "parameters": params,
        "responses": {"200": {"description": "The counts", "content": {"application/json": {"schema": {
            "type": "object", "properties": {
                "filters": {"type": "object", "additionalProperties": {"type": "string"}},
                "small_cells_suppressed": {"type": "boolean"}, "total": count,
                "by_type": {**breakdown, "description": "IFRC types; not_coded: nobody has typed them yet"},
                "by_topic": {**breakdown, "description": "Topic codes; not_coded: no topic yet"},
                "by_country": breakdown, "by_month": {**breakdown, "description": "YYYY-MM (UTC)"},
                "by_source": breakdown, "rumours": count}}}}},
            **invalid, **errors}}})
