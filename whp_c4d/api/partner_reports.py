"""REST API v1 for partners who collect on other tools: ``POST /api/v1/partner-reports`` files one
activity report, once per submission token (a KoboToolbox REST service posts its submissions as they are:
group prefixes, ``meta/instanceID`` and ``_uuid`` are understood, its other metadata is ignored).

Routes are added to the API blueprint of ``views`` (same bearer tokens, same permission map)."""

from __future__ import annotations

from flask import g, jsonify, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from ..core.errors import ServiceError
from ..core.permissions import requires
from ..core.schemas import flatten_errors
from ..extensions import db
from ..feedback import partner_services as ps
from ..feedback.models import PartnerReport
from ..feedback.schemas import COUNT_FIELDS, TEXT_FIELDS, PartnerReportSchema
from .views import _validation_error, bp

# What a KoboToolbox submission carries besides the form's own questions: never stored (a phone number
# or device id among them), never an error.
_KOBO_META = frozenset({"start", "end", "today", "deviceid", "imei", "username", "email", "simserial",
                        "subscriberid", "phonenumber", "audit", "__version__", "formhub", "meta", "uuid"})


def _from_kobo(payload: dict) -> dict:
    """Our field names from a KoboToolbox submission; the token from ``meta/instanceID`` or ``_uuid``
    (both name the same submission, so either one finds it again)."""
    data: dict = {}
    meta = payload.get("meta") if isinstance(payload.get("meta"), dict) else {}
    for key, value in payload.items():
        if not isinstance(key, str):
            continue
        name = key.rsplit("/", 1)[-1]  # "group_reach/women" -> "women"
        if key.startswith(("_", "meta/", "formhub/")) or name in _KOBO_META:
            continue
        data[name] = value
    if not data.get("submission_token"):
        token = payload.get("meta/instanceID") or meta.get("instanceID")
        uuid = payload.get("_uuid")
        if not token and isinstance(uuid, str) and uuid.strip():
            token = uuid.strip() if uuid.strip().startswith("uuid:") else f"uuid:{uuid.strip()}"
        if token:
            data["submission_token"] = token
    return data


def report_out(report: PartnerReport, *, created: bool) -> dict:
    """The stored report as the API answers it; the protection text is never echoed (administrators read
    it in the app)."""
    out = {"id": report.id, "status": "created" if created else "already_received",
           "url": url_for("partner_reports.report", report_id=report.id, _external=True),
           "submission_token": report.submission_token, "partner_id": report.partner_id, "source": report.source,
           "activity_date": report.activity_date.isoformat(), "country": report.country,
           "admin_area": report.admin_area, "locality": report.locality, "activity_type": report.activity_type,
           "activity_other": report.activity_other, "campaign_ids": report.campaign_ids or [],
           "materials": report.materials, "groups": report.groups or [], "languages": report.languages or [],
           "protection_concern": report.protection_concern}
    out.update({name: getattr(report, name) for name in COUNT_FIELDS})
    out.update({name: getattr(report, name) for name in TEXT_FIELDS})
    return out


@bp.post("/partner-reports")
@requires("partner_reports.submit")
def partner_reports_create():
    """File an activity report: 201 when created, 200 with the report already stored under the same
    submission token, 400 with a message per field."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return jsonify(error="bad_request", message=_("Send a JSON object.")), 400
    data_in = _from_kobo(payload)
    existing = ps.existing_submission(g.user, data_in.get("submission_token")) \
        if isinstance(data_in.get("submission_token"), str) else None
    if existing is not None:
        return jsonify(report_out(existing, created=False)), 200
    try:
        data = ps.report_schema().load(data_in)
    except ValidationError as exc:
        return _validation_error(flatten_errors(exc.messages))
    try:
        partner_id = ps.filing_partner(g.user, data.get("partner_id"))
        report, created = ps.create_report(data, actor=g.user, partner_id=partner_id, source="api",
                                           ip=request.remote_addr)
    except ServiceError as exc:
        db.session.rollback()
        if exc.code == "report_token_taken":
            return jsonify(error=exc.code, message=exc.message), 409
        return _validation_error([("partner_id", exc.message)])
    db.session.commit()
    return jsonify(report_out(report, created=created)), 201 if created else 200, {
        "Location": url_for("partner_reports.report", report_id=report.id)}


def _partner_report_paths(spec, errors: dict, ref: dict) -> None:
    """The OpenAPI entry of ``POST /api/v1/partner-reports``."""
    spec.components.schema("PartnerReport", schema=PartnerReportSchema(languages=[], campaign_ids=[]))
    counts = {name: {"type": "integer"} for name in COUNT_FIELDS}
    texts = {name: {"type": "string"} for name in TEXT_FIELDS}
    spec.components.schema("PartnerReportReceived", {"type": "object", "properties": {
        "id": {"type": "integer"}, "status": {"type": "string", "enum": ["created", "already_received"]},
        "url": {"type": "string", "description": "The report's page in the app"},
        "submission_token": {"type": "string"}, "partner_id": {"type": "integer"},
        "source": {"type": "string", "enum": ["form", "api"]},
        "activity_date": {"type": "string", "format": "date"}, "country": {"type": "string"},
        "admin_area": {"type": "string"}, "locality": {"type": "string"}, "activity_type": {"type": "string"},
        "activity_other": {"type": "string"}, "campaign_ids": {"type": "array", "items": {"type": "integer"}},
        "materials": {"type": "string"}, "groups": {"type": "array", "items": {"type": "string"}},
        "languages": {"type": "array", "items": {"type": "string"}}, **counts, **texts,
        "protection_concern": {"type": "boolean", "description": "The text itself is never returned"}}})
    received = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/PartnerReportReceived"}}}}
    spec.path(path="/api/v1/partner-reports", operations={"post": {
        "summary": "File a partner activity report (KoboToolbox REST services can post to it)",
        "description": (
            "The same fields as the app's form. `participants` may be left out: it is counted from the "
            "breakdown by sex (or by age); a breakdown given must add up to it (errors under `by_sex` and "
            "`by_age`). `admin_area` is a first administrative level of `country`. A partner's token files for "
            "their own organisation; an administrator's must give `partner_id`. The submission token comes as "
            "`submission_token`, or from KoboToolbox's `meta/instanceID` or `_uuid`; posting it again answers "
            "200 with the report already stored. KoboToolbox group prefixes (`group_reach/women`) are removed "
            "and its metadata (`_id`, `start`, `deviceid`, …) ignored; `select_multiple` answers may be "
            "space-separated. With `protection_concern`, administrators are notified. In a KoboToolbox REST service, "
            "add the custom header `Authorization: Bearer <token>`."),
        "security": [{"bearer": []}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/PartnerReport"}}}},
        "responses": {
            "201": {"description": "Created", **received},
            "200": {"description": "Already received under this submission token", **received},
            "400": {"description": "Invalid: fields maps each field to a message",
                    "content": {"application/json": {"schema": ref}}},
            "409": {"description": "The submission token belongs to another organisation's report",
                    "content": {"application/json": {"schema": ref}}},
            **errors}}})
