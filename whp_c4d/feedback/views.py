"""Partner activity reports: the list, the mobile form (new and correction), one report, and the
administrators' notices of protection concerns.

The form posts plain fields parsed by the one schema (``schemas.PartnerReportSchema``); CSRF comes from
the app-wide protection. Every lookup by id goes through ``partner_services.visible_reports``, so another
organisation's report is a 404."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import ValidationError

from ..auth.forms import EmptyForm
from ..auth.models import PartnerOrganisation
from ..campaigns.models import Campaign
from ..core.database import page_arg
from ..core.errors import ServiceError
from ..core.i18n import country_name, language_name
from ..core.permissions import can, requires
from ..core.phones import PROGRAMME_COUNTRIES
from ..core.schemas import flatten_errors
from ..core.smallcells import cell
from ..extensions import db
from . import partner_services as ps
from .models import AGE_FIELDS, SEX_FIELDS
from .schemas import COUNT_FIELDS, LIST_FIELDS, TEXT_FIELDS, admin_areas
from .services import mask_numbers

bp = Blueprint("partner_reports", __name__, template_folder="templates")

_SCALARS = ("submission_token", "partner_id", "activity_date", "country", "admin_area", "locality",
            "activity_type", "activity_other", "materials", *COUNT_FIELDS, *TEXT_FIELDS, "protection_text")
# Where each error is shown, in the order of the form (the list at the top follows it).
_ERROR_ORDER = ("partner_id", "submission_token", "activity_date", "activity_type", "activity_other", "country",
                "admin_area", "locality", "campaign_ids", "materials", "participants", *SEX_FIELDS, "by_sex",
                *AGE_FIELDS, "by_age", "groups", "languages", *TEXT_FIELDS, "protection_concern", "protection_text")


def _payload(form) -> dict:
    """The form's fields, as the schema reads them (nothing else: unknown names are not ours)."""
    data: dict = {name: form.get(name, "") for name in _SCALARS if name in form}
    for name in LIST_FIELDS:
        data[name] = form.getlist(name)
    data["protection_concern"] = bool(form.get("protection_concern"))
    return data


def _errors(messages) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, message in flatten_errors(messages):
        out.setdefault(name.split(".")[0], []).append(message)
    return out


def _draft_prefix() -> str:
    return f"c4d-pr:{g.user.id}:new:"


def _render_form(*, values: dict, errors: dict, report=None, status: int = 200):
    hidden_concern = bool(report is not None and report.protection_concern and not ps.can_read_protection(g.user))
    order = {name: i for i, name in enumerate(_ERROR_ORDER)}
    error_list = sorted(((name, msgs[0]) for name, msgs in errors.items()), key=lambda e: order.get(e[0], 99))
    countries = [(c, country_name(c)) for c in sorted(PROGRAMME_COUNTRIES, key=country_name)]
    return render_template(
        "feedback/report_form.html", values=values, errors=errors, error_list=error_list, report=report,
        hidden_concern=hidden_concern, countries=countries, areas=admin_areas(),
        campaigns=ps.campaign_choices(), partners=ps.partner_choices() if g.user.role != "partner" else [],
        languages=[(c, language_name(c)) for c in ps.enabled_languages()],
        activity_labels=ps.ACTIVITY_LABELS, group_labels=ps.GROUP_LABELS, labels=ps.FIELD_LABELS,
        sex_fields=SEX_FIELDS, age_fields=AGE_FIELDS, draft_prefix=_draft_prefix() if report is None else "",
    ), status


def _defaults() -> dict:
    country = ""
    if g.user.partner is not None and g.user.partner.country in PROGRAMME_COUNTRIES:
        country = g.user.partner.country
    return {"submission_token": ps.new_token(), "country": country, "activity_date": date.today().isoformat()}


def _values_of(report) -> dict:
    """A stored report as the form shows it: a breakdown never given stays empty, not zeros."""
    values: dict = {name: getattr(report, name) or "" for name in _SCALARS if hasattr(report, name)}
    values["activity_date"] = report.activity_date.isoformat()
    for group in (SEX_FIELDS, AGE_FIELDS):
        given = any(getattr(report, n) for n in group) or not report.participants
        for name in group:
            values[name] = str(getattr(report, name)) if given else ""
    values["participants"] = str(report.participants)
    for name in LIST_FIELDS:
        values[name] = [str(v) for v in getattr(report, name) or []]
    values["protection_concern"] = report.protection_concern
    values["protection_text"] = (report.protection_text or "") if ps.can_read_protection(g.user) else ""
    values["submission_token"] = report.submission_token
    return values


def _form_values(payload: dict) -> dict:
    """What was sent, shown again as it was typed: nothing is lost on an error."""
    return {**payload, **{name: [str(v) for v in payload.get(name, [])] for name in LIST_FIELDS}}


def _service_error_field(code: str) -> str:
    return "submission_token" if code == "report_token_taken" else "partner_id"


# --- the list ------------------------------------------------------------------------------------------

@bp.app_context_processor
def _notice_globals():
    def open_notices() -> int | None:
        """The navigation's badge for administrators: one COUNT, only where the link is shown."""
        user = g.get("user") or current_user
        if not getattr(user, "is_authenticated", False) or not can(user.role, "protection.view"):
            return None
        try:
            return ps.open_notice_count()
        except sa.exc.SQLAlchemyError:  # an error page while the database is away must still render
            db.session.rollback()
            return None

    return {"open_notices": open_notices}


