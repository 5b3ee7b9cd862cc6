"""The feedback queue pages: filter, code one item or a selection in bulk (with the codebook's
suggestions), and the codebook's administration (topics and suggestion rules).

Pages only; the rules are in ``services``. Every lookup by id goes through ``visible_items``, so a
sensitive item somebody else is assigned to is a 404."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..audience import services as audience
from ..auth.forms import EmptyForm
from ..auth.models import PartnerOrganisation
from ..campaigns.models import Campaign, Step
from ..config import UI_LOCALES
from ..core.database import int_arg, page_arg
from ..core.errors import ServiceError
from ..core.i18n import all_countries, language_name
from ..core.permissions import can, requires
from ..core.smallcells import cell, hides_small_cells
from ..extensions import db
from . import codebook
from . import services as fb
from .models import CRITICALITIES, ITEM_STATUSES, SOURCES, TYPES, CodingRule, FeedbackItem, FeedbackTopic

bp = Blueprint("feedback", __name__, template_folder="templates")

_KEEP = ("status", "type", "topic", "source", "country", "language", "campaign", "criticality", "mine",
         "sensitive", "per_page", "page")


def _labels(all_topics: list[FeedbackTopic]) -> dict:
    locale = str(get_locale() or "es")
    return {"types": fb.TYPE_LABELS, "statuses": fb.STATUS_LABELS, "sources": fb.SOURCE_LABELS,
            "criticalities": fb.CRITICALITY_LABELS, "topics": {t.id: t.label(locale) for t in all_topics}}


def _campaign_names(ids) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids))).all())


def _back_to_queue(raw: str | None) -> str:
    """The queue URL the bulk form came from (its filters and page), never an outside address."""
    if raw and raw.startswith("/feedback") and not raw.startswith("//"):
        return raw
    return url_for("feedback.queue")


def _coding_from_form(form, *, bulk: bool) -> fb.Coding:
    """Read the coding fields. In bulk, an empty field means "leave as it is"; on one item's page every
    field is set (an empty type or topic clears it)."""
    coding = fb.Coding()

    def text(name: str) -> str | None:
        value = form.get(name)
        return None if value is None else value.strip()

    kind, topic, crit, status, assignee = (text("type"), text("topic"), text("criticality"), text("status"),
                                           text("assigned_to"))
    if bulk:
        if kind:
            coding.type = None if kind == fb.UNCODED else kind
        if topic:
            coding.topic_id = None if topic == "none" else _int(topic, "feedback_unknown_topic")
        if crit:
            coding.criticality = crit
        if status:
            coding.status = status
        if assignee:
            coding.assigned_to_id = None if assignee == "none" else _int(assignee, "feedback_unknown_assignee")
        if form.get("sensitive") in ("yes", "no"):
            coding.sensitive = form.get("sensitive") == "yes"
        coding.use_suggestion = form.get("use_suggestion") == "1"
        return coding
    coding.type = kind or None
    coding.topic_id = _int(topic, "feedback_unknown_topic") if topic else None
    coding.criticality = crit or "none"
    coding.status = status or "new"
    coding.sensitive = form.get("sensitive") == "1"
    coding.loop_action = (form.get("loop_action") or "").strip()[:4000]
    coding.assigned_to_id = _int(assignee, "feedback_unknown_assignee") if assignee else None
    return coding


def _int(raw: str, code: str) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ServiceError(code, value=raw) from None


def _choices() -> dict:
    """What the queue's and an item's forms offer, and the labels they show (one read of the topics)."""
    all_topics = codebook.topics(active_only=False)
    countries = all_countries()
    if g.user.role == "officer" and g.user.countries:
        countries = [(c, n) for c, n in countries if c in g.user.countries]
    campaigns = [(r.id, r.name) for r in db.session.execute(
        sa.select(Campaign.id, Campaign.name).where(Campaign.status != "draft").order_by(Campaign.name))]
    return {"countries": countries, "campaigns": campaigns,
            "languages": [(c, language_name(c)) for c in audience.enabled_languages()],
            "labels": _labels(all_topics), "topic_list": [t for t in all_topics if t.active], "coders": fb.coders(),
            "TYPES": TYPES, "STATUSES": ITEM_STATUSES,
            "SOURCES": SOURCES, "CRITICALITIES": CRITICALITIES, "page_sizes": fb.PAGE_SIZES}


# --- the queue ---------------------------------------------------------------------------------------

@bp.get("/feedback")
@requires("feedback.view")
def queue():
    filters = fb.QueueFilters.from_args(request.args)
    page = page_arg(request.args)
    rows, total, more = fb.queue(g.user, filters, page)
    here = url_for("feedback.queue") + ("?" + urlencode([(k, v) for k, v in request.args.items(multi=True)
                                                          if k in _KEEP]) if request.args else "")
    partners = dict(db.session.execute(sa.select(PartnerOrganisation.id, PartnerOrganisation.name).where(
        PartnerOrganisation.id.in_({r.partner_id for r in rows if r.partner_id}))).all()) if rows else {}
    # Counts shown like every count of the programme: "<5" to those who do not run campaigns (evaluators).
    suppress = hides_small_cells(g.user.role)
    return render_template("feedback/queue.html", rows=rows, total=total, page=page, more=more, filters=filters,
                           shown=(lambda n: cell(n)) if suppress else (lambda n: n),
                           here=here, counts=fb.queue_counts(g.user), form=EmptyForm(), mask=fb.mask_numbers,
                           campaign_names=_campaign_names(r.campaign_id for r in rows), partners=partners,
                           can_code=can(g.user.role, "feedback.code"), **_choices())


@bp.post("/feedback/bulk")
@requires("feedback.code")
def bulk():
    back = _back_to_queue(request.form.get("next"))
    if not EmptyForm().validate_on_submit():
        abort(400)
    ids = request.form.getlist("ids")
    try:
        coding = _coding_from_form(request.form, bulk=True)
        count = fb.code_items(g.user, [_int(i, "feedback_nothing_selected") for i in ids], coding,
                              ip=request.remote_addr)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(back)
    db.session.commit()
    flash(ngettext("%(num)s item coded.", "%(num)s items coded.", count), "success")
    return redirect(back)


# --- one item ----------------------------------------------------------------------------------------

def _item_or_404(item_id: int) -> FeedbackItem:
    item = fb.visible_item(g.user, item_id)
    if item is None:
        abort(404)
    return item


def _render_item(item: FeedbackItem, *, error: str | None = None, status: int = 200):
    suggestion = codebook.suggest(item.text, item.language)
    step = db.session.get(Step, item.step_id) if item.step_id else None
    partner = db.session.get(PartnerOrganisation, item.partner_id) if item.partner_id else None
    return render_template(
        "feedback/item.html", item=item, text=fb.mask_numbers(item.text), suggestion=suggestion, step=step,
        partner=partner, campaign_name=_campaign_names([item.campaign_id]).get(item.campaign_id),
        form=EmptyForm(), error=error, can_code=can(g.user.role, "feedback.code"),
        back=_back_to_queue(request.args.get("next") or request.form.get("next")), **_choices()), status


@bp.get("/feedback/<int:item_id>")
@requires("feedback.view")
def item(item_id: int):
    return _render_item(_item_or_404(item_id))


@bp.post("/feedback/<int:item_id>")
@requires("feedback.code")
def code_item(item_id: int):
    item = _item_or_404(item_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        fb.code_items(g.user, [item.id], _coding_from_form(request.form, bulk=False), ip=request.remote_addr)
    except ServiceError as exc:
        db.session.rollback()
        return _render_item(_item_or_404(item_id), error=exc.message, status=400)
    db.session.commit()
    flash(_("Item %(id)s saved.", id=item_id), "success")
    visible = fb.visible_item(g.user, item_id) is not None
    back = _back_to_queue(request.form.get("next"))
    return redirect(url_for("feedback.item", item_id=item_id, next=back) if visible else back)


# --- the codebook ------------------------------------------------------------------------------------

def _render_codebook(status: int = 200, error: str | None = None):
    rules = list(db.session.scalars(sa.select(CodingRule).order_by(CodingRule.id)))
    all_topics = codebook.topics(active_only=False)
    return render_template("feedback/codebook.html", topics=all_topics, rules=rules,
                           labels=_labels(all_topics), ui_locales=UI_LOCALES, form=EmptyForm(), error=error,
                           languages=[(c, language_name(c)) for c in audience.enabled_languages()],
                           TYPES=TYPES), status


@bp.get("/admin/codebook", endpoint="codebook")
@requires("codebook.manage")
def codebook_page():
    return _render_codebook()


def _codebook_change(change: Callable[[], object], done: str, anchor: str):
    """Every codebook form: checked, one service call, committed; a refusal shows the page again with
    the reason (status 400) and changes nothing."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        change()
    except ServiceError as exc:
        db.session.rollback()
        return _render_codebook(400, exc.message)
    db.session.commit()
    flash(done, "success")
    return redirect(url_for("feedback.codebook") + anchor)


