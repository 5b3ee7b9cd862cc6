"""REST API v1 endpoints and the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime, time

from flask import Blueprint, g, jsonify, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from ..audience import segments as segment_service
from ..audience import services as audience
from ..audience.models import Contact
from ..audience.schemas import ContactCreateSchema, ContactOutSchema
from ..core.database import id_arg
from ..core.errors import ServiceError
from ..core.permissions import public, requires
from ..core.schemas import flatten_errors
from ..extensions import db
from .openapi import build_spec

bp = Blueprint("api", __name__)

MAX_PAGE = 200


def _out(contact: Contact) -> dict:
    data = ContactOutSchema().dump(contact)
    masked = audience.number_for_display(contact, g.user)
    if masked is None:
        data.pop("number_masked", None)
    else:
        data["number_masked"] = masked
    return data


def _validation_error(fields: list[tuple[str, str]]):
    return jsonify(error="validation", message=_("Some fields are not valid."),
                   fields={name: msg for name, msg in fields}), 400


@bp.get("/contacts")
@requires("contacts.view")
def contacts_list():
    """List contacts the caller may see, newest first. Filters as in segments; keyset paging."""
    limit = min(max(request.args.get("limit", 50, type=id_arg), 1), MAX_PAGE)
    after = request.args.get("after", type=id_arg)
    filters = segment_service.clean_filters({
        "countries": request.args.getlist("country"), "languages": request.args.getlist("language"),
        "channels": request.args.getlist("channel"), "tags": request.args.getlist("tag"),
    })
    q = segment_service.members(g.user, filters).order_by(Contact.id.desc())
    if after:
        q = q.where(Contact.id < after)
    rows = db.session.scalars(q.limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = url_for("api.contacts_list", after=rows[-1].id, limit=limit, _external=False) if more else None
    return jsonify(data=[_out(c) for c in rows], next=nxt)


@bp.post("/contacts")
@requires("contacts.create")
def contacts_create():
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return jsonify(error="bad_request", message=_("Send a JSON object.")), 400
    try:
        data = ContactCreateSchema(languages=audience.enabled_languages()).load(payload)
    except ValidationError as exc:
        return _validation_error(flatten_errors(exc.messages))
    consent = data["consent"]
    consent_at = datetime.combine(consent["date"], time(12), tzinfo=UTC) if consent.get("date") else None
    partner_id = g.user.partner_id if g.user.role == "partner" else None
    if partner_id is not None:
        return _register_for_partner(data, consent_at)
    try:
        contact = audience.create_contact(
            phone=data["phone"], country=data.get("country"), language=data["language"],
            channels=data["channels"], tags=data.get("tags") or [], timezone=data.get("timezone"), actor=g.user,
            consent=audience.ConsentInput(
                source="partner_registration" if partner_id else consent["source"], at=consent_at,
                notice_version=consent.get("notice_version")),
            partner_id=partner_id)
    except ServiceError as exc:
        db.session.rollback()
        status = 409 if exc.code in ("phone_taken", "phone_suppressed") else 400
        return jsonify(error=exc.code, message=exc.message), status
    db.session.commit()
    return jsonify(_out(contact)), 201, {"Location": url_for("api.contacts_get", contact_id=contact.id)}


def _registration_out(r) -> dict:
    return {"reference": r.reference, "status": "received", "country": r.country, "language": r.language,
            "channels": list(r.channels), "created_at": r.created_at.isoformat().replace("+00:00", "Z")}


def _register_for_partner(data: dict, consent_at):
    """Partners get the same receipt (202) whether the number was new, known or erased."""
    consent = data["consent"]
    try:
        registration = audience.register_for_partner(
            partner_id=g.user.partner_id, phone=data["phone"], country=data.get("country"),
            language=data["language"], channels=data["channels"], tags=data.get("tags") or [],
            timezone=data.get("timezone"), actor=g.user,
            consent=audience.ConsentInput(source="partner_registration", at=consent_at,
                                          notice_version=consent.get("notice_version")))
    except ServiceError as exc:
        db.session.rollback()
        return jsonify(error=exc.code, message=exc.message), 400
    db.session.commit()
    return jsonify(_registration_out(registration)), 202


@bp.get("/registrations")
@requires("contacts.create")
def registrations_list():
    """A partner's registrations, newest first (partners see these instead of contacts)."""
    if g.user.role != "partner":
        return jsonify(data=[])
    limit = min(max(request.args.get("limit", 50, type=id_arg), 1), MAX_PAGE)
    rows = db.session.scalars(audience.partner_registrations(g.user.partner_id).limit(limit)).all()
    return jsonify(data=[_registration_out(r) for r in rows])


