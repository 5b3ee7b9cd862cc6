"""The dashboard and the reports: engagement (all campaigns, and one campaign), feedback, partner reach
and cost, each with filters in the URL, charts with their numbers in a table, and CSV/XLSX exports
(audited). Counts of 1 to 4 are "<5" everywhere; people appear by pseudonym only."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, g, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..audience.models import ContactChannel, PartnerRegistration
from ..audience.services import enabled_languages, visible_contacts
from ..auth.models import User
from ..auth.services import audit
from ..campaigns.models import Campaign
from ..core.i18n import all_countries, language_name
from ..core.models import utcnow
from ..core.permissions import can, requires
from ..extensions import db
from . import charts, exports, queries, tables
from .filters import DIMENSIONS, ReportFilters, campaign_choices, parse_filters, step_choices
from .suppression import cell

bp = Blueprint("reports", __name__, template_folder="templates")

#: Each report page: its title, the filters it offers, and where it is exported.
PAGES = {
    "engagement": (_l("Engagement"), ("campaign", "step", "country", "language", "channel", "from", "to", "by")),
    "campaign": (_l("Campaign report"), ("step", "country", "language", "channel", "from", "to")),
    "feedback": (_l("Feedback"), ("campaign", "country", "language", "channel", "from", "to")),
    "partners": (_l("Partner reach"), ("campaign", "country", "language", "from", "to")),
    "cost": (_l("Cost"), ("campaign", "step", "country", "language", "channel", "from", "to")),
}


def _locale() -> str:
    return str(get_locale() or "en")


def _grouped(column) -> list[tuple[str, str]]:
    scoped = visible_contacts(g.user).subquery()
    rows = db.session.execute(
        sa.select(scoped.c[column], sa.func.count()).group_by(scoped.c[column]).order_by(sa.func.count().desc())
    ).all()
    return [(key, cell(n)) for key, n in rows]


@bp.get("/")
@requires("dashboard.view")
def dashboard():
    if g.user.role == "partner":  # their registrations, never contacts (see audience.register_for_partner)
        return _partner_dashboard()
    scoped = visible_contacts(g.user).subquery()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(scoped))
    reach = db.session.execute(
        sa.select(ContactChannel.channel,
                  sa.func.count().filter(ContactChannel.campaigns.is_(True), ContactChannel.opted_out_at.is_(None)),
                  sa.func.count().filter(ContactChannel.opted_out_at.is_not(None)))
        .where(ContactChannel.contact_id.in_(sa.select(scoped.c.id)))
        .group_by(ContactChannel.channel).order_by(ContactChannel.channel)
    ).all()
    inbound_only = db.session.scalar(
        sa.select(sa.func.count()).select_from(scoped).where(scoped.c.status == "inbound_only"))
    summary = None
    if can(g.user.role, "reports.view"):  # evaluators, officers, administrators; partners see the above only
        f, _errors = parse_filters({}, g.user)
        s = queries.summary(f, g.user)
        db.session.commit()  # rollups computed for this page are kept
        by_key = {t.key: t for t in tables.partner_tables(s.reach)}
        summary = [tables.funnel_table(s.engagement), tables.feedback_tables(s.feedback, _locale(), rumours=False)[0],
                   by_key["reach_by_sex"], by_key["reach_by_age"]]
    return render_template(
        "reports/dashboard.html", total=cell(total), inbound_only=cell(inbound_only),
        by_country=_grouped("country"), by_language=_grouped("language"),
        reach=[(ch, cell(ok), cell(out)) for ch, ok, out in reach], summary=summary, chart=charts.for_table,
        num=tables.display,
    )


def _partner_dashboard():
    r = PartnerRegistration
    mine = r.partner_id == g.user.partner_id

    def grouped(column) -> list[tuple[str, int]]:
        return list(db.session.execute(sa.select(column, sa.func.count()).where(mine).group_by(column)
                                       .order_by(sa.func.count().desc(), column)).all())

    total = db.session.scalar(sa.select(sa.func.count()).select_from(r).where(mine))
    return render_template("reports/dashboard.html", registrations=True, total=total, inbound_only=None,
                           by_country=grouped(r.country), by_language=grouped(r.language), reach=[], summary=None,
                           chart=charts.for_table, num=tables.display)


# --- report pages --------------------------------------------------------------------------------------

def _filters(page: str, campaign_id: int | None = None) -> tuple[ReportFilters, list[tuple[str, str]]]:
    args = request.args.to_dict()
    if campaign_id is not None:
        args["campaign"] = str(campaign_id)
    default_by = "campaign" if page == "engagement" else "step"
    return parse_filters(args, g.user, default_by=default_by,
                         allowed_by=DIMENSIONS if page == "engagement" else (default_by,))


def _render(page: str, f: ReportFilters, errors, sections, *, campaign: Campaign | None = None, **extra):
    title, fields = PAGES[page]
    countries = all_countries()
    if f.scope is not None:
        countries = [(c, n) for c, n in countries if c in f.scope]
    export_args = f.args()
    if campaign is not None:
        export_args.pop("campaign", None)
    exports_to = {fmt: url_for(export_endpoint(page, fmt), **({"campaign_id": campaign.id} if campaign else {}),
                               **export_args) for fmt in ("csv", "xlsx")}
    return render_template(
        "reports/report.html", page=page, title=campaign.name if campaign else title, heading=title, f=f,
        errors=errors, error_fields={name for name, _m in errors}, fields=fields, sections=sections,
        campaign=campaign, campaigns=campaign_choices(), steps=step_choices(f.campaign_id),
        countries=countries, languages=[(c, language_name(c)) for c in enabled_languages()],
        dimensions=[(d, tables.BY_CHOICES[d]) for d in DIMENSIONS], chart=charts.for_table, num=tables.display,
        exports=exports_to, **extra), 400 if errors else 200


def _engagement_sections(e: queries.Engagement) -> list[tuple[str, list[tables.Table]]]:
    t = tables.engagement_tables(e)
    return [(_("Engagement funnel"), t)]


@bp.get("/reports")
@requires("reports.view")
def overview():
    f, errors = _filters("engagement")
    e = queries.engagement(f, (f.by,))
    db.session.commit()
    return _render("engagement", f, errors, _engagement_sections(e), as_of=e.as_of)


def _campaign_sections(r: queries.CampaignReport) -> list[tuple[str, list[tables.Table]]]:
    by_type, by_topic, *_others, rumours = tables.feedback_tables(r.feedback, _locale())
    return [(_("Engagement funnel"), tables.engagement_tables(r.engagement)),
            (_("Polls"), tables.poll_tables(r.polls)),
            (_("Feedback"), [by_type, by_topic, rumours]),
            (_("Cost"), tables.cost_tables(r.cost, by_campaign=False))]


def _campaign(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        abort(404)
    return campaign


@bp.get("/reports/campaigns/<int:campaign_id>")
@requires("reports.view")
def campaign_report(campaign_id: int):
    campaign = _campaign(campaign_id)
    f, errors = _filters("campaign", campaign.id)
    r = queries.campaign_report(f, g.user)
    db.session.commit()
    return _render("campaign", f, errors, _campaign_sections(r), campaign=campaign, as_of=r.engagement.as_of,
                   polls_note=bool(r.polls) and f.narrowed)


@bp.get("/reports/feedback")
@requires("reports.view")
def feedback_report():
    f, errors = _filters("feedback")
    fr = queries.feedback(f, g.user)
    return _render("feedback", f, errors, [(_("Feedback"), tables.feedback_tables(fr, _locale()))],
                   items_exports={fmt: url_for(export_endpoint("feedback-items", fmt), **f.args())
                                  for fmt in ("csv", "xlsx")})


@bp.get("/reports/partners")
@requires("reports.view")
def partners_report():
    f, errors = _filters("partners")
    return _render("partners", f, errors, [(_("Partner reach"), tables.partner_tables(queries.partner_reach(f)))])


@bp.get("/reports/cost")
@requires("reports.view")
def cost_report():
    f, errors = _filters("cost")
    c = queries.cost(f)
    db.session.commit()
    return _render("cost", f, errors, [(_("Cost"), tables.cost_tables(c))])


# --- exports -------------------------------------------------------------------------------------------

FEEDBACK_ITEM_COLUMNS = (
    ("id", _l("Item")), ("received_at", _l("Received (UTC)")), ("source", _l("Source")), ("country", _l("Country")),
    ("language", _l("Language")), ("channel", _l("Channel")), ("campaign_id", _l("Campaign id")),
    ("step_id", _l("Step id")), ("pseudonym", _l("Contact (pseudonym)")), ("partner", _l("Partner organisation")),
    ("type", _l("Type")), ("topic", _l("Topic")), ("sensitive", _l("Sensitive")), ("criticality", _l("Criticality")),
    ("status", _l("Status")), ("text", _l("Text (numbers masked)")), ("loop_action", _l("How the loop was closed")),
    ("coded_at", _l("Coded (UTC)")))


def _feedback_item_rows(items, then=None):
    """The export's rows; ``then`` runs after the last one (the audit of a streamed export)."""
    yield [str(label) for _key, label in FEEDBACK_ITEM_COLUMNS]
    for row in items:
        yield [getattr(row, key) for key, _label in FEEDBACK_ITEM_COLUMNS]
    if then is not None:
        then()