def _topic_labels(form) -> dict[str, str]:
    return {code: (form.get(f"label_{code}") or "").strip()[:100] for code in UI_LOCALES
            if (form.get(f"label_{code}") or "").strip()}


@bp.post("/admin/codebook/topics")
@requires("codebook.manage")
def topic_create():
    form = request.form
    return _codebook_change(lambda: codebook.save_topic(
        None, code=form.get("code", ""), labels=_topic_labels(form), position=form.get("position", type=int_arg),
        active=True, actor=g.user), _("Topic added."), "#topics")


@bp.post("/admin/codebook/topics/<int:topic_id>")
@requires("codebook.manage")
def topic_update(topic_id: int):
    topic = db.session.get(FeedbackTopic, topic_id) or abort(404)
    form = request.form
    return _codebook_change(lambda: codebook.save_topic(
        topic, code=topic.code, labels=_topic_labels(form), position=form.get("position", type=int_arg),
        active=form.get("active") == "1", actor=g.user), _("Topic saved."), "#topics")


def _rule_fields(form) -> dict:
    topic = (form.get("topic") or "").strip()
    return {"words": form.get("words", ""), "language": (form.get("language") or "").strip() or None,
            "type": (form.get("type") or "").strip() or None,
            "topic_id": _int(topic, "feedback_unknown_topic") if topic else None,
            "sensitive": form.get("sensitive") == "1"}


