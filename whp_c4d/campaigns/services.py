"""Campaign editing and the approval workflow: plain arguments in, flushed rows out; callers commit."""

from __future__ import annotations

from datetime import date, time
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError

from ..audience.models import Segment
from ..audience.services import enabled_languages
from ..auth.models import User
from ..auth.services import audit
from ..core.errors import ServiceError
from ..core.models import utcnow
from ..extensions import db
from ..messaging import outbox
from .models import WEEKDAYS, Campaign, CampaignObjective, ContentVariable, Step, StepContent
from .schemas import CampaignSchema, SchemaContext, StepSchema

STATUS_LABELS = {
    "draft": _l("draft"), "in_review": _l("in review"), "approved": _l("approved"), "active": _l("active"),
    "paused": _l("paused"), "completed": _l("completed"), "archived": _l("archived"),
}
ACTION_LABELS = {
    "submit": _l("Submit for review"), "request_changes": _l("Send back to draft"), "approve": _l("Approve"),
    "activate": _l("Launch"), "pause": _l("Pause"), "resume": _l("Resume"), "complete": _l("Mark completed"),
    "archive": _l("Archive"),
}
HISTORY_LABELS = {
    "campaign.created": _l("created"), "campaign.updated": _l("changed"),
    "campaign.step_added": _l("step added"), "campaign.step_updated": _l("step changed"),
    "campaign.step_deleted": _l("step deleted"), "campaign.step_moved": _l("step moved"),
    "campaign.returned_to_review": _l("returned to review after a change"),
    "campaign.submit": _l("submitted for review"), "campaign.request_changes": _l("sent back to draft"),
    "campaign.approve": _l("approved"), "campaign.approval_refused": _l("approval refused: own edit"),
    "campaign.activate": _l("launched"), "campaign.pause": _l("paused"), "campaign.resume": _l("resumed"),
    "campaign.complete": _l("completed"), "campaign.archive": _l("archived"),
    "campaign.test_sent": _l("test message sent"), "campaign.test_send_failed": _l("test message failed"),
}
EDITABLE = ("draft", "in_review", "approved", "paused")
# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "submit": (("draft",), "in_review"),
    "request_changes": (("in_review",), "draft"),
    "approve": (("in_review",), "approved"),
    "activate": (("approved",), "active"),
    "pause": (("active",), "paused"),
    "resume": (("paused",), "active"),
    "complete": (("active", "paused"), "completed"),
    "archive": (("draft", "in_review", "approved", "completed"), "archived"),
}
# The permission each action needs (the rest: campaigns.launch); views, API and CLI all ask here.
_TRANSITION_PERMISSIONS = {"submit": "campaigns.edit", "approve": "campaigns.approve",
                           "request_changes": "campaigns.approve"}


def transition_permission(action: str) -> str:
    return _TRANSITION_PERMISSIONS.get(action, "campaigns.launch")


def audit_refusal(campaign: Campaign, actor: User | None, exc: ServiceError) -> None:
    """After the caller rolled back: keep a trace of a refused self-approval (callers commit)."""
    if exc.code == "approve_own_edit":
        audit("campaign.approval_refused", actor, target_type="campaign", target_id=campaign.id, reason="own_edit")


# Transitions that need the campaign to pass every blocking check first.
CHECKED = ("submit", "approve", "activate", "resume")


def schema_context() -> SchemaContext:
    return SchemaContext(
        languages=enabled_languages(),
        objectives=list(db.session.scalars(sa.select(CampaignObjective.code).where(
            CampaignObjective.active.is_(True)).order_by(CampaignObjective.position))),
        variables=list(db.session.scalars(sa.select(ContentVariable.name).order_by(ContentVariable.name))),
        segments=list(db.session.scalars(sa.select(Segment.name).order_by(Segment.name))),
    )


def campaign_schema(**kw) -> CampaignSchema:
    return CampaignSchema(context=schema_context(), **kw)


# --- export: the canonical shape (files, API) -------------------------------------------------

def _timing_out(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"type": step.timing_type}
    if step.timing_type == "at":
        out["date"] = step.at_date.isoformat() if step.at_date else None
    elif step.timing_type == "recurring":
        out["every"] = step.every
        if step.every == "weekly":
            out["weekday"] = WEEKDAYS[step.weekday or 0]
        else:
            out["day"] = step.month_day
    else:
        out["day"] = step.drip_day
    out["time"] = step.local_time.strftime("%H:%M")
    if step.timezone:
        out["timezone"] = step.timezone
    return out


