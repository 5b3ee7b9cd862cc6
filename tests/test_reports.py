"""Reports: the engagement funnel on a known data set, poll, feedback, partner-reach and cost reports,
small-cell suppression everywhere an evaluator looks (pages, CSV, XLSX, API), no phone number anywhere,
audited exports, filters in the URL, and who may open what."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from whp_c4d.auth.models import AuditEvent
from whp_c4d.campaigns.models import SegmentPrice
from whp_c4d.campaigns.services import campaign_schema, create_campaign
from whp_c4d.core.permissions import can
from whp_c4d.extensions import db
from whp_c4d.feedback import services as feedback
from whp_c4d.feedback.models import FeedbackItem, PartnerReport
from whp_c4d.inbound.models import InboundMessage, PollResponse
from whp_c4d.messaging.models import OutboundMessage
from whp_c4d.reports import queries
from whp_c4d.reports.filters import ReportFilters, parse_filters
from whp_c4d.reports.models import ReportRollup

MONDAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # every row below is in the week of Monday 2 March 2026
ACCEPTED = {"queued", "sent", "delivered", "read", "undelivered"}
_sids = count(1)


def english(user):
    """Tests read row labels: in English (the other catalogs translate them)."""
    user.ui_language = "en"
    db.session.commit()
    return user


@pytest.fixture(autouse=True)
def _exact_rollups(app):
    """Rows are added between two looks in some tests: recompute a rollup as soon as the data moved."""
    app.config["C4D_REPORT_REFRESH_SECONDS"] = 0
    yield
    app.config.pop("C4D_REPORT_REFRESH_SECONDS", None)


POLL = {"key": "encuesta", "kind": "poll", "timing": {"type": "drip", "day": 1, "time": "10:00"},
        "content": {"es": {"sms": "¿Conoces el albergue? 1 Sí 2 No", "thanks": "Gracias.",
                           "options": [{"number": 1, "label": "Sí"}, {"number": 2, "label": "No"}]},
                    "ht": {"sms": "Ou konnen abri a? 1 Wi 2 Non", "thanks": "Mèsi.",
                           "options": [{"number": 1, "label": "Wi"}, {"number": 2, "label": "Non"}]}}}


def _campaign(author, key="informa"):
    campaign = create_campaign(campaign_schema().load({
        "key": key, "name": f"Campaña {key}", "objective": "regular_pathways", "countries": ["GT", "HT"],
        "languages": ["es", "ht"], "channels": ["sms", "whatsapp"],
        "steps": [{"key": "aviso", "timing": {"type": "drip", "day": 0, "time": "10:00"},
                   "content": {"es": {"sms": "Verifica las ofertas de trabajo."}, "ht": {"sms": "Verifye òf travay."}}},
                  POLL]}), author)
    campaign.status = "active"
    db.session.commit()
    return campaign


def out(contact, step, status, *, channel=None, sent_channel=None, code=None, reason=None, segments=1,
        purpose="campaigns", at=MONDAY):
    channel = channel or ("whatsapp" if contact.channel("whatsapp") else "sms")
    accepted = status in ACCEPTED or (status == "failed" and reason == "failed_at_twilio")
    row = OutboundMessage(
        contact_id=contact.id, campaign_id=step.campaign_id, step_id=step.id if purpose != "reply" else None,
        occurrence="drip" if purpose != "reply" else f"r{next(_sids)}", language=contact.language, channel=channel,
        purpose=purpose, country=contact.country, body="Texto", segments=segments, earliest_at=at, status=status,
        sent_channel=(sent_channel or channel) if accepted else None,
        provider_sid=f"SM{next(_sids):032x}" if accepted else None, error_code=code, reason=reason,
        created_at=at, updated_at=at, sent_at=at if accepted else None)
    db.session.add(row)
    return row


def inbound(contact, step, kind, action=None, *, text="Hola", campaign=True, at=MONDAY + timedelta(hours=2)):
    row = InboundMessage(
        provider_sid=f"SM{next(_sids):032x}", contact_id=contact.id, channel="whatsapp" if contact.channel(
            "whatsapp") else "sms", body=text, country=contact.country, language=contact.language, status="processed",
        kind=kind, action=action, campaign_id=step.campaign_id if campaign else None,
        step_id=step.id if campaign else None, received_at=at)
    db.session.add(row)
    db.session.flush()
    return row


def item(*, text="¿Dónde pido cita?", country="GT", campaign=None, contact=None, type=None, sensitive=False,
         source="message", at=MONDAY):
    row = FeedbackItem(source=source, text=text, country=country, language="es", channel="sms",
                       campaign_id=campaign.id if campaign else None, contact_id=contact.id if contact else None,
                       received_at=at, updated_at=at, type=type, sensitive=sensitive)
    db.session.add(row)
    db.session.flush()
    return row


@pytest.fixture
def known(app, make_user, make_contact):
    """A campaign with a message step to 12 Guatemalans (SMS, es) and 8 Haitians (WhatsApp, ht), and a poll
    to 10 of the Guatemalans. Statuses, replies, a STOP and a 21610 chosen so every total is known."""
    officer = make_user("officer")
    gt = [make_contact(phone=f"+50255550{100 + i}") for i in range(12)]
    ht = [make_contact(phone=f"+509555501{10 + i}", country="HT", language="ht", channels=("whatsapp",))
          for i in range(8)]
    campaign = _campaign(officer)
    aviso, poll = sorted(campaign.steps, key=lambda s: s.position)
    for c, status in zip(gt, ["delivered"] * 8 + ["sent"] * 2 + ["failed", "skipped"], strict=True):
        out(c, aviso, status, code=30008 if status == "failed" else None,
            reason={"failed": "failed_at_twilio", "skipped": "no_consent"}.get(status))
    for c, status in zip(ht, ["read"] * 5 + ["delivered", "undelivered", "failed"], strict=True):
        out(c, aviso, status, code={"undelivered": 30003, "failed": 21610}.get(status),
            reason={"undelivered": "undelivered", "failed": "opted_out_at_twilio"}.get(status))
    for c in gt[:10]:
        out(c, poll, "delivered", purpose="polls", segments=2)
    out(gt[0], poll, "delivered", purpose="reply")  # the thanks after an answer: costs, not in the funnel
    db.session.flush()
    for n, c in enumerate(gt[:6]):
        answer = inbound(c, poll, "answer", "poll")
        db.session.add(PollResponse(step_id=poll.id, campaign_id=campaign.id, occurrence="drip", contact_id=c.id,
                                    choice=1 if n < 5 else 2, inbound_message_id=answer.id, language="es",
                                    country="GT", channel="sms"))
    for c in gt[:2]:
        inbound(c, aviso, "feedback")
    inbound(ht[7], aviso, "keyword", "opt_out")  # also failed with 21610: one person
    inbound(ht[6], aviso, "keyword", "opt_out")
    inbound(gt[11], aviso, "feedback", campaign=False)  # outside the campaign's context
    db.session.commit()
    return campaign, aviso, poll, gt, ht


def test_funnel_of_a_known_campaign_by_step_country_language_channel_and_week(app, known):
    campaign, aviso, poll, gt, ht = known
    e = queries.engagement(ReportFilters(campaign_id=campaign.id), queries.CAMPAIGN_DIMENSIONS)
    t = e.total
    assert (t.targeted, t.sent, t.delivered, t.read, t.replied, t.opted_out, t.failed) == (30, 28, 24, 5, 6, 2, 4)
    assert {k: (f.targeted, f.sent, f.replied) for k, f in e.by["step"].items()} == {aviso.id: (20, 18, 2),
                                                                                   poll.id: (10, 10, 6)}
    assert {k: (f.targeted, f.delivered, f.opted_out) for k, f in e.by["country"].items()} == {
        "GT": (22, 18, 0), "HT": (8, 6, 2)}
    assert {k: f.targeted for k, f in e.by["language"].items()} == {"es": 22, "ht": 8}
    assert {k: (f.targeted, f.read) for k, f in e.by["channel"].items()} == {"sms": (22, 0), "whatsapp": (8, 5)}
    assert {k: f.targeted for k, f in e.by["week"].items()} == {"2026-03-02": 30}
    assert dict(e.reasons) == {("failed_at_twilio", 30008): 1, ("no_consent", None): 1, ("undelivered", 30003): 1,
                               ("opted_out_at_twilio", 21610): 1}
    # Filters narrow messages and people alike.
    haiti = queries.engagement(ReportFilters(campaign_id=campaign.id, country="HT"), ("step",))
    assert (haiti.total.targeted, haiti.total.replied, haiti.total.opted_out) == (8, 0, 2)
    sms_poll = queries.engagement(ReportFilters(campaign_id=campaign.id, step_id=poll.id, channel="sms"), ())
    assert (sms_poll.total.targeted, sms_poll.total.replied) == (10, 6)
    assert queries.engagement(ReportFilters(campaign_id=campaign.id, date_from=date(2026, 3, 3)), ()).total.targeted == 0
    # Cost: units of what Twilio accepted, replies included (2 segments for each poll message).
    units = {(line.country, line.channel): (line.units.messages, line.units.segments, line.units.replies)
             for line in queries.cost(ReportFilters(campaign_id=campaign.id)).lines}
    assert units == {("GT", "sms"): (22, 32, 1), ("HT", "whatsapp"): (7, 7, 0)}


def test_rollup_is_reused_while_current_and_recomputed_after_a_change(app, known):
    campaign, aviso, _poll, gt, _ht = known
    f = ReportFilters(campaign_id=campaign.id)
    assert queries.engagement(f, ()).total.targeted == 30
    db.session.commit()
    stored = db.session.get(ReportRollup, campaign.id)
    assert stored is not None and "55550" not in json.dumps(stored.outbound) + json.dumps(stored.people)
    app.config["C4D_REPORT_REFRESH_SECONDS"] = 3600  # a change within the period: the rollup says "as of"
    out(gt[0], aviso, "delivered", at=MONDAY + timedelta(minutes=5)).occurrence = "again"
    db.session.commit()
    late = queries.engagement(f, ())
    assert late.total.targeted == 30 and late.as_of is not None
    app.config["C4D_REPORT_REFRESH_SECONDS"] = 0
    fresh = queries.engagement(f, ())
    assert fresh.total.targeted == 31 and fresh.as_of is None


# --- pages ---------------------------------------------------------------------------------------------

def _section(html: str, key: str) -> str:
    found = re.search(rf'<section class="card rp-table" id="{re.escape(key)}".*?</section>', html, re.S)
    assert found, key
    return found.group(0)


def _rows(html: str) -> list[list[str]]:
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)]
        rows.append([c.replace("&lt;", "<").replace("&amp;", "&") for c in cells])
    return rows


def test_campaign_report_page_shows_the_funnel_in_charts_with_their_numbers_in_tables(app, client, known, make_user,
                                                                                       login):
    campaign, *_ = known
    login(client, english(make_user("evaluator")))
    r = client.get(f"/reports/campaigns/{campaign.id}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    funnel = _section(html, "funnel")
    assert _rows(funnel)[1:] == [["Targeted", "30"], ["Sent", "28"], ["Delivered", "24"], ["Read", "5"],
                                 ["Replied (people)", "6"], ["Opted out (people)", "<5"], ["Failed", "<5"]]
    # Every chart is an image with a title, and every number it draws is in the table beside it.
    assert 'role="img"' in funnel and "<title id=" in funnel
    drawn = re.findall(r'class="rp-value"[^>]*>([^<]+)</text>', funnel)
    assert drawn == ["30", "28", "24", "5", "6", "&lt;5", "&lt;5"]
    for key in ("funnel_by_step", "funnel_by_country", "funnel_by_language", "funnel_by_channel", "funnel_by_week",
                "failed_by_reason", "poll_" + str(sorted(campaign.steps, key=lambda s: s.position)[1].id), "cost"):
        section = _section(html, key)
        assert "<table" in section and "<svg" in section, key
    by_step = _rows(_section(html, "funnel_by_step"))
    assert by_step[1][1:4] == ["20", "18", "14"] and by_step[2][1:4] == ["10", "10", "10"]
    assert by_step[-1][0] and by_step[-1][1] == "30"  # the total row


def test_feedback_report_counts_by_type_and_lists_rumours_with_numbers_masked(app, client, make_user, login):
    evaluator, officer = english(make_user("evaluator")), make_user("officer")
    for _ in range(6):
        item(type="question")
    item(type="observation", text="Dicen que regalan visas, llamen al +502 5555 0199")
    for _ in range(5):
        item(type="observation", text="Escuché que cierran la frontera")
    item(type="observation", text="Me amenazaron en la ruta", sensitive=True)  # counted, not listed to them
    item(type=None, source="partner_rumour", text="Rumor de un bus gratis")
    db.session.commit()
    report = queries.feedback(ReportFilters(), evaluator)
    assert report.by_type["question"] == 6 and report.by_type["observation"] == 7 and report.by_type[""] == 1
    assert report.rumours_total == 8 and report.rumours_hidden == 1 and len(report.rumours) == 7
    login(client, evaluator)
    html = client.get("/reports/feedback").get_data(as_text=True)
    assert "5555 0199" not in html and "[…]" in html and "Me amenazaron" not in html
    assert "Rumor de un bus gratis" in html
    by_type = dict(r[:2] for r in _rows(_section(html, "feedback_by_type"))[1:])
    # The 1 not coded would be 14 - 6 - 7: the smaller neighbour (6 questions) is hidden with it.
    assert by_type["Question"] == "<5" and by_type["Observation, perception or belief"] == "7"
    assert by_type["Not coded yet"] == "<5" and by_type["Total"] == "14"
    assert queries.feedback(ReportFilters(), officer).rumours_hidden == 1


def test_the_dashboard_feedback_by_type_chart_follows_bulk_coding(app, client, make_user, login):
    evaluator = english(make_user("evaluator"))
    ids = [item(text=f"Mensaje número {n}").id for n in range(60)]
    db.session.commit()
    login(client, evaluator)

    def by_type() -> dict[str, str]:
        html = client.get("/").get_data(as_text=True)
        return {row[0]: row[1] for row in _rows(_section(html, "feedback_by_type"))[1:]}

    assert by_type()["Not coded yet"] == "60" and by_type()["Question"] == "0"
    assert feedback.code_items(evaluator, ids[:50], feedback.Coding(type="question")) == 50
    db.session.commit()
    after = by_type()
    assert after["Question"] == "50" and after["Not coded yet"] == "10"
    assert "<svg" in _section(client.get("/").get_data(as_text=True), "feedback_by_type")


def test_partner_reach_and_cost_reports(app, client, make_user, make_partner, login, known):
    campaign, *_ = known
    org = make_partner(name="Red Ejemplo", country="GT")
    for n, (women, men) in enumerate([(10, 8), (4, 3)]):
        db.session.add(PartnerReport(
            partner_id=org.id, submission_token=f"t{n}", activity_date=date(2026, 3, 3 + n), country="GT",
            activity_type="workshop", campaign_ids=[campaign.id], participants=women + men, women=women, men=men,
            age_18_59=women + men, languages=["es"]))
    db.session.add(SegmentPrice(country="*", channel="sms", price=0.05, currency="USD"))
    db.session.add(SegmentPrice(country="HT", channel="whatsapp", price=0.01, currency="USD"))
    db.session.commit()
    reach = queries.partner_reach(ReportFilters(campaign_id=campaign.id))
    assert (reach.total.activities, reach.total.participants, reach.total.women, reach.total.men) == (2, 25, 14, 11)
    assert queries.partner_reach(ReportFilters(campaign_id=campaign.id + 99)).total.activities == 0
    login(client, english(make_user("evaluator")))
    html = client.get("/reports/partners").get_data(as_text=True)
    assert _rows(_section(html, "reach_by_sex"))[1:] == [["Women", "14"], ["Men", "11"], ["Other or not stated", "0"],
                                                         ["Total", "25"]]
    c = queries.cost(ReportFilters(campaign_id=campaign.id))
    assert c.totals == {"USD": Decimal("1.67")}  # 32 SMS segments at 0.05, 7 WhatsApp messages at 0.01
    cost_rows = _rows(_section(client.get("/reports/cost").get_data(as_text=True), "cost"))
    # Guatemala by SMS: 21 campaign messages and 1 answer (hidden), so its 32 units and their spend are hidden
    # too (units minus the campaign messages' known segments would give the answer away). Haiti: 7 and 0.
    assert cost_rows[1][2:] == ["21", "<5", "<5", "0.05000 USD", "—"]
    assert cost_rows[2][2:] == ["7", "0", "7", "0.01000 USD", "0.07 USD"]


# --- suppression, numbers, exports ---------------------------------------------------------------------

NUMBERS = ["+50255550101", "+50255550102", "+50955550103", "+50255550104"]
SMALL = {"1", "2", "3", "4"}


@pytest.fixture
def tiny(app, make_user, make_contact, make_partner):
    """Four people in all: every group has 1 to 4 of them. Their fictional numbers are known, and one wrote
    a number into a message."""
    people = [make_contact(phone=NUMBERS[0]), make_contact(phone=NUMBERS[1], channels=("sms", "whatsapp")),
              make_contact(phone=NUMBERS[2], country="HT", language="ht", channels=("whatsapp",)),
              make_contact(phone=NUMBERS[3])]
    campaign = _campaign(make_user("officer"), key="pequena")
    aviso, poll = sorted(campaign.steps, key=lambda s: s.position)
    for c, status in zip(people, ["delivered", "read", "read", "failed"], strict=True):
        out(c, aviso, status, code=30008 if status == "failed" else None,
            reason="failed_at_twilio" if status == "failed" else None)
        out(c, poll, "delivered", purpose="polls")
    db.session.flush()
    for n, c in enumerate(people[:3]):
        message = inbound(c, poll, "answer", "poll")
        db.session.add(PollResponse(step_id=poll.id, campaign_id=campaign.id, occurrence="drip", contact_id=c.id,
                                    choice=1 + n % 2, inbound_message_id=message.id, language=c.language,
                                    country=c.country, channel=message.channel))
    text = f"Llámame al {NUMBERS[3][:4]} {NUMBERS[3][4:8]} {NUMBERS[3][8:]}, dicen que dan visas"
    feedback.file_inbound(inbound(people[3], aviso, "feedback", text=text))
    inbound(people[0], aviso, "keyword", "opt_out")
    item(type="observation", text=f"Rumor: el {NUMBERS[0]} vende pasajes", country="GT", campaign=campaign,
         contact=people[0])
    org = make_partner(name="Red Pequeña", country="GT")
    db.session.add(PartnerReport(partner_id=org.id, submission_token="tiny", activity_date=date(2026, 3, 3),
                                 country="GT", activity_type="radio", campaign_ids=[campaign.id], participants=3,
                                 women=2, men=1, age_13_17=1, age_18_59=2, rumours_heard="Dicen que regalan visas"))
    db.session.add(SegmentPrice(country="*", channel="sms", price=0.05, currency="USD"))
    db.session.commit()
    feedback.sync_partner_items(db.session.scalar(sa.select(PartnerReport)))
    db.session.commit()
    return campaign, aviso, poll, people


def _evaluator_urls(campaign, poll) -> tuple[list[str], list[str], list[str]]:
    args = f"campaign={campaign.id}"
    pages = ["/", "/reports", f"/reports?{args}&by=step", "/reports?by=country", "/reports?by=week",
             f"/reports/campaigns/{campaign.id}", f"/reports/campaigns/{campaign.id}?country=GT",
             "/reports/feedback", f"/reports/feedback?{args}", "/reports/partners", "/reports/cost",
             f"/campaigns/{campaign.id}/steps/{poll.id}/results"]
    exports = [f"/reports/{name}.{fmt}" for name in ("engagement", "feedback", "partners", "cost", "feedback-items")
               for fmt in ("csv", "xlsx")] + [f"/reports/campaigns/{campaign.id}.{fmt}" for fmt in ("csv", "xlsx")]
    api = ["/api/v1/reports/funnel", f"/api/v1/reports/funnel?{args}&by=step", "/api/v1/reports/funnel?by=channel",
           f"/api/v1/reports/polls?{args}", "/api/v1/reports/feedback", f"/api/v1/reports/feedback?{args}"]
    return pages, exports, api


ID_COLUMNS = {0, 6, 7}  # the coded-feedback export's item, campaign and step ids: not counts


def _cells(response, url: str) -> list:
    """Every cell of an export, as read back by a CSV reader or openpyxl (ids left out)."""
    if url.endswith(".csv"):
        assert response.mimetype == "text/csv"
        rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    else:
        workbook = load_workbook(io.BytesIO(response.get_data()), read_only=True)
        rows = [list(row) for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True)]
    ids = ID_COLUMNS if "feedback-items" in url else set()
    return [v for row in rows for i, v in enumerate(row) if v is not None and i not in ids]


ID_KEYS = {"campaign_id", "step_id", "number", "error_code", "id", "step", "campaign", "key"}


def _json_counts(value, key=None):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _json_counts(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _json_counts(v, key)
    elif key not in ID_KEYS and isinstance(value, int | str) and not isinstance(value, bool):
        yield key, value


def test_no_page_export_or_api_answer_shows_a_count_of_1_to_4_or_a_phone_number(app, client, tiny, make_user, login,
                                                                               api_token):
    campaign, _aviso, poll, _people = tiny
    evaluator = make_user("evaluator")
    login(client, evaluator)
    headers = api_token(evaluator)
    pages, exports, api = _evaluator_urls(campaign, poll)
    digits = [n[4:] for n in NUMBERS] + [f"{n[4:8]} {n[8:]}" for n in NUMBERS]
    suppressed = 0
    for url in pages:
        r = client.get(url)
        assert r.status_code == 200, url
        html = r.get_data(as_text=True)
        cells = re.findall(r'<td class="num">(?:<strong>)?([^<]*)', html)
        cells += re.findall(r'class="rp-value"[^>]*>([^<]*)</text>', html)
        cells += re.findall(r'<span class="value">([^<]*)</span>', html)
        assert not SMALL & {c.strip() for c in cells}, url
        suppressed += sum(c == "&lt;5" for c in cells)
        assert not any(d in html for d in digits), url
    for url in exports:
        r = client.get(url)
        assert r.status_code == 200, url
        cells = _cells(r, url)
        assert not [c for c in cells if str(c).strip() in SMALL], url
        assert not any(d in str(c) for c in cells for d in digits), url
        suppressed += sum(c == "<5" for c in cells)
    for url in api:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, url
        found = list(_json_counts(r.get_json()))
        assert not [(k, v) for k, v in found if str(v) in SMALL], url
        assert not any(d in r.get_data(as_text=True) for d in digits), url
        suppressed += sum(v == "<5" for _k, v in found)
    assert suppressed > 50  # the scan saw the small counts, hidden


def test_exports_are_audited_readable_and_show_the_pages_numbers(app, client, known, make_user, login):
    campaign, *_ = known
    evaluator = english(make_user("evaluator"))
    login(client, evaluator)
    page = _rows(_section(client.get(f"/reports/campaigns/{campaign.id}?channel=sms").get_data(as_text=True),
                          "funnel_by_step"))
    r = client.get(f"/reports/campaigns/{campaign.id}.csv?channel=sms")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.get_data().decode("utf-8-sig"))))
    start = next(i for i, row in enumerate(rows) if row and row[0] == "Funnel by step")
    assert rows[start + 1:start + 1 + len(page)] == page
    r = client.get(f"/reports/campaigns/{campaign.id}.xlsx?channel=sms")
    workbook = load_workbook(io.BytesIO(r.get_data()), read_only=True)
    sheet = workbook["Funnel by step"]
    values = [[str(v) for v in row if v is not None] for row in sheet.iter_rows(values_only=True)]
    assert values[1:1 + len(page)] == page
    events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "report.exported")
                                .order_by(AuditEvent.id)).all()
    assert [(e.actor_id, e.target_id, e.details["report"], e.details["format"]) for e in events] == [
        (evaluator.id, campaign.id, "campaign", "csv"), (evaluator.id, campaign.id, "campaign", "xlsx")]
    assert events[0].details["filters"] == {"campaign": str(campaign.id), "channel": "sms", "by": "step"}


def test_coded_feedback_export_is_pseudonymised_masked_and_respects_sensitivity(app, client, make_user, make_contact,
                                                                                login):
    evaluator = make_user("evaluator")
    person = make_contact(phone="+50255550188")
    item(text="Mi número es +502 5555 0188, llámenme", contact=person, type="request")
    item(text="=HYPERLINK(\"http://example.org\")", type="question")
    item(text="Me secuestraron", type="concern", sensitive=True)
    db.session.commit()
    login(client, evaluator)
    r = client.get("/reports/feedback-items.csv")
    rows = list(csv.reader(io.StringIO(r.get_data().decode("utf-8-sig"))))
    body = "\n".join(",".join(row) for row in rows)
    assert person.pseudonym in body and "5555 0188" not in body and "55550188" not in body
    assert "Me secuestraron" not in body and "'=HYPERLINK" in body
    assert len(rows) == 3  # header and the two items this evaluator may read
    workbook = load_workbook(io.BytesIO(client.get("/reports/feedback-items.xlsx").get_data()))
    cells = [c.value for row in workbook.active.iter_rows() for c in row]
    assert person.pseudonym in cells and not any(str(v).startswith("=") for v in cells if v)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "report.exported")) == 2


# --- who, filters, bad input ---------------------------------------------------------------------------

def _report_rules(app):
    return [r for r in app.url_map.iter_rules()
            if r.endpoint.startswith("reports.") and r.endpoint != "reports.dashboard"]


def test_a_partner_cannot_open_any_report_export_or_report_api(app, client, known, make_user, login, api_token):
    campaign, *_ = known
    partner = make_user("partner")
    login(client, partner)
    rules = _report_rules(app)
    assert len(rules) >= 17
    for rule in rules:
        url = rule.rule.replace("<int:campaign_id>", str(campaign.id))
        assert client.get(url).status_code == 403, url
    headers = api_token(partner)
    for url in ("/api/v1/reports/funnel", f"/api/v1/reports/polls?campaign={campaign.id}", "/api/v1/reports/feedback"):
        assert client.get(url, headers=headers).status_code == 403, url
    home = client.get("/").get_data(as_text=True)
    assert "feedback_by_type" not in home and "/reports" not in home
    assert not can("partner", "reports.view") and can("evaluator", "reports.export")


def test_filters_live_in_the_url_and_round_trip(app, client, known, make_user, login):
    campaign, _aviso, poll, *_ = known
    evaluator = english(make_user("evaluator"))
    query = (f"campaign={campaign.id}&step={poll.id}&country=GT&language=es&channel=sms&from=2026-03-02"
             f"&to=2026-03-29&by=week")
    f, errors = parse_filters(dict(p.split("=") for p in query.split("&")), evaluator)
    assert errors == [] and parse_filters(f.args(), evaluator) == (f, [])
    login(client, evaluator)
    html = client.get(f"/reports?{query}").get_data(as_text=True)
    for selected in (f'<option value="{campaign.id}" selected>', f'<option value="{poll.id}" selected>',
                     '<option value="GT" selected>', '<option value="es" selected>', '<option value="sms" selected>',
                     '<option value="week" selected>', 'value="2026-03-02"', 'value="2026-03-29"'):
        assert selected in html, selected
    export = re.search(r'href="(/reports/engagement\.csv\?[^"]+)"', html).group(1).replace("&amp;", "&")
    assert parse_filters(dict(p.split("=") for p in export.split("?")[1].split("&")), evaluator)[0] == f
    assert _rows(_section(html, "funnel"))[1] == ["Targeted", "10"]


def test_bad_filters_give_a_message_naming_them_never_a_500(app, client, known, make_user, login, api_token):
    campaign, *_ = known
    evaluator = make_user("evaluator")
    login(client, evaluator)
    bad = "campaign=abc&country=ZZ&language=12345&channel=fax&from=2026-13-45&to=ayer&by=planet"
    r = client.get(f"/reports?{bad}")
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    for text in ("abc", "ZZ", "12345", "fax", "2026-13-45", "ayer", "planet"):
        assert text in html, text
    assert 'id="funnel"' in html  # the report, without the filters it could not use
    r = client.get(f"/reports/campaigns/{campaign.id}?step=999999&from=2026-04-01&to=2026-03-01")
    assert r.status_code == 400 and "999999" in r.get_data(as_text=True)
    assert client.get(f"/reports/feedback?{bad}").status_code == 400
    assert client.get(f"/reports/cost.csv?{bad}").status_code == 400
    assert client.get("/reports/campaigns/999999").status_code == 404
    api = client.get(f"/api/v1/reports/funnel?{bad}", headers=api_token(evaluator))
    assert api.status_code == 400
    assert set(api.get_json()["fields"]) == {"campaign", "country", "language", "channel", "from", "to", "by"}
    assert client.get("/api/v1/reports/polls", headers=api_token(evaluator)).status_code == 400


def test_an_officer_limited_to_some_countries_sees_only_their_counts(app, client, known, make_user, login):
    campaign, *_ = known
    officer = english(make_user("officer", countries=["HT"]))
    e = queries.engagement(parse_filters({"campaign": str(campaign.id)}, officer)[0], ("country",))
    assert set(e.by["country"]) == {"HT"} and e.total.targeted == 8 and e.total.opted_out == 2
    login(client, officer)
    html = client.get(f"/reports/campaigns/{campaign.id}").get_data(as_text=True)
    assert _rows(_section(html, "funnel"))[1] == ["Targeted", "8"]


# --- API -----------------------------------------------------------------------------------------------

def test_report_api_answers_the_funnel_polls_and_feedback_with_the_same_suppression(app, client, known, make_user,
                                                                                   api_token):
    campaign, aviso, poll, _gt, _ht = known
    for _ in range(5):
        item(type="praise", campaign=campaign)
    db.session.commit()
    headers = api_token(make_user("evaluator"))
    funnel = client.get(f"/api/v1/reports/funnel?campaign={campaign.id}&by=step", headers=headers).get_json()
    assert funnel["total"] == {"targeted": 30, "sent": 28, "delivered": 24, "read": 5, "replied": 6,
                               "opted_out": "<5", "failed": "<5"}
    assert [(row["key"], row["targeted"]) for row in funnel["rows"]] == [(aviso.id, 20), (poll.id, 10)]
    assert funnel["by"] == "step" and funnel["small_cells_suppressed"] is True
    assert {x["error_code"] for x in funnel["failed_by_reason"]} == {30008, 30003, 21610, None}
    polls = client.get(f"/api/v1/reports/polls?campaign={campaign.id}", headers=headers).get_json()
    assert [p["step_id"] for p in polls["polls"]] == [poll.id]
    # 5 "Sí" and 1 "No" of 6: the 5 would give the 1 away, so both are hidden; the 6 who answered are not.
    assert [c["count"] for c in polls["polls"][0]["choices"]] == ["<5", "<5"] and polls["polls"][0]["total"] == 6
    fb = client.get(f"/api/v1/reports/feedback?campaign={campaign.id}", headers=headers).get_json()
    assert fb["by_type"]["praise"] == 5 and fb["by_type"]["not_coded"] == 0 and fb["total"] == 5
    assert fb["by_month"] == {"2026-03": 5} and fb["by_country"] == {"GT": 5}
    spec = client.get("/api/v1/openapi.json").get_json()
    assert {"/api/v1/reports/funnel", "/api/v1/reports/polls", "/api/v1/reports/feedback"} <= set(spec["paths"])
    params = {p["name"] for p in spec["paths"]["/api/v1/reports/funnel"]["get"]["parameters"]}
    assert params == {"campaign", "step", "country", "language", "channel", "from", "to", "by"}


def test_erasing_a_person_drops_the_rollups(app, known):
    from whp_c4d.core.signals import contact_erasing

    campaign, *_ = known
    queries.engagement(ReportFilters(campaign_id=campaign.id), ())
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ReportRollup)) == 1
    contact_erasing.send(None, contact_id=known[3][0].id)
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ReportRollup)) == 0


@pytest.mark.parametrize("language", ["es", "en", "fr", "ht", "nl"])
def test_every_report_renders_and_exports_in_every_ui_language(app, client, known, make_user, login, language):
    campaign, *_ = known
    user = make_user("evaluator")
    user.ui_language = language
    db.session.commit()
    login(client, user)
    for url in ("/", "/reports?by=week", f"/reports/campaigns/{campaign.id}", "/reports/feedback",
                "/reports/partners", "/reports/cost", f"/reports/campaigns/{campaign.id}.xlsx",
                "/reports/engagement.csv"):
        r = client.get(url)
        assert r.status_code == 200, (language, url)
    assert f'lang="{language}"' in client.get("/reports").get_data(as_text=True)


def test_rows_discarded_from_a_paused_campaign_leave_no_stale_rollup(app, known):
    from whp_c4d.messaging.outbox import discard_held

    campaign, *_ = known
    app.config["C4D_REPORT_REFRESH_SECONDS"] = 3600  # a rollup that no longer matches would be kept an hour
    before = queries.engagement(ReportFilters(campaign_id=campaign.id), ()).total.targeted
    db.session.commit()
    held = db.session.scalars(sa.select(OutboundMessage.id).where(OutboundMessage.campaign_id == campaign.id)
                              .limit(3)).all()
    db.session.execute(sa.update(OutboundMessage).where(OutboundMessage.id.in_(held)).values(status="held"))
    db.session.commit()
    queries.engagement(ReportFilters(campaign_id=campaign.id), ())  # the rollup, as it stood before
    db.session.commit()
    assert discard_held(campaign.id) == 3
    db.session.commit()
    assert queries.engagement(ReportFilters(campaign_id=campaign.id), ()).total.targeted == before - 3


def test_any_query_string_on_reports_gets_a_page_or_a_400_never_a_500(app, client, known, make_user, login, api_token):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    evaluator = make_user("evaluator")
    login(client, evaluator)
    headers = api_token(evaluator)
    campaign, *_ = known
    urls = ["/reports", f"/reports/campaigns/{campaign.id}", "/reports/feedback", "/reports/partners", "/reports/cost",
            "/reports/engagement.csv", "/reports/feedback-items.xlsx", "/feedback", "/activity-reports"]
    api = ["/api/v1/reports/funnel", "/api/v1/reports/polls", "/api/v1/reports/feedback"]
    names = st.sampled_from(["campaign", "step", "country", "language", "channel", "from", "to", "by", "page",
                             "type", "topic", "status", "per_page", "partner", "x"])
    values = st.text(max_size=20) | st.sampled_from(["-1", "0", "99999999999999999999", "2026-02-30", "GT", "week",
                                                     "step,country", "%00", "' or 1=1 --"])

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(url=st.sampled_from(urls + api), params=st.lists(st.tuples(names, values), max_size=4))
    def check(url, params):
        r = client.get(url, query_string=params, headers=headers if url.startswith("/api/") else None)
        assert r.status_code in (200, 400), (r.status_code, url, params)
        db.session.rollback()

    check()


def test_report_dates_are_whole_weeks(known, make_user):
    """A range of days could be narrowed until two ranges differ by one person: dates snap to whole weeks,
    Monday to Sunday (UTC), and the URL says so."""
    evaluator = english(make_user("evaluator"))
    f, errors = parse_filters({"from": "2026-03-04", "to": "2026-03-04"}, evaluator)
    assert errors == [] and (f.date_from.isoformat(), f.date_to.isoformat()) == ("2026-03-02", "2026-03-08")
    assert f.args()["from"] == "2026-03-02" and f.args()["to"] == "2026-03-08"


def test_every_export_downloads_from_a_real_server_and_is_audited_once_made(live_app, make_user, make_contact):
    """Issue 16, item 1: on a real server the coded-feedback CSV answered 500 (the user loaded in the
    request was read while the response streamed, after its session had ended) and was audited all the same.
    The test client keeps one session for the whole test and never showed it: this goes over HTTP."""
    import requests

    from whp_c4d.auth import services

    evaluator = make_user("evaluator")
    item(text="¿Dónde pido cita?", contact=make_contact(), type="question")
    token = services.open_session(evaluator)
    db.session.commit()
    cookie = live_app.session_interface.get_signing_serializer(live_app).dumps({"_user_id": token, "_fresh": True})
    http = requests.Session()
    http.cookies.set(live_app.config["SESSION_COOKIE_NAME"], cookie)
    base = live_app.config["C4D_PUBLIC_URL"]
    urls = [f"/reports/{name}.{fmt}" for name in ("engagement", "feedback", "partners", "cost", "feedback-items")
            for fmt in ("csv", "xlsx")]
    for url in urls:
        r = http.get(base + url, timeout=30)
        assert r.status_code == 200, url
        assert len(r.content) > 100, url
    db.session.rollback()
    exported = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "report.exported")).all()
    assert len(exported) == len(urls) and {e.actor_id for e in exported} == {evaluator.id}


def test_an_export_that_fails_is_not_audited(app, client, make_user, login, monkeypatch):
    def broken(*_a, **_k):
        raise RuntimeError("the database went away")
        yield  # pragma: no cover

    login(client, make_user("evaluator"))
    item(text="¿Dónde pido cita?", type="question")
    db.session.commit()
    monkeypatch.setattr(queries, "_feedback_item_batches", broken)
    with pytest.raises(RuntimeError):
        client.get("/reports/feedback-items.csv").get_data()
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "report.exported")) == 0