def _export_tables(report: str, f: ReportFilters, campaign: Campaign | None) -> list[tables.Table]:
    if report == "engagement":
        return tables.engagement_tables(queries.engagement(f, (f.by,)))
    if report == "campaign":
        return [t for _title, ts in _campaign_sections(queries.campaign_report(f, g.user)) for t in ts]
    if report == "feedback":
        return tables.feedback_tables(queries.feedback(f, g.user), _locale())
    if report == "partners":
        return tables.partner_tables(queries.partner_reach(f))
    return tables.cost_tables(queries.cost(f))


def export(report: str, fmt: str, campaign_id: int | None = None):
    """Every report as CSV or XLSX, under the filters of its URL; written to the audit log (which report,
    format and filters; never anything about a person) once it is made: a streamed one after its last row.
    Nothing loaded in the request's session is read while it streams (a real server ends that session)."""
    campaign = _campaign(campaign_id) if campaign_id is not None else None
    page = "feedback" if report == "feedback-items" else report
    f, errors = _filters(page, campaign.id if campaign else None)
    if errors:
        message = " ".join(msg for _name, msg in errors)
        return render_template("errors/error.html", code=400, message=message), 400
    now = utcnow()
    user_id, ip, target = g.user.id, request.remote_addr, campaign.id if campaign else None

    def audited() -> None:
        """Written once the export is made: a failed one is not recorded as given out."""
        audit("report.exported", db.session.get(User, user_id), target_type="campaign" if target else None,
              target_id=target, ip=ip, report=report, format=fmt, filters=f.described())
        db.session.commit()

    name = f"campaign-{campaign.id}" if campaign else report
    if report != "feedback-items":
        built = _export_tables(report, f, campaign)
        title = campaign.name if campaign else str(PAGES[report][0])
        response = exports.tables_response(fmt, title, f.described(), built, name, now)
        audited()
        return response
    items = queries.feedback_items(f, g.user)  # who sees what is settled here, in the request
    filename = f"c4d-{name}-{now:%Y%m%d-%H%M}.{fmt}"
    if fmt == "csv":  # streamed: audited after its last row
        return exports.csv_response(_feedback_item_rows(items, then=audited), filename)
    path = exports.xlsx_file([(_("Coded feedback"), _feedback_item_rows(items))])
    audited()
    return exports.xlsx_response(path, filename)


def export_endpoint(report: str, fmt: str) -> str:
    return f"reports.export_{report.replace('-', '_')}_{fmt}"


def _export_view(report: str, fmt: str):
    """One endpoint per report and format (no URL argument but the campaign's id)."""

    @requires("reports.export")
    def view(campaign_id: int | None = None):
        return export(report, fmt, campaign_id)

    view.__name__ = export_endpoint(report, fmt).split(".")[1]
    view.__doc__ = f"The {report} report as {fmt.upper()} (audited)."
    return view


for _report in ("engagement", "feedback", "partners", "cost", "feedback-items"):
    for _fmt in ("csv", "xlsx"):
        bp.add_url_rule(f"/reports/{_report}.{_fmt}", view_func=_export_view(_report, _fmt), methods=["GET"])
for _fmt in ("csv", "xlsx"):
    bp.add_url_rule(f"/reports/campaigns/<int:campaign_id>.{_fmt}", view_func=_export_view("campaign", _fmt),
                    methods=["GET"])