def _content_out(c: StepContent, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"sms": c.sms_text}
    if c.whatsapp_text:
        out["whatsapp"] = c.whatsapp_text
    if c.media_url:
        out["media_url"] = c.media_url
    if c.template_sid:
        out["template"] = {"sid": c.template_sid, "variables": dict(c.template_variables or {})}
    if c.thanks:
        out["thanks"] = c.thanks
    if c.options:
        out["options"] = [{k: v for k, v in o.items() if v not in (None, [], "")} for o in c.options]
    return out


def step_data(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"key": step.key, "kind": step.kind, "timing": _timing_out(step)}
    if step.kind == "poll" and step.answer_window_hours:
        out["answer_window_hours"] = step.answer_window_hours
    out["content"] = {c.language: _content_out(c, step.kind) for c in step.contents}
    return out


def export_campaign(campaign: Campaign) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": campaign.key, "name": campaign.name, "objective": campaign.objective_code,
    }
    if campaign.description:
        out["description"] = campaign.description
    out.update({
        "countries": list(campaign.countries), "languages": list(campaign.languages),
    })
    if campaign.fallbacks:
        out["fallbacks"] = {k: list(v) for k, v in campaign.fallbacks.items()}
    out.update({
        "channels": list(campaign.channels),
        "audience": campaign.segment.name if campaign.segment else None,
        "quiet_hours": {"start": campaign.quiet_start.strftime("%H:%M"), "end": campaign.quiet_end.strftime("%H:%M")},
        "start_date": campaign.start_date.isoformat() if campaign.start_date else None,
        "end_date": campaign.end_date.isoformat() if campaign.end_date else None,
        "sms_fallback": campaign.sms_fallback,
        **({"max_delay_hours": campaign.max_delay_hours} if campaign.max_delay_hours != 24 else {}),
        "steps": [step_data(s) for s in campaign.steps],
    })
    return out


def status_data(campaign: Campaign) -> dict[str, Any]:
    """Read-only facts the API adds next to the editable shape."""
    return {"id": campaign.id, "status": campaign.status, "version": campaign.version,
            "approved_version": campaign.approved_version,
            "owner": campaign.owner.email if campaign.owner else None,
            "updated_at": campaign.updated_at.isoformat()}


# --- saving ------------------------------------------------------------------------------------

def _segment_id(name: str | None) -> int | None:
    if not name:
        return None
    return db.session.scalar(sa.select(Segment.id).where(Segment.name == name))


def _apply_settings(campaign: Campaign, data: dict[str, Any]) -> None:
    campaign.key = data["key"]
    campaign.name = data["name"].strip()
    campaign.objective_code = data["objective"]
    campaign.description = data.get("description") or ""
    campaign.countries = list(data["countries"])
    campaign.languages = list(data["languages"])
    campaign.fallbacks = {k: list(v) for k, v in (data.get("fallbacks") or {}).items() if v}
    campaign.channels = [c for c in ("sms", "whatsapp") if c in data["channels"]]
    campaign.segment_id = _segment_id(data.get("audience"))
    campaign.quiet_start = data["quiet_hours"]["start"]
    campaign.quiet_end = data["quiet_hours"]["end"]
    campaign.start_date = data.get("start_date")
    campaign.end_date = data.get("end_date")
    campaign.sms_fallback = bool(data.get("sms_fallback"))
    campaign.max_delay_hours = data.get("max_delay_hours") or 24


def _apply_step(step: Step, data: dict[str, Any]) -> None:
    timing = data["timing"]
    step.key = data["key"]
    step.kind = data.get("kind") or "message"
    step.timing_type = timing["type"]
    step.local_time = timing["time"]
    step.timezone = timing.get("timezone") or None
    step.at_date = timing.get("date") if timing["type"] == "at" else None
    step.every = timing.get("every") if timing["type"] == "recurring" else None
    step.weekday = (WEEKDAYS.index(timing["weekday"]) if step.every == "weekly" else None)
    step.month_day = timing.get("day") if step.every == "monthly" else None
    step.drip_day = timing.get("day") if timing["type"] == "drip" else None
    step.answer_window_hours = (data.get("answer_window_hours") or 72) if step.kind == "poll" else None
    wanted = data.get("content") or {}
    for c in list(step.contents):
        if c.language not in wanted:
            step.contents.remove(c)
    for lang, c in wanted.items():
        row = step.content(lang)
        if row is None:
            row = StepContent(language=lang)
            step.contents.append(row)
        row.sms_text = c.get("sms") or ""
        row.whatsapp_text = c.get("whatsapp") or None
        row.media_url = c.get("media_url") or None
        template = c.get("template") or {}
        row.template_sid = template.get("sid") or None
        row.template_variables = dict(template.get("variables") or {})
        row.thanks = c.get("thanks") or None
        row.options = [{"number": o["number"], "label": o["label"], "words": list(o.get("words") or []),
                        **({"reply": o["reply"]} if o.get("reply") else {})}
                       for o in sorted(c.get("options") or [], key=lambda o: o["number"])]