@bp.get("/contacts/<int:contact_id>")
@requires("contacts.view")
def contacts_get(contact_id: int):
    return jsonify(_out(audience.get_visible_contact(g.user, contact_id)))


@bp.get("/openapi.json")
@public
def openapi():
    return jsonify(build_spec())




# --- campaigns ---------------------------------------------------------------------------------

def _campaign_out(campaign) -> dict:
    from ..campaigns import services as campaigns
    from ..campaigns.checks import check_campaign

    return {**campaigns.status_data(campaign), **campaigns.export_campaign(campaign),
            "problems": [{"severity": p.severity, "code": p.code, "message": p.message,
                          "language": p.language} for p in check_campaign(campaign)]}


def _campaign_validation_error(exc: ValidationError):
    from ..campaigns.schemas import error_paths

    return _validation_error(error_paths(exc.messages))


@bp.get("/campaigns")
@requires("campaigns.view")
def campaigns_list():
    """Campaigns, most recently changed first (summary; GET one for its content)."""
    import sqlalchemy as sa

    from ..campaigns import services as campaigns
    from ..campaigns.models import Campaign

    q = sa.select(Campaign).order_by(Campaign.updated_at.desc())
    if request.args.get("status"):
        q = q.where(Campaign.status == request.args["status"])
    return jsonify(data=[{**campaigns.status_data(c), "key": c.key, "name": c.name}
                         for c in db.session.scalars(q.limit(500))])


@bp.post("/campaigns")
@requires("campaigns.edit")
def campaigns_create():
    from ..campaigns import services as campaigns

    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return jsonify(error="bad_request", message=_("Send a JSON object.")), 400
    try:
        campaign = campaigns.create_campaign(campaigns.campaign_schema().load(payload), g.user)
    except ValidationError as exc:
        return _campaign_validation_error(exc)
    except ServiceError as exc:
        db.session.rollback()
        return jsonify(error=exc.code, message=exc.message), 409
    db.session.commit()
    return jsonify(_campaign_out(campaign)), 201, {"Location": url_for("api.campaigns_get", campaign_id=campaign.id)}


@bp.get("/campaigns/<int:campaign_id>")
@requires("campaigns.view")
def campaigns_get(campaign_id: int):
    from ..campaigns import services as campaigns

    return jsonify(_campaign_out(campaigns.get_campaign(campaign_id)))


@bp.put("/campaigns/<int:campaign_id>")
@requires("campaigns.edit")
def campaigns_put(campaign_id: int):
    """Replace the campaign's content (same shape as content files). An approved campaign goes back
    to review; an active one must be paused first (409)."""
    from ..campaigns import services as campaigns

    campaign = campaigns.get_campaign(campaign_id)
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return jsonify(error="bad_request", message=_("Send a JSON object.")), 400
    payload = {k: v for k, v in payload.items() if k not in ("id", "status", "version", "approved_version",
                                                             "owner", "updated_at", "problems")}
    try:
        campaigns.replace_campaign(campaign, campaigns.campaign_schema().load(payload), g.user)
    except ValidationError as exc:
        db.session.rollback()
        return _campaign_validation_error(exc)
    except ServiceError as exc:
        db.session.rollback()
        return jsonify(error=exc.code, message=exc.message), 409
    db.session.commit()
    return jsonify(_campaign_out(campaign))


@bp.post("/campaigns/<int:campaign_id>/transitions")
@requires("campaigns.edit")
def campaigns_transition(campaign_id: int):
    """Move the campaign: submit, request_changes, approve, activate, pause, resume, complete, archive."""
    from ..campaigns import services as campaigns
    from ..core.permissions import can

    campaign = campaigns.get_campaign(campaign_id)
    payload = request.get_json(silent=True) or {}
    action = str(payload.get("action") or "")
    if not can(g.user.role, campaigns.transition_permission(action)):
        return jsonify(error="forbidden", message=_("Your role does not allow this action.")), 403
    try:
        campaigns.transition(campaign, action, g.user, comment=str(payload.get("comment") or ""))
    except ServiceError as exc:
        db.session.rollback()
        campaigns.audit_refusal(campaign, g.user, exc)
        db.session.commit()
        status = 400 if exc.code == "unknown_transition" else 409
        return jsonify(error=exc.code, message=exc.message), status
    db.session.commit()
    return jsonify(_campaign_out(campaign))


# More routes on this blueprint: conversations and poll results; partner activity reports; engagement, poll
# and feedback reports.
from . import inbound, partner_reports, reports  # noqa: E402,F401
