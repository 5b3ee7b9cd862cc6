"""Pages for campaigns: list, settings, step editor with live segments, checks, estimate, workflow,
preview and test send. Forms are validated by the same marshmallow schema as files and the API."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from marshmallow import ValidationError

from ..audience import services as audience
from ..audience.models import Segment
from ..auth.forms import EmptyForm
from ..auth.services import audit
from ..core import phones
from ..core.errors import ServiceError
from ..core.i18n import all_countries
from ..core.permissions import can, requires
from ..core.smallcells import hides_small_cells
from ..extensions import db
from ..messaging.reasons import REASON_LABELS
from ..messaging.segments import analyse, gsm_safe
from . import services
from .checks import check_campaign
from .estimates import estimate
from .files import dump_yaml
from .models import (
    STATUSES,
    WEEKDAYS,
    Campaign,
    CampaignObjective,
    Step,
)
from .planning import audience_count, render, variable_values
from .schemas import error_paths

bp = Blueprint("campaigns", __name__, template_folder="templates")

OPTION_ROWS_EXTRA = 2  # blank option rows offered below the existing ones (no JS needed)


def _slug(text: str) -> str:
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:70] or "campaign"


def _errors_by_path(exc: ValidationError, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path, msg in error_paths(exc.messages, prefix):
        out.setdefault(path, []).append(msg)
    return out


def _objectives() -> list[CampaignObjective]:
    return list(db.session.scalars(sa.select(CampaignObjective).where(CampaignObjective.active.is_(True))
                                   .order_by(CampaignObjective.position)))


# --- list ----------------------------------------------------------------------------------------

@bp.get("/campaigns")
@requires("campaigns.view")
def campaigns():
    status = request.args.get("status") or ""
    q = sa.select(Campaign).order_by(Campaign.updated_at.desc())
    if status in STATUSES:
        q = q.where(Campaign.status == status)
    else:
        q = q.where(Campaign.status != "archived")
    rows = db.session.scalars(q).all()
    return render_template("campaigns/list.html", rows=rows, status=status, statuses=STATUSES,
                           labels=services.STATUS_LABELS)


# --- settings ------------------------------------------------------------------------------------

def _settings_from_form(form, campaign: Campaign | None) -> dict[str, Any]:
    languages = [code for code in form.getlist("languages") if code]
    base = form.get("base_language") or (languages[0] if languages else "")
    if base in languages:
        languages.remove(base)
        languages.insert(0, base)
    fallbacks = {}
    for lang in languages:
        fb = form.get(f"fallback_{lang}") or ""
        if fb and fb != lang:
            fallbacks[lang] = [fb]
    name = form.get("name", "").strip()
    data: dict[str, Any] = {
        "key": (form.get("key") or "").strip() or (campaign.key if campaign else _slug(name)),
        "name": name, "objective": form.get("objective", ""),
        "description": form.get("description", ""),
        "countries": form.getlist("countries"), "languages": languages, "fallbacks": fallbacks,
        "channels": form.getlist("channels"),
        "audience": form.get("audience") or None,
        "quiet_hours": {"start": form.get("quiet_start") or "20:00", "end": form.get("quiet_end") or "08:00"},
        "start_date": form.get("start_date") or None, "end_date": form.get("end_date") or None,
        "sms_fallback": form.get("sms_fallback") == "y",
        "max_delay_hours": _int(form.get("max_delay_hours")) or 24,
    }
    return data


def _settings_page(campaign: Campaign | None, data: dict, errors: dict, status: int = 200):
    segments = db.session.scalars(sa.select(Segment).order_by(Segment.name)).all()
    return render_template("campaigns/settings.html", campaign=campaign, data=data, errors=errors,
                           objectives=_objectives(), languages=audience.enabled_languages(),
                           countries=all_countries(), segments=segments,
                           programme_countries=phones.PROGRAMME_COUNTRIES, form=EmptyForm()), status


@bp.route("/campaigns/new", methods=["GET", "POST"])
@requires("campaigns.edit")
def campaign_new():
    if request.method == "GET":
        data = {"languages": ["es"], "channels": ["sms"], "countries": [], "fallbacks": {},
                "quiet_hours": {"start": "20:00", "end": "08:00"}, "sms_fallback": False}
        return _settings_page(None, data, {})
    data = _settings_from_form(request.form, None)
    try:
        loaded = services.campaign_schema().load(data)
        campaign = services.create_campaign(loaded, g.user)
    except ValidationError as exc:
        return _settings_page(None, data, _errors_by_path(exc), 400)
    except ServiceError as exc:
        return _settings_page(None, data, {"key": [exc.message]}, 400)
    db.session.commit()
    flash(_("Campaign created. Now add its steps."), "success")
    return redirect(url_for("campaigns.campaign_detail", campaign_id=campaign.id))


@bp.route("/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@requires("campaigns.edit")
def campaign_edit(campaign_id: int):
    campaign = services.get_campaign(campaign_id)
    if request.method == "GET":
        return _settings_page(campaign, services.export_campaign(campaign), {})
    data = _settings_from_form(request.form, campaign)
    try:
        services.update_settings(campaign, data, g.user)
    except ValidationError as exc:
        db.session.rollback()
        return _settings_page(campaign, data, _errors_by_path(exc), 400)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _settings_page(campaign, data, {}, 400)
    db.session.commit()
    flash(_("Campaign saved."), "success")
    return redirect(url_for("campaigns.campaign_detail", campaign_id=campaign.id))


# --- overview -------------------------------------------------------------------------------------

@bp.get("/campaigns/<int:campaign_id>")
@requires("campaigns.view")
def campaign_detail(campaign_id: int):
    campaign = services.get_campaign(campaign_id)
    problems = check_campaign(campaign)
    analyses = {(s.id, c.language): analyse(render(c.sms_text, {})) for s in campaign.steps for c in s.contents}
    return render_template(
        "campaigns/detail.html", campaign=campaign, problems=problems, analyses=analyses,
        estimate=estimate(campaign), audience=audience_count(campaign),
        actions=services.allowed_actions(campaign), action_labels=services.ACTION_LABELS,
        action_permission=services.transition_permission, history_labels=services.HISTORY_LABELS,
        labels=services.STATUS_LABELS, history=services.history(campaign), weekdays=WEEKDAYS, reasons=REASON_LABELS,
        form=EmptyForm(), own_edit=campaign.last_editor_id == g.user.id,
        objective_label=campaign.objective.label(str(get_locale())))


@bp.post("/campaigns/<int:campaign_id>/transition")
@requires("campaigns.edit")  # approve / launch are checked per action below
def campaign_transition(campaign_id: int):
    campaign = services.get_campaign(campaign_id)
    action = request.form.get("action", "")
    if not can(g.user.role, services.transition_permission(action)):
        audit("permission.refused", g.user, target_type="campaign", target_id=campaign.id, action=action[:30])
        db.session.commit()
        return render_template("errors/error.html", code=403,
                               message=_("Your role does not allow this action.")), 403
    try:
        services.transition(campaign, action, g.user, comment=request.form.get("comment", ""))
    except ServiceError as exc:
        db.session.rollback()
        services.audit_refusal(campaign, g.user, exc)
        db.session.commit()
        flash(exc.message, "error")
        return redirect(url_for("campaigns.campaign_detail", campaign_id=campaign.id))
    db.session.commit()
    flash(_("The campaign is now %(status)s.", status=services.STATUS_LABELS[campaign.status]), "success")
    return redirect(url_for("campaigns.campaign_detail", campaign_id=campaign.id))


@bp.post("/campaigns/<int:campaign_id>/duplicate")
@requires("campaigns.edit")
def campaign_duplicate(campaign_id: int):
    copy = services.duplicate_campaign(services.get_campaign(campaign_id), g.user)
    db.session.commit()
    flash(_("Copy created as a draft."), "success")
    return redirect(url_for("campaigns.campaign_detail", campaign_id=copy.id))


@bp.get("/campaigns/<int:campaign_id>/export.yaml")
@requires("campaigns.view")
def campaign_export(campaign_id: int):
    campaign = services.get_campaign(campaign_id)
    return Response(dump_yaml(campaign), mimetype="application/yaml", headers={
        "Content-Disposition": f'attachment; filename="{campaign.key}.yaml"'})


# --- steps ---------------------------------------------------------------------------------------

def _step_from_form(form, campaign: Campaign) -> dict[str, Any]:
    timing_type = form.get("timing_type") or "drip"
    timing: dict[str, Any] = {"type": timing_type, "time": form.get("time") or ""}
    if timing_type == "at":
        timing["date"] = form.get("date") or None
        if form.get("timezone_mode") == "fixed":
            timing["timezone"] = form.get("timezone") or None
    elif timing_type == "recurring":
        timing["every"] = form.get("every") or None
        if timing["every"] == "weekly":
            timing["weekday"] = form.get("weekday") or None
        else:
            timing["day"] = _int(form.get("month_day"))
    else:
        timing["day"] = _int(form.get("drip_day"))
    kind = form.get("kind") or "message"
    content: dict[str, Any] = {}
    for lang in campaign.languages:
        c: dict[str, Any] = {
            "sms": form.get(f"{lang}-sms", ""), "whatsapp": form.get(f"{lang}-whatsapp") or None,
            "media_url": (form.get(f"{lang}-media_url") or "").strip() or None,
        }
        sid = (form.get(f"{lang}-template_sid") or "").strip()
        if sid:
            variables = {}
            for line in (form.get(f"{lang}-template_variables") or "").splitlines():
                if "=" in line:
                    k, v = line.split("=", 1)
                    variables[k.strip()] = v.strip()
            c["template"] = {"sid": sid, "variables": variables}
        if kind == "poll":
            c["thanks"] = form.get(f"{lang}-thanks") or None
        if kind in ("poll", "menu"):
            options = []
            for i in range(40):
                label = (form.get(f"{lang}-opt{i}-label") or "").strip()
                if not label:
                    continue
                opt = {"number": _int(form.get(f"{lang}-opt{i}-number")) or (len(options) + 1), "label": label,
                       "words": [w.strip() for w in (form.get(f"{lang}-opt{i}-words") or "").split(",") if w.strip()]}
                if kind == "menu":
                    opt["reply"] = form.get(f"{lang}-opt{i}-reply") or None
                options.append(opt)
            c["options"] = options
        if any([c["sms"].strip(), c["whatsapp"], c["media_url"], c.get("template"), c.get("options")]):
            content[lang] = c
    data: dict[str, Any] = {"key": (form.get("key") or "").strip(), "kind": kind, "timing": timing,
                            "content": content}
    if kind == "poll":
        data["answer_window_hours"] = _int(form.get("answer_window_hours"))
    return data


def _int(value) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _step_page(campaign: Campaign, step: Step | None, data: dict, errors: dict, status: int = 200):
    analyses = {}
    for lang in campaign.languages:
        text = ((data.get("content") or {}).get(lang) or {}).get("sms") or ""
        analyses[lang] = analyse(text)
    country = campaign.countries[0] if campaign.countries else None
    return render_template(
        "campaigns/step_form.html", campaign=campaign, step=step, data=data, errors=errors, analyses=analyses,
        weekdays=WEEKDAYS, option_rows_extra=OPTION_ROWS_EXTRA, form=EmptyForm(),
        variables=sorted(variable_values(country or "--").keys())), status


def _next_step_key(campaign: Campaign) -> str:
    n = len(campaign.steps) + 1
    keys = {s.key for s in campaign.steps}
    while f"step-{n}" in keys:
        n += 1
    return f"step-{n}"


@bp.route("/campaigns/<int:campaign_id>/steps/new", methods=["GET", "POST"])
@requires("campaigns.edit")
def step_new(campaign_id: int):
    campaign = services.get_campaign(campaign_id)
    if request.method == "GET":
        data = {"key": _next_step_key(campaign), "kind": request.args.get("kind", "message"),
                "timing": {"type": "drip", "day": 0, "time": "10:00"}, "content": {}}
        return _step_page(campaign, None, data, {})
    return _save_step(campaign, None)


@bp.route("/campaigns/<int:campaign_id>/steps/<int:step_id>", methods=["GET", "POST"])
@requires("campaigns.edit")
def step_edit(campaign_id: int, step_id: int):
    campaign = services.get_campaign(campaign_id)
    step = _get_step(campaign, step_id)
    if request.method == "GET":
        return _step_page(campaign, step, services.step_data(step), {})
    return _save_step(campaign, step)


def _save_step(campaign: Campaign, step: Step | None):
    data = _step_from_form(request.form, campaign)
    rewrite = request.form.get("rewrite", "")
    if rewrite:  # the no-JavaScript path of the GSM-safe buttons: rewrite, show again, save nothing
        lang, _sep, how = rewrite.partition(":")
        if lang in data["content"]:
            data["content"][lang]["sms"] = gsm_safe(data["content"][lang]["sms"], remove_accents=how == "accents")
        return _step_page(campaign, step, data, {})
    try:
        saved = services.save_step(campaign, step, data, g.user)
    except ValidationError as exc:
        db.session.rollback()
        return _step_page(campaign, step, data, _errors_by_path(exc), 400)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _step_page(campaign, step, data, {}, 400)
    db.session.commit()
    flash(_("Step %(n)s saved.", n=saved.number), "success")
    return redirect(url_for("campaigns.campaign_detail", campaign_id=campaign.id, _anchor=f"step-{saved.id}"))


def _get_step(campaign: Campaign, step_id: int) -> Step:
    from werkzeug.exceptions import NotFound

    step = next((s for s in campaign.steps if s.id == step_id), None)
    if step is None:
        raise NotFound()
    return step


@bp.post("/campaigns/<int:campaign_id>/steps/<int:step_id>/delete")
@requires("campaigns.edit")
def step_delete(campaign_id: int, step_id: int):
    campaign = services.get_campaign(campaign_id)
    try:
        services.delete_step(campaign, _get_step(campaign, step_id), g.user)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(_("Step deleted."), "success")
    return redirect(url_for("campaigns.campaign_detail", campaign_id=campaign.id))


@bp.post("/campaigns/<int:campaign_id>/steps/<int:step_id>/move")
@requires("campaigns.edit")
def step_move(campaign_id: int, step_id: int):
    campaign = services.get_campaign(campaign_id)
    try:
        services.move_step(campaign, _get_step(campaign, step_id), -1 if request.form.get("dir") == "up" else 1,
                           g.user)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
    return redirect(url_for("campaigns.campaign_detail", campaign_id=campaign.id))


# --- live segment counter ------------------------------------------------------------------------

@bp.post("/campaigns/segments")
@requires("campaigns.edit")
def segment_info():
    """The editor's live counter: the server's one calculator, called as the officer types."""
    payload = request.get_json(silent=True) or {}
    text = payload.get("text") if isinstance(payload.get("text"), str) else ""
    text = text[:5000]
    rewrite = payload.get("rewrite")
    if rewrite in ("typographic", "accents"):
        text = gsm_safe(text, remove_accents=rewrite == "accents")
    info = analyse(text)
    safe = analyse(gsm_safe(text))
    return jsonify(text=text if rewrite else None, encoding=info.encoding, characters=info.characters,
                   characters_label=_("%(n)s characters", n=info.characters),
                   segments_label=ngettext("%(num)s segment", "%(num)s segments", info.segments),
                   segments=info.segments, units=info.units, per_segment=info.per_segment,
                   non_gsm=list(info.non_gsm), rewritable=list(info.rewritable),
                   gsm_safe_segments=safe.segments, gsm_safe_encoding=safe.encoding)


# --- preview and test send -------------------------------------------------------------------------

@bp.get("/campaigns/<int:campaign_id>/steps/<int:step_id>/preview")
@requires("campaigns.view")
def step_preview(campaign_id: int, step_id: int):
    campaign = services.get_campaign(campaign_id)
    step = _get_step(campaign, step_id)
    language = request.args.get("language") or campaign.base_language
    if language not in campaign.languages:
        language = campaign.base_language
    channel = request.args.get("channel") if request.args.get("channel") in campaign.channels else (
        campaign.channels[0] if campaign.channels else "sms")
    country = request.args.get("country") if request.args.get("country") in campaign.countries else (
        campaign.countries[0] if campaign.countries else "")
    from .planning import content_for

    found = content_for(step, language)
    used, content = found if found else (None, None)
    values = variable_values(country)
    text = ""
    if content is not None:
        text = render(content.whatsapp_body if channel == "whatsapp" else content.sms_text, values)
    follow_ups = []  # what the person gets back when they answer (shown below the message)
    if content is not None and step.kind == "menu":
        follow_ups = [(o["number"], render(o.get("reply"), values)) for o in content.options if o.get("reply")]
    elif content is not None and step.kind == "poll" and content.thanks:
        follow_ups = [(None, render(content.thanks, values))]
    return render_template(
        "campaigns/preview.html", campaign=campaign, step=step, language=language, channel=channel,
        follow_ups=follow_ups,
        country=country, used_language=used, content=content, text=text, info=analyse(text),
        options=content.options if content else [], form=EmptyForm(),
        has_test_phone=bool(g.user.test_phone), can_edit=can(g.user.role, "campaigns.edit"),
        media_url=content.media_url if content and channel == "whatsapp" else None)


@bp.post("/campaigns/<int:campaign_id>/steps/<int:step_id>/test")
@requires("campaigns.edit")
def step_test_send(campaign_id: int, step_id: int):
    from .testsend import send_test

    campaign = services.get_campaign(campaign_id)
    step = _get_step(campaign, step_id)
    args = {k: request.form.get(k) for k in ("language", "channel", "country")}
    try:
        result = send_test(step, g.user, language=args["language"], channel=args["channel"],
                           country=args["country"], config=current_app.config)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(_("Test message sent to your number (%(sid)s, %(status)s).", sid=result.sid, status=result.status),
              "success")
    return redirect(url_for("campaigns.step_preview", campaign_id=campaign.id, step_id=step.id, **args))


# --- progress --------------------------------------------------------------------------------------



@bp.get("/campaigns/<int:campaign_id>/progress")
@requires("campaigns.view")
def campaign_progress(campaign_id: int):
    from .progress import COLUMNS, progress

    campaign = services.get_campaign(campaign_id)
    # Those who operate campaigns (launch, pause) see exact counts; evaluators see 1-4 as "<5".
    as_json = request.args.get("format") == "json" or request.accept_mimetypes.best == "application/json"
    p = progress(campaign, suppress_small_cells=hides_small_cells(g.user.role),
                 reach=not as_json or request.args.get("reach") == "1")
    if as_json:
        data = p.as_json()
        for f in data["failures"]:
            f["label"] = str(REASON_LABELS.get(f["reason"], f["reason"]))
        return jsonify(data)
    return render_template("campaigns/progress.html", campaign=campaign, p=p, columns=COLUMNS,
                           reasons=REASON_LABELS, labels=services.STATUS_LABELS)