def _touch(campaign: Campaign, actor: User | None, what: str, **details) -> None:
    """Every saved change: a new version, the editor recorded, approval withdrawn where it stood."""
    if campaign.status not in EDITABLE:
        raise ServiceError("campaign_not_editable", status=str(STATUS_LABELS[campaign.status]))
    campaign.version = (campaign.version or 0) + 1
    campaign.last_editor_id = actor.id if actor else None
    campaign.updated_at = utcnow()
    audit(f"campaign.{what}", actor, target_type="campaign", target_id=campaign.id, version=campaign.version,
          **details)
    if campaign.status in ("approved", "paused"):
        before = campaign.status
        if before == "paused":
            outbox.discard_held(campaign.id)
        campaign.status = "in_review"
        campaign.approved_by_id = None
        audit("campaign.returned_to_review", actor, target_type="campaign", target_id=campaign.id,
              **{"from": before, "to": "in_review"})


def create_campaign(data: dict[str, Any], actor: User | None) -> Campaign:
    if db.session.scalar(sa.select(Campaign.id).where(Campaign.key == data["key"])):
        raise ServiceError("campaign_key_taken", key=data["key"])
    campaign = Campaign(owner_id=actor.id if actor else None, last_editor_id=actor.id if actor else None,
                        status="draft", version=1)
    _apply_settings(campaign, data)
    db.session.add(campaign)
    for i, s in enumerate(data.get("steps") or []):
        step = Step(position=i)
        _apply_step(step, s)
        campaign.steps.append(step)
    db.session.flush()
    audit("campaign.created", actor, target_type="campaign", target_id=campaign.id, version=1)
    return campaign


def replace_campaign(campaign: Campaign, data: dict[str, Any], actor: User | None) -> bool:
    """Make the campaign equal to ``data`` (a loaded CampaignSchema dict). Returns False, touching
    nothing, when it already is: loading the same file twice changes nothing."""
    if same_content(campaign, data):
        return False
    clash = db.session.scalar(sa.select(Campaign.id).where(Campaign.key == data["key"], Campaign.id != campaign.id))
    if clash:
        raise ServiceError("campaign_key_taken", key=data["key"])
    if campaign.status not in EDITABLE:
        raise ServiceError("campaign_not_editable", status=str(STATUS_LABELS[campaign.status]))
    _apply_settings(campaign, data)
    by_key = {s.key: s for s in campaign.steps}
    keep = []
    for i, s in enumerate(data.get("steps") or []):
        step = by_key.pop(s["key"], None) or Step()
        step.position = i
        _apply_step(step, s)
        keep.append(step)
    campaign.steps = keep
    db.session.flush()
    _touch(campaign, actor, "updated")
    db.session.flush()
    return True


def same_content(campaign: Campaign, data: dict[str, Any]) -> bool:
    current = campaign_schema().load(export_campaign(campaign))
    return _comparable(current) == _comparable(data)