_RESUGGESTED = _l("the suggestions of items nobody has coded yet were updated")


@bp.post("/admin/codebook/rules")
@requires("codebook.manage")
def rule_create():
    def change():
        codebook.save_rule(None, actor=g.user, **_rule_fields(request.form))
        codebook.resuggest_uncoded()

    return _codebook_change(change, _("Rule added; %(then)s.", then=_RESUGGESTED), "#rules")


@bp.post("/admin/codebook/rules/<int:rule_id>")
@requires("codebook.manage")
def rule_update(rule_id: int):
    rule = db.session.get(CodingRule, rule_id) or abort(404)

    def change():
        if request.form.get("only") == "active":
            codebook.set_rule_active(rule, request.form.get("active") == "1", g.user)
        else:
            codebook.save_rule(rule, actor=g.user, **_rule_fields(request.form))
        codebook.resuggest_uncoded()

    return _codebook_change(change, _("Rule saved; %(then)s.", then=_RESUGGESTED), "#rules")


@bp.post("/admin/codebook/rules/<int:rule_id>/delete")
@requires("codebook.manage")
def rule_delete(rule_id: int):
    rule = db.session.get(CodingRule, rule_id) or abort(404)

    def change():
        codebook.delete_rule(rule, g.user)
        codebook.resuggest_uncoded()

    return _codebook_change(change, _("Rule removed; %(then)s.", then=_RESUGGESTED), "#rules")
