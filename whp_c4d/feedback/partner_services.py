"""Partner activity reports: filing one once per submission token, correcting it, who sees which, the
protection concerns administrators are notified of, and the choices the form offers.

A report's free texts and protection text are personal data: never logged, never in an audit event
(ids and field names only)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from werkzeug.exceptions import NotFound

from ..audience.services import enabled_languages
from ..auth.models import PartnerOrganisation, User
from ..auth.services import audit
from ..core.database import id_arg
from ..core.errors import MESSAGES, ServiceError
from ..core.models import utcnow
from ..core.permissions import can
from ..core.smallcells import hides_small_cells
from ..extensions import db
from .models import Notice, PartnerReport
from .schemas import COUNT_FIELDS, TEXT_FIELDS, PartnerReportSchema, admin_areas
from .services import sync_partner_items

MESSAGES.update({
    "report_token_taken": _l("This submission token belongs to another organisation's report: send the "
                             "report from a new form."),
    "report_partner_required": _l("Choose the organisation the report is for."),
    "report_unknown_partner": _l("Unknown or inactive partner organisation %(value)s."),
    "report_other_partner": _l("You can only file reports for your own organisation."),
    "report_no_partner": _l("Your account does not belong to a partner organisation."),
})

ACTIVITY_LABELS = {
    "workshop": _l("Workshop"),
    "community_meeting": _l("Community meeting"),
    "radio": _l("Radio"),
    "materials": _l("Distribution of materials"),
    "social_media": _l("Social media"),
    "other": _l("Other"),
}
GROUP_LABELS = {
    "in_transit": _l("People in transit"),
    "returnees": _l("Returnees"),
    "host_community": _l("Host community"),
    "indigenous": _l("Indigenous peoples"),
    "disabilities": _l("People with disabilities"),
    "children": _l("Children and adolescents"),
    "women": _l("Women and girls"),
    "lgbtiq": _l("LGBTIQ+ people"),
    "other": _l("Other groups"),
}
AREA_LEVEL_LABELS = {"district": _l("District"), "parish": _l("Parish"), "province": _l("Province"),
                     "department": _l("Department"), "state": lazy_pgettext("administrative level", "State")}
#: Every field's label, for the form and for the list of errors at its top.
FIELD_LABELS = {
    "partner_id": _l("Organisation"),
    "submission_token": _l("Submission"),
    "activity_date": _l("Date of the activity"),
    "country": _l("Country"),
    "admin_area": _l("Department, province or state"),
    "locality": _l("Town, village or neighbourhood"),
    "activity_type": _l("Type of activity"),
    "activity_other": _l("What kind of activity"),
    "campaign_ids": _l("Campaigns"),
    "materials": _l("Materials used"),
    "participants": _l("Total participants"),
    "women": _l("Women"),
    "men": _l("Men"),
    "sex_other": _l("Other or not stated"),
    "by_sex": _l("Participants by sex"),
    "age_under_13": _l("Under 13"),
    "age_13_17": _l("13 to 17"),
    "age_18_59": _l("18 to 59"),
    "age_60_plus": _l("60 and over"),
    "by_age": _l("Participants by age"),
    "groups": _l("Groups reached"),
    "languages": _l("Languages used"),
    "what_worked": _l("What worked"),
    "what_did_not": _l("What did not work"),
    "questions_heard": _l("Questions heard"),
    "rumours_heard": _l("Rumours or false information heard"),
    "suggestions": _l("Suggestions"),
    "protection_concern": _l("Protection concern"),
    "protection_text": _l("The protection concern"),
}
#: Roles that see every organisation's reports (partners see their own organisation's only).
ALL_REPORT_ROLES = ("admin", "officer", "evaluator")
PAGE_SIZE = 50
_EDITABLE = ("activity_date", "country", "admin_area", "locality", "activity_type", "activity_other",
             "campaign_ids", "materials", *COUNT_FIELDS, "groups", "languages", *TEXT_FIELDS)


def new_token() -> str:
    return secrets.token_urlsafe(24)


# --- the form's choices ------------------------------------------------------------------------------

def campaign_choices() -> list[tuple[int, str]]:
    """Campaigns a partner may say the activity was about: any that left the draft stage, by name."""
    from ..campaigns.models import Campaign

    return [(i, n) for i, n in db.session.execute(
        sa.select(Campaign.id, Campaign.name).where(Campaign.status != "draft").order_by(Campaign.name, Campaign.id))]


def partner_choices() -> list[PartnerOrganisation]:
    return list(db.session.scalars(sa.select(PartnerOrganisation).where(PartnerOrganisation.active.is_(True))
                                   .order_by(PartnerOrganisation.name)))


def report_schema(*, for_update: bool = False, protection_text_optional: bool = False,
                  campaign_ids: list[int] | None = None) -> PartnerReportSchema:
    """The schema with today's choices: enabled languages and the campaigns one may name (plus those a
    report being corrected already names, should one have gone back to draft since)."""
    ids = [i for i, _name in campaign_choices()] + list(campaign_ids or [])
    return PartnerReportSchema(languages=enabled_languages(), campaign_ids=ids, for_update=for_update,
                               protection_text_optional=protection_text_optional)


def area_level(country: str) -> str:
    return admin_areas().get(country, {}).get("level", "")


# --- who sees what -----------------------------------------------------------------------------------

def visible_reports(user: User) -> sa.Select:
    """Reports ``user`` may open: a partner, their own organisation's; administrators, officers and
    evaluators, every organisation's (an officer limited to some countries, those countries')."""
    q = sa.select(PartnerReport)
    if user.role == "partner":
        return q.where(PartnerReport.partner_id == (user.partner_id or -1))
    if user.role not in ALL_REPORT_ROLES:
        return q.where(sa.false())
    if user.role == "officer" and user.countries:
        q = q.where(PartnerReport.country.in_(user.countries))
    return q


def get_visible_report(user: User, report_id: int) -> PartnerReport:
    """The report, or 404 (never 403: whether an id exists is itself information)."""
    report = db.session.scalar(visible_reports(user).where(PartnerReport.id == report_id))
    if report is None:
        raise NotFound()
    return report


def can_edit(user: User, report: PartnerReport) -> bool:
    """Partners correct their own organisation's reports; administrators any."""
    if not can(user.role, "partner_reports.submit"):
        return False
    return user.role == "admin" or (user.role == "partner" and user.partner_id == report.partner_id)