def _comparable(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    out["fallbacks"] = {k: v for k, v in (out.get("fallbacks") or {}).items() if v}
    out["channels"] = sorted(out.get("channels") or [])
    steps = []
    for s in out.get("steps") or []:
        s = dict(s)
        if s.get("kind") != "poll":
            s["answer_window_hours"] = None
        elif s.get("answer_window_hours") is None:
            s["answer_window_hours"] = 72
        s["content"] = {lang: {**c, "options": sorted(c.get("options") or [], key=lambda o: o["number"]),
                               "whatsapp": c.get("whatsapp") or None}
                        for lang, c in (s.get("content") or {}).items()}
        steps.append(s)
    out["steps"] = steps
    return out


def update_settings(campaign: Campaign, data: dict[str, Any], actor: User) -> None:
    """Save the campaign-level fields from the settings form (steps untouched)."""
    full = export_campaign(campaign)
    merged = {**full, **data_out(data), "steps": full["steps"]}
    loaded = campaign_schema().load(merged)
    replace_campaign(campaign, loaded, actor)


def data_out(data: dict[str, Any]) -> dict[str, Any]:
    """A loaded settings dict back into the plain shape (dates and times as text)."""
    out = dict(data)
    for name in ("start_date", "end_date"):
        if isinstance(out.get(name), date):
            out[name] = out[name].isoformat()
    qh = out.get("quiet_hours")
    if qh:
        out["quiet_hours"] = {k: (v.strftime("%H:%M") if isinstance(v, time) else v) for k, v in qh.items()}
    out.pop("steps", None)
    return out


def step_schema(campaign: Campaign) -> StepSchema:
    return StepSchema(context=schema_context(), campaign_languages=list(campaign.languages))


def save_step(campaign: Campaign, step: Step | None, raw: dict[str, Any], actor: User) -> Step:
    """Validate one step (raises ValidationError) and save it; a new step goes last."""
    data = step_schema(campaign).load(raw)
    clash = next((s for s in campaign.steps if s.key == data["key"] and s is not step), None)
    if clash:
        raise ValidationError({"key": [ServiceError("step_key_taken", key=data["key"]).message]})
    created = step is None
    if campaign.status not in EDITABLE:
        raise ServiceError("campaign_not_editable", status=str(STATUS_LABELS[campaign.status]))
    if step is None:
        step = Step(position=len(campaign.steps))
        campaign.steps.append(step)
    _apply_step(step, data)
    db.session.flush()
    _touch(campaign, actor, "step_added" if created else "step_updated", step=step.key)
    return step


def delete_step(campaign: Campaign, step: Step, actor: User) -> None:
    key = step.key
    campaign.steps.remove(step)
    for i, s in enumerate(campaign.steps):
        s.position = i
    db.session.flush()
    _touch(campaign, actor, "step_deleted", step=key)


def move_step(campaign: Campaign, step: Step, offset: int, actor: User) -> None:
    steps = list(campaign.steps)
    i = steps.index(step)
    j = max(0, min(len(steps) - 1, i + offset))
    if i == j:
        return
    steps.insert(j, steps.pop(i))
    # Two passes so the (campaign, position) order never collides mid-flush on any database.
    for n, s in enumerate(steps):
        s.position = n
    campaign.steps = steps
    db.session.flush()
    _touch(campaign, actor, "step_moved", step=step.key)


def duplicate_campaign(campaign: Campaign, actor: User) -> Campaign:
    data = campaign_schema().load(export_campaign(campaign))
    base = data["key"][:70]
    n = 2
    while db.session.scalar(sa.select(Campaign.id).where(Campaign.key == f"{base}-{n}")):
        n += 1
    data["key"] = f"{base}-{n}"
    data["name"] = f"{data['name']} ({n})"[:160]
    return create_campaign(data, actor)


# --- workflow ----------------------------------------------------------------------------------

def allowed_actions(campaign: Campaign) -> list[str]:
    actions = [a for a, (sources, _to) in TRANSITIONS.items() if campaign.status in sources]
    if campaign.status == "paused" and campaign.approved_version != campaign.version:
        actions.remove("resume")
    return actions


def transition(campaign: Campaign, action: str, actor: User | None, *, comment: str = "") -> None:
    """Move the campaign through its workflow; raises ServiceError with what stands in the way."""
    from .checks import blocking_problems

    if action not in TRANSITIONS:
        raise ServiceError("unknown_transition", action=action[:30])
    sources, target = TRANSITIONS[action]
    if campaign.status not in sources:
        raise ServiceError("transition_not_allowed", action=action, status=str(STATUS_LABELS[campaign.status]))
    if action == "approve":
        if actor is None or campaign.last_editor_id == actor.id:
            raise ServiceError("approve_own_edit")  # callers roll back, then audit the refusal
        if actor.role not in ("officer", "admin"):
            raise ServiceError("approve_role")
    if action == "resume" and campaign.approved_version != campaign.version:
        raise ServiceError("resume_needs_approval")
    if action in CHECKED:
        problems = blocking_problems(campaign)
        if problems:
            raise ServiceError("campaign_has_problems", count=len(problems))
    before = campaign.status
    campaign.status = target
    now = utcnow()
    if action == "submit":
        campaign.submitted_by_id = actor.id if actor else None
    elif action == "approve":
        campaign.approved_by_id = actor.id
        campaign.approved_at = now
        campaign.approved_version = campaign.version
    elif action == "activate":
        campaign.activated_at = campaign.activated_at or now
    if action == "pause":
        outbox.hold(campaign.id)
    elif action == "resume":
        outbox.release(campaign.id)
    elif action in ("complete", "archive"):
        outbox.cancel(campaign.id)
    elif action == "request_changes":
        campaign.approved_by_id = None
    db.session.flush()
    audit(f"campaign.{action}", actor, target_type="campaign", target_id=campaign.id,
          version=campaign.version, comment=comment[:1000] if comment else None, **{"from": before, "to": target})


def history(campaign: Campaign, limit: int = 50) -> list:
    from ..auth.models import AuditEvent

    return list(db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.target_type == "campaign", AuditEvent.target_id == campaign.id)
        .order_by(AuditEvent.id.desc()).limit(limit)))


def get_campaign(campaign_id: int) -> Campaign:
    from werkzeug.exceptions import NotFound

    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound()
    return campaign