@bp.get("/activity-reports")
@requires("partner_reports.view")
def reports():
    filters = ps.ReportFilters.from_args(request.args)
    page = page_arg(request.args)
    rows, more = ps.list_reports(g.user, filters, page)
    names = dict(db.session.execute(sa.select(PartnerOrganisation.id, PartnerOrganisation.name)).all())
    suppress = {r.id: ps.suppress_counts(g.user, r) for r in rows}
    return render_template(
        "feedback/reports.html", rows=rows, more=more, page=page, filters=filters, names=names,
        partners=ps.partner_choices() if g.user.role != "partner" else [],
        countries=[(c, country_name(c)) for c in sorted(PROGRAMME_COUNTRIES, key=country_name)],
        activity_labels=ps.ACTIVITY_LABELS, shown=lambda r: cell(r.participants) if suppress[r.id] else r.participants,
    )


# --- the form ------------------------------------------------------------------------------------------

@bp.route("/activity-reports/new", methods=["GET", "POST"])
@requires("partner_reports.submit")
def new_report():
    if request.method == "GET":
        return _render_form(values=_defaults(), errors={})
    payload = _payload(request.form)
    existing = ps.existing_submission(g.user, payload.get("submission_token"))
    if existing is not None:  # sent again (a dropped connection, a second tap): the first one counts
        flash(_("This report was already received: here it is. Correct it if something changed."), "warning")
        return redirect(url_for(".report", report_id=existing.id), 303)
    try:
        data = ps.report_schema().load(payload)
    except ValidationError as exc:
        return _render_form(values=_form_values(payload), errors=_errors(exc.messages), status=400)
    try:
        partner_id = ps.filing_partner(g.user, data.get("partner_id"))
        report, created = ps.create_report(data, actor=g.user, partner_id=partner_id, ip=request.remote_addr)
    except ServiceError as exc:
        db.session.rollback()
        return _render_form(values=_form_values(payload), errors={_service_error_field(exc.code): [exc.message]},
                            status=400)
    db.session.commit()
    if created:
        flash(_("Thank you: the report was saved."), "success")
    else:
        flash(_("This report was already received: here it is. Correct it if something changed."), "warning")
    return redirect(url_for(".report", report_id=report.id), 303)


@bp.route("/activity-reports/<int:report_id>/edit", methods=["GET", "POST"])
@requires("partner_reports.submit")
def edit_report(report_id: int):
    report = ps.get_visible_report(g.user, report_id)
    if not ps.can_edit(g.user, report):
        abort(404)
    if request.method == "GET":
        return _render_form(values=_values_of(report), errors={}, report=report)
    payload = _payload(request.form)
    payload.pop("submission_token", None)
    payload.pop("partner_id", None)
    hidden_concern = report.protection_concern and not ps.can_read_protection(g.user)
    try:
        data = ps.report_schema(for_update=True, protection_text_optional=hidden_concern,
                                campaign_ids=report.campaign_ids).load(payload)
    except ValidationError as exc:
        values = {**_form_values(payload), "submission_token": report.submission_token}
        return _render_form(values=values, errors=_errors(exc.messages), report=report, status=400)
    changed = ps.update_report(report, data, actor=g.user, ip=request.remote_addr)
    db.session.commit()
    flash(_("The corrections were saved.") if changed else _("Nothing was changed."), "success")
    return redirect(url_for(".report", report_id=report.id), 303)


# --- one report ----------------------------------------------------------------------------------------

@bp.get("/activity-reports/<int:report_id>")
@requires("partner_reports.view")
def report(report_id: int):
    report = ps.get_visible_report(g.user, report_id)
    readable = report.protection_concern and ps.can_read_protection(g.user)
    if readable:
        ps.record_protection_view(report, g.user, request.remote_addr)
        db.session.commit()
    suppress = ps.suppress_counts(g.user, report)
    own = g.user.role == "admin" or (g.user.role == "partner" and g.user.partner_id == report.partner_id)
    campaigns = dict(db.session.execute(sa.select(Campaign.id, Campaign.name).where(
        Campaign.id.in_(report.campaign_ids or [-1]))).all())
    return render_template(
        "feedback/report.html", report=report, readable=readable, can_edit=ps.can_edit(g.user, report),
        count=(lambda n: cell(n)) if suppress else (lambda n: n), text=(lambda t: t) if own else mask_numbers,
        campaigns=[campaigns.get(i, f"#{i}") for i in report.campaign_ids or []],
        partner=db.session.get(PartnerOrganisation, report.partner_id), activity_labels=ps.ACTIVITY_LABELS,
        group_labels=ps.GROUP_LABELS, labels=ps.FIELD_LABELS, sex_fields=SEX_FIELDS, age_fields=AGE_FIELDS,
        text_fields=TEXT_FIELDS, draft_key=_draft_prefix() + report.submission_token,
    )


# --- notices -------------------------------------------------------------------------------------------

@bp.get("/admin/notices")
@requires("protection.view")
def notices():
    return render_template("feedback/notices.html", open_rows=ps.notices(read=False),
                           read_rows=ps.notices(read=True, limit=20), form=EmptyForm())


@bp.post("/admin/notices/<int:notice_id>/read")
@requires("protection.view")
def notice_read(notice_id: int):
    notice = ps.get_notice(notice_id)
    if ps.mark_notice_read(notice, g.user, request.remote_addr):
        db.session.commit()
        flash(_("Notice marked as read."), "success")
    else:
        flash(_("Somebody had already marked this notice as read."), "success")
    return redirect(url_for(".notices"), 303)