def can_read_protection(user: User) -> bool:
    return can(user.role, "protection.view")


def suppress_counts(user: User, report: PartnerReport | None = None) -> bool:
    """Counts of 1 to 4 people show as "<5" to those who neither filed the report nor operate campaigns."""
    if not hides_small_cells(user.role):
        return False
    return not (report is not None and user.role == "partner" and user.partner_id == report.partner_id)


@dataclass(frozen=True)
class ReportFilters:
    partner_id: int | None = None
    country: str | None = None

    @classmethod
    def from_args(cls, args) -> ReportFilters:
        country = (args.get("country") or "").strip().upper()[:2] or None
        return cls(partner_id=args.get("partner", type=id_arg), country=country)


def list_reports(user: User, filters: ReportFilters, page: int = 1) -> tuple[list[PartnerReport], bool]:
    q = visible_reports(user)
    if filters.partner_id and user.role != "partner":
        q = q.where(PartnerReport.partner_id == filters.partner_id)
    if filters.country:
        q = q.where(PartnerReport.country == filters.country)
    rows = list(db.session.scalars(q.order_by(PartnerReport.activity_date.desc(), PartnerReport.id.desc())
                                   .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def existing_submission(user: User, token: str | None) -> PartnerReport | None:
    """The report already stored with this token, when ``user`` may see it (a resubmission)."""
    if not token:
        return None
    return db.session.scalar(visible_reports(user).where(PartnerReport.submission_token == token))


# --- filing and correcting ---------------------------------------------------------------------------

def filing_partner(actor: User, requested: int | None) -> int:
    """The organisation a report is filed for: a partner's own; the one an administrator chose."""
    if actor.role == "partner":
        if actor.partner_id is None:
            raise ServiceError("report_no_partner")
        if requested is not None and requested != actor.partner_id:
            raise ServiceError("report_other_partner")
        return actor.partner_id
    if requested is None:
        raise ServiceError("report_partner_required")
    org = db.session.get(PartnerOrganisation, requested)
    if org is None or not org.active:
        raise ServiceError("report_unknown_partner", value=requested)
    return org.id


def _by_token(token: str) -> PartnerReport | None:
    with db.session.no_autoflush:
        return db.session.scalar(sa.select(PartnerReport).where(PartnerReport.submission_token == token))


def create_report(data: dict[str, Any], *, actor: User, partner_id: int, source: str = "form",
                  ip: str | None = None) -> tuple[PartnerReport, bool]:
    """File a validated report once. Returns (report, created): a token already stored for this
    organisation gives back that report (a resubmission after a dropped connection), also when two copies
    race each other (the unique token decides)."""
    token = data["submission_token"]
    existing = _by_token(token)
    if existing is None:
        now = utcnow()
        report = PartnerReport(partner_id=partner_id, submission_token=token, source=source,
                               submitted_by_id=actor.id, updated_by_id=actor.id, created_at=now, updated_at=now)
        for name in _EDITABLE:
            setattr(report, name, data[name])
        report.protection_concern = bool(data.get("protection_concern"))
        report.protection_text = (data.get("protection_text") or None) if report.protection_concern else None
        try:
            with db.session.begin_nested():  # added inside: a refused insert leaves nothing pending
                db.session.add(report)
                db.session.flush()
        except sa.exc.IntegrityError:  # the same submission arrived twice at once: the first one wins
            existing = _by_token(token)
            if existing is None:
                raise
        else:
            _sync_items(report)
            audit("partner_report.created", actor, target_type="partner_report", target_id=report.id, ip=ip,
                  partner_id=partner_id, source=source, derived_total=bool(data.get("participants_derived")))
            if report.protection_concern:
                _notify_protection(report, actor, ip)
            return report, True
    if existing.partner_id != partner_id:
        raise ServiceError("report_token_taken")
    return existing, False


def update_report(report: PartnerReport, data: dict[str, Any], *, actor: User,
                  ip: str | None = None) -> list[str]:
    """Correct a report; returns the names of the fields that changed. Feedback items follow the corrected
    texts. Whoever may not read the protection text can add to it (administrators are notified again)
    but neither read nor withdraw it."""
    changed = [name for name in _EDITABLE if getattr(report, name) != data[name]]
    for name in changed:
        setattr(report, name, data[name])
    notify = False
    added = (data.get("protection_text") or "").strip()
    if can_read_protection(actor):
        flag = bool(data.get("protection_concern"))
        text = added if flag else None
        if flag != report.protection_concern or (text or None) != (report.protection_text or None):
            notify = flag and (not report.protection_concern or text != report.protection_text)
            report.protection_concern, report.protection_text = flag, text or None
            changed.append("protection")
    elif added:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        report.protection_text = (f"{report.protection_text}\n\n— {stamp} —\n{added}" if report.protection_text
                                  else added)
        report.protection_concern = notify = True
        changed.append("protection")
    if changed:
        report.updated_by_id, report.updated_at = actor.id, utcnow()
        db.session.flush()
        _sync_items(report)
        audit("partner_report.updated", actor, target_type="partner_report", target_id=report.id, ip=ip,
              fields=changed)
    if notify:
        _notify_protection(report, actor, ip)
    return changed


def _sync_items(report: PartnerReport) -> None:
    """Questions, rumours and suggestions heard become (or update) feedback items."""
    sync_partner_items(report)


# --- protection concerns and their notices -----------------------------------------------------------

def _notify_protection(report: PartnerReport, actor: User, ip: str | None) -> Notice:
    notice = Notice(kind="protection_concern", target_type="partner_report", target_id=report.id,
                    details={"partner_id": report.partner_id, "country": report.country}, created_at=utcnow())
    db.session.add(notice)
    db.session.flush()
    audit("protection_concern.reported", actor, target_type="partner_report", target_id=report.id, ip=ip,
          notice_id=notice.id)
    return notice


def open_notice_count() -> int:
    """Open notices, for the administrators' navigation badge (one COUNT)."""
    return db.session.scalar(sa.select(sa.func.count(Notice.id)).where(Notice.read_at.is_(None))) or 0


@dataclass(frozen=True)
class NoticeRow:
    notice: Notice
    report: PartnerReport | None
    partner_name: str | None


def notices(*, read: bool, limit: int = 200) -> list[NoticeRow]:
    """Open notices (oldest first: the longest waiting on top), or the most recently read ones."""
    q = sa.select(Notice).where(Notice.read_at.is_not(None) if read else Notice.read_at.is_(None))
    q = q.order_by(Notice.read_at.desc() if read else Notice.created_at).limit(limit)
    rows = list(db.session.scalars(q))
    ids = [n.target_id for n in rows if n.target_type == "partner_report"]
    reports = {r.id: r for r in db.session.scalars(sa.select(PartnerReport).where(PartnerReport.id.in_(ids)))} \
        if ids else {}
    names = dict(db.session.execute(sa.select(PartnerOrganisation.id, PartnerOrganisation.name)).all())
    out = []
    for n in rows:
        report = reports.get(n.target_id) if n.target_type == "partner_report" else None
        out.append(NoticeRow(n, report, names.get(report.partner_id) if report else None))
    return out


def get_notice(notice_id: int) -> Notice:
    notice = db.session.get(Notice, notice_id)
    if notice is None:
        raise NotFound()
    return notice


def mark_notice_read(notice: Notice, actor: User, ip: str | None = None) -> bool:
    """Returns False when somebody had already marked it."""
    if notice.read_at is not None:
        return False
    notice.read_at, notice.read_by_id = utcnow(), actor.id
    db.session.flush()
    audit("notice.read", actor, target_type="notice", target_id=notice.id, ip=ip)
    return True


def record_protection_view(report: PartnerReport, actor: User, ip: str | None = None) -> None:
    """Reading a protection concern is audited, like revealing a number."""
    audit("protection_concern.viewed", actor, target_type="partner_report", target_id=report.id, ip=ip)
