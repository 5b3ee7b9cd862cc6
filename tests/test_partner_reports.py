"""Partner activity reports: the form's validation (sums, derived total, areas of the country), one report
per submission token (also when two copies race), organisation scoping (404), the protection concern
(administrators only, notified, audited without its text), feedback items filed from what was heard, and
the API for other tools (KoboToolbox)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from flask_babel import force_locale, gettext

from whp_c4d.auth.models import AuditEvent
from whp_c4d.extensions import db
from whp_c4d.feedback import partner_services as ps
from whp_c4d.feedback.models import FeedbackItem, Notice, PartnerReport
from whp_c4d.feedback.schemas import admin_areas

PROTECTION = "Una niña viaja sola y un hombre le pide su pasaporte"


@pytest.fixture(autouse=True)
def _english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


@pytest.fixture
def org(make_partner):
    return make_partner(name="Rezo Fanmi Ayiti", country="HT")


@pytest.fixture
def partner(make_user, org):
    return make_user("partner", partner=org)


@pytest.fixture
def as_user(app, login):
    def make(user):
        client = app.test_client()
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
        login(client, user)
        return client
    return make


def _form(token: str = "tok-0123456789abcdef", **over) -> dict:
    data = {
        "submission_token": token, "activity_date": (date.today() - timedelta(days=2)).isoformat(),
        "country": "HT", "admin_area": "Ouest", "locality": "Delmas 33", "activity_type": "workshop",
        "materials": "Afich", "participants": "40", "women": "22", "men": "17", "sex_other": "1",
        "age_under_13": "", "age_13_17": "5", "age_18_59": "30", "age_60_plus": "5",
        "groups": ["returnees", "host_community"], "languages": ["ht", "fr"],
        "what_worked": "Moun yo te poze anpil kesyon", "what_did_not": "", "questions_heard": "Kijan pou m jwenn yon viza?",
        "rumours_heard": "Yo di fwontyè a louvri pou tout moun", "suggestions": "Plis emisyon radyo",
    }
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def _reports() -> list[PartnerReport]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(PartnerReport).order_by(PartnerReport.id)))


def _html(r) -> str:
    return r.get_data(as_text=True)


def _report_id(location: str) -> int:
    return int(re.search(r"/activity-reports/(\d+)$", location)[1])


def _file(user, **over) -> PartnerReport:
    """A report filed through the service, as the form would."""
    data = ps.report_schema().load(_form(token=over.pop("token", f"svc-{len(_reports())}-0123456789"), **over))
    report, created = ps.create_report(data, actor=user, partner_id=user.partner_id or over.get("partner_id"))
    db.session.commit()
    assert created
    return report


# --- the form ------------------------------------------------------------------------------------------

def test_form_is_one_light_page_with_a_token_and_the_organisations_country(as_user, partner):
    r = as_user(partner).get("/activity-reports/new")
    html = _html(r)
    assert r.status_code == 200
    token = re.search(r'name="submission_token" value="([^"]+)"', html)[1]
    assert len(token) >= 24
    assert re.search(r'<option value="HT" selected>', html)
    # Without JavaScript every country's areas are there, grouped; the script narrows them.
    assert html.count("<optgroup") == 12 and 'data-country="MX"' in html
    assert 'inputmode="numeric"' in html and "partner-form.js" in html
    assert "<img" not in html and "<script>" not in html  # no inline script (CSP), no images
    assert len(r.data) < 40_000, f"the form page is {len(r.data)} bytes"
    # A second visit is a second submission: another token.
    again = re.search(r'name="submission_token" value="([^"]+)"', _html(as_user(partner).get("/activity-reports/new")))[1]
    assert again != token


def test_partner_files_a_report_and_is_shown_it(as_user, partner, org):
    client = as_user(partner)
    r = client.post("/activity-reports/new", data=_form())
    assert r.status_code == 303, _html(r)
    [report] = _reports()
    assert r.headers["Location"].endswith(f"/activity-reports/{report.id}")
    assert (report.partner_id, report.submitted_by_id, report.source) == (org.id, partner.id, "form")
    assert (report.participants, report.women, report.men, report.sex_other) == (40, 22, 17, 1)
    assert (report.age_under_13, report.age_13_17, report.age_18_59, report.age_60_plus) == (0, 5, 30, 5)
    assert report.admin_area == "Ouest" and report.groups == ["returnees", "host_community"]
    assert report.protection_concern is False and report.protection_text is None
    page = client.get(r.headers["Location"])
    assert page.status_code == 200 and "Thank you: the report was saved." in _html(page)
    assert "Delmas 33" in _html(page) and "Kijan pou m jwenn yon viza?" in _html(page)
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "partner_report.created"))
    assert event.target_id == report.id and "Delmas" not in str(event.details)


def test_total_left_empty_is_counted_from_the_breakdown_by_sex_or_by_age(as_user, partner):
    client = as_user(partner)
    assert client.post("/activity-reports/new", data=_form("tok-derived-sex-0001", participants="")).status_code == 303
    assert client.post("/activity-reports/new", data=_form(
        "tok-derived-age-0001", participants="", women="", men="", sex_other="")).status_code == 303
    by_sex, by_age = _reports()
    assert by_sex.participants == 40
    assert (by_age.participants, by_age.women, by_age.men) == (40, 0, 0)


def test_a_breakdown_that_does_not_add_up_names_both_numbers_and_nothing_is_lost(as_user, partner):
    r = as_user(partner).post("/activity-reports/new", data=_form(men="15"))
    html = _html(r)
    assert r.status_code == 400 and _reports() == []
    assert "Women, men and other add up to 38, but the total is 40." in html
    assert 'id="e-by_sex"' in html and 'href="#f-by_sex"' in html  # at its fieldset, and listed at the top
    # What was typed is shown again, the same token with it.
    assert 'value="15"' in html and "Kijan pou m jwenn yon viza?" in html and 'value="tok-0123456789abcdef"' in html

    r = as_user(partner).post("/activity-reports/new", data=_form(age_18_59="20"))
    assert "The age groups add up to 30, but the total is 40." in _html(r)


def test_an_area_must_belong_to_the_chosen_country(as_user, partner):
    r = as_user(partner).post("/activity-reports/new", data=_form(admin_area="Petén"))
    assert r.status_code == 400
    assert "“Petén” is not a department, province or state of Haiti" in _html(r)
    assert 'id="e-admin_area"' in _html(r)


@pytest.mark.parametrize(("over", "field", "message"), [
    ({"activity_type": "other"}, "activity_other", "Say what kind of activity it was."),
    ({"activity_type": ""}, "activity_type", "Choose the type of activity."),
    ({"activity_date": ""}, "activity_date", "Give the date of the activity."),
    ({"activity_date": (date.today() + timedelta(days=5)).isoformat()}, "activity_date", "cannot be in the future"),
    ({"women": "veinte"}, "women", "Write a whole number, such as 12."),
    ({"men": "200000"}, "men", "Write a whole number from 0 to 100000."),
    ({"participants": "", "women": "", "men": "", "sex_other": "", "age_13_17": "", "age_18_59": "",
      "age_60_plus": ""}, "participants", "Give the number of participants"),
    ({"what_worked": "x" * 4001}, "what_worked", "At most 4000 characters"),
    ({"protection_concern": "1"}, "protection_text", "Describe the protection concern"),
    ({"country": "US"}, "country", "“US” is not one of the programme"),
])
def test_invalid_fields_get_a_message_at_the_field(as_user, partner, over, field, message):
    r = as_user(partner).post("/activity-reports/new", data=_form(**over))
    html = _html(r)
    assert r.status_code == 400 and _reports() == []
    assert message in html
    assert f'id="e-{field}"' in html and f'href="#f-{field}"' in html


def test_an_empty_post_is_a_page_of_errors_not_a_crash(as_user, make_user):
    for user in (make_user("partner"), make_user("admin")):
        r = as_user(user).post("/activity-reports/new", data={})
        assert r.status_code == 400 and "form-errors" in _html(r)


def test_validation_messages_are_in_the_partners_language(as_user, partner, app):
    partner.ui_language = "ht"
    db.session.commit()
    r = as_user(partner).post("/activity-reports/new", data=_form(men="15", admin_area="Petén"))
    html = _html(r)
    assert r.status_code == 400 and '<html lang="ht">' in html
    # The catalogs come later: compare with what gettext gives in Creole, whatever it is today.
    with app.test_request_context(), force_locale("ht"):
        expected = gettext("Women, men and other add up to %(sum)s, but the total is %(total)s.", sum=38, total=40)
        label = gettext("Participants by sex")
    assert f'<p class="error" id="e-by_sex">{expected}</p>' in html
    assert f'<a href="#f-by_sex">{label}</a>' in html
    assert 'id="e-admin_area"' in html


# --- one report per submission -----------------------------------------------------------------------

def test_sending_the_same_form_again_stores_one_report_and_shows_it(as_user, partner):
    client = as_user(partner)
    first = client.post("/activity-reports/new", data=_form())
    again = client.post("/activity-reports/new", data=_form(participants="", what_worked="changed"))
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    [report] = _reports()
    assert report.what_worked == "Moun yo te poze anpil kesyon"
    assert "This report was already received" in _html(client.get(again.headers["Location"]))
    assert db.session.scalar(sa.select(sa.func.count(FeedbackItem.id))) == 3


def test_two_copies_racing_store_one_report(app, partner, monkeypatch):
    """The second copy passed the look-up before the first was stored: the unique token decides."""
    first = _file(partner, token="race-token-0123456789")
    real = ps._by_token
    calls = []

    def too_early(token):
        calls.append(token)
        return None if len(calls) == 1 else real(token)

    monkeypatch.setattr(ps, "_by_token", too_early)
    data = ps.report_schema().load(_form(token="race-token-0123456789", what_worked="copy"))
    report, created = ps.create_report(data, actor=partner, partner_id=partner.partner_id)
    db.session.commit()
    assert created is False and report.id == first.id and len(calls) == 2
    assert [r.id for r in _reports()] == [first.id]
    assert _reports()[0].what_worked == "Moun yo te poze anpil kesyon"


def test_a_token_of_another_organisation_is_refused(app, partner, make_user):
    _file(partner, token="shared-token-0123456789")
    other = make_user("partner")
    data = ps.report_schema().load(_form(token="shared-token-0123456789"))
    with pytest.raises(ps.ServiceError) as exc:
        ps.create_report(data, actor=other, partner_id=other.partner_id)
    assert exc.value.code == "report_token_taken"


# --- who sees what -----------------------------------------------------------------------------------

def test_a_partner_cannot_open_or_correct_another_organisations_report(as_user, partner, make_user):
    mine = _file(partner)
    stranger = make_user("partner")
    theirs = _file(stranger, token="theirs-0123456789", country="GT", admin_area="Petén")
    client = as_user(partner)
    assert client.get(f"/activity-reports/{mine.id}").status_code == 200
    assert client.get(f"/activity-reports/{theirs.id}").status_code == 404
    assert client.get(f"/activity-reports/{theirs.id}/edit").status_code == 404
    assert client.post(f"/activity-reports/{theirs.id}/edit", data=_form(participants="1")).status_code == 404
    listing = _html(client.get("/activity-reports"))
    assert f"/activity-reports/{mine.id}" in listing and f"/activity-reports/{theirs.id}" not in listing
    assert _reports()[1].participants == 40


def test_staff_see_every_organisations_reports_and_filter_them(as_user, partner, make_user):
    gt = _file(make_user("partner"), token="gt-report-0123456789", country="GT", admin_area="Petén")
    ht = _file(partner)
    for role in ("admin", "officer", "evaluator"):
        client = as_user(make_user(role))
        listing = _html(client.get("/activity-reports"))
        assert f"/activity-reports/{gt.id}" in listing and f"/activity-reports/{ht.id}" in listing, role
        filtered = _html(client.get("/activity-reports?country=HT"))
        assert f"/activity-reports/{gt.id}" not in filtered and f"/activity-reports/{ht.id}" in filtered
        by_org = _html(client.get(f"/activity-reports?partner={gt.partner_id}"))
        assert f"/activity-reports/{gt.id}" in by_org and f"/activity-reports/{ht.id}" not in by_org
    # Officers and evaluators do not correct partners' reports.
    assert as_user(make_user("officer")).get(f"/activity-reports/{ht.id}/edit").status_code == 403


def test_an_officer_limited_to_some_countries_sees_those_countries_reports(as_user, partner, make_user):
    report = _file(partner)
    assert as_user(make_user("officer", countries=["GT"])).get(f"/activity-reports/{report.id}").status_code == 404
    assert as_user(make_user("officer", countries=["HT"])).get(f"/activity-reports/{report.id}").status_code == 200


def test_small_counts_show_as_under_five_to_evaluators_not_to_the_partner(as_user, partner, make_user):
    report = _file(partner, participants="7", women="3", men="4", sex_other="", age_13_17="", age_18_59="7",
                   age_60_plus="")
    assert re.search(r'<td class="num">&lt;5</td>', _html(as_user(make_user("evaluator")).get(
        f"/activity-reports/{report.id}")))
    own = _html(as_user(partner).get(f"/activity-reports/{report.id}"))
    assert '<td class="num">3</td>' in own and "&lt;5" not in own


def test_phone_numbers_written_in_a_report_are_masked_for_staff_other_than_administrators(as_user, partner,
                                                                                        make_user):
    report = _file(partner, questions_heard="Yon moun bay nimewo +509 3700 0000 pou vwayaj la")
    for role in ("evaluator", "officer"):
        page = _html(as_user(make_user(role)).get(f"/activity-reports/{report.id}"))
        assert "3700 0000" not in page and "Yon moun bay nimewo […] pou vwayaj la" in page, role
    assert "+509 3700 0000" in _html(as_user(partner).get(f"/activity-reports/{report.id}"))


# --- protection concerns -----------------------------------------------------------------------------

def test_a_protection_concern_is_for_administrators_only_and_notifies_them(as_user, partner, make_user):
    r = as_user(partner).post("/activity-reports/new", data=_form(protection_concern="1", protection_text=PROTECTION))
    assert r.status_code == 303
    [report] = _reports()
    assert report.protection_concern and report.protection_text == PROTECTION
    [notice] = db.session.scalars(sa.select(Notice)).all()
    assert (notice.kind, notice.target_type, notice.target_id, notice.read_at) == \
        ("protection_concern", "partner_report", report.id, None)
    assert ps.open_notice_count() == 1
    for user in (partner, make_user("officer"), make_user("evaluator")):
        page = _html(as_user(user).get(f"/activity-reports/{report.id}"))
        assert "Only administrators can read it" in page and PROTECTION not in page, user.role
        assert PROTECTION not in _html(as_user(user).get("/activity-reports"))
    assert as_user(partner).get("/admin/notices").status_code == 403
    admin = make_user("admin")
    assert PROTECTION in _html(as_user(admin).get(f"/activity-reports/{report.id}"))
    events = list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.target_type == "partner_report")))
    assert {"partner_report.created", "protection_concern.reported", "protection_concern.viewed"} <= \
        {e.action for e in events}
    assert all("niña" not in str(e.details) for e in events)


def test_an_administrator_reads_the_notice_and_marks_it_read(as_user, partner, make_user):
    report = _file(partner, protection_concern="1", protection_text=PROTECTION)
    [notice] = db.session.scalars(sa.select(Notice)).all()
    client = as_user(make_user("admin"))
    page = _html(client.get("/admin/notices"))
    assert f"/activity-reports/{report.id}#protection" in page and PROTECTION not in page
    assert f"/admin/notices/{notice.id}/read" in page
    r = client.post(f"/admin/notices/{notice.id}/read")
    assert r.status_code == 303 and ps.open_notice_count() == 0
    db.session.expire_all()
    assert db.session.get(Notice, notice.id).read_at is not None
    assert client.post("/admin/notices/999999/read").status_code == 404


def test_a_partner_adds_to_a_concern_without_reading_it_and_administrators_are_notified_again(as_user, partner):
    report = _file(partner, protection_concern="1", protection_text=PROTECTION)
    client = as_user(partner)
    page = _html(client.get(f"/activity-reports/{report.id}/edit"))
    assert PROTECTION not in page and 'name="protection_concern"' not in page
    values = _form(token=report.submission_token, protection_text="Li te kite abri a jodi a")
    assert client.post(f"/activity-reports/{report.id}/edit", data=values).status_code == 303
    db.session.expire_all()
    text = db.session.get(PartnerReport, report.id).protection_text
    assert text.startswith(PROTECTION) and text.endswith("Li te kite abri a jodi a")
    assert db.session.scalar(sa.select(sa.func.count(Notice.id))) == 2
    # Correcting other fields leaves the concern as it was (a partner cannot withdraw it).
    assert client.post(f"/activity-reports/{report.id}/edit", data=_form(locality="Pétion-Ville")).status_code == 303
    db.session.expire_all()
    again = db.session.get(PartnerReport, report.id)
    assert again.protection_concern and again.protection_text == text and again.locality == "Pétion-Ville"


def test_an_administrator_corrects_or_withdraws_a_concern(as_user, partner, make_user):
    report = _file(partner, protection_concern="1", protection_text=PROTECTION)
    client = as_user(make_user("admin"))
    assert PROTECTION in _html(client.get(f"/activity-reports/{report.id}/edit"))
    values = _form(protection_concern="1", protection_text=PROTECTION + " (Cap-Haïtien)")
    assert client.post(f"/activity-reports/{report.id}/edit", data=values).status_code == 303
    assert db.session.scalar(sa.select(sa.func.count(Notice.id))) == 2  # the new information is notified
    assert client.post(f"/activity-reports/{report.id}/edit", data=_form()).status_code == 303
    db.session.expire_all()
    withdrawn = db.session.get(PartnerReport, report.id)
    assert withdrawn.protection_concern is False and withdrawn.protection_text is None
    assert db.session.scalar(sa.select(sa.func.count(Notice.id))) == 2


# --- corrections and feedback items ------------------------------------------------------------------

def test_questions_rumours_and_suggestions_become_feedback_items_that_follow_corrections(as_user, partner):
    client = as_user(partner)
    location = client.post("/activity-reports/new", data=_form()).headers["Location"]
    report_id = _report_id(location)
    items = {i.source: i for i in db.session.scalars(sa.select(FeedbackItem))}
    assert set(items) == {"partner_question", "partner_rumour", "partner_suggestion"}
    assert items["partner_question"].text == "Kijan pou m jwenn yon viza?"
    assert items["partner_rumour"].suggested_type == "observation" and items["partner_rumour"].country == "HT"

    page = _html(client.get(f"/activity-reports/{report_id}/edit"))
    assert 'value="Delmas 33"' in page and "Kijan pou m jwenn yon viza?" in page
    r = client.post(f"/activity-reports/{report_id}/edit", data=_form(
        questions_heard="Ki kote biwo imigrasyon an ye?", suggestions="", participants="41", sex_other="2",
        age_60_plus="6"))
    assert r.status_code == 303 and r.headers["Location"] == location
    db.session.expire_all()
    items = {i.source: i for i in db.session.scalars(sa.select(FeedbackItem))}
    assert set(items) == {"partner_question", "partner_rumour"}
    assert items["partner_question"].text == "Ki kote biwo imigrasyon an ye?"
    report = db.session.get(PartnerReport, report_id)
    assert (report.participants, report.updated_by_id) == (41, partner.id)
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "partner_report.updated"))
    assert set(event.details["fields"]) >= {"participants", "questions_heard", "suggestions"}


def test_a_correction_is_validated_like_a_new_report(as_user, partner):
    report = _file(partner)
    r = as_user(partner).post(f"/activity-reports/{report.id}/edit", data=_form(women="1"))
    assert r.status_code == 400 and "add up to 19, but the total is 40" in _html(r)
    assert _reports()[0].women == 22


def test_an_administrator_files_for_the_organisation_they_choose(as_user, make_user, org):
    client = as_user(make_user("admin"))
    r = client.post("/activity-reports/new", data=_form())
    assert r.status_code == 400 and "Choose the organisation the report is for." in _html(r)
    assert client.post("/activity-reports/new", data=_form(partner_id=str(org.id))).status_code == 303
    assert _reports()[0].partner_id == org.id


def test_campaigns_are_chosen_by_name_among_those_past_draft(as_user, partner, make_user):
    from whp_c4d.campaigns.services import campaign_schema, create_campaign

    def campaign(key, status):
        c = create_campaign(campaign_schema().load({
            "key": key, "name": f"Kanpay {key}", "objective": "regular_pathways", "countries": ["HT"],
            "languages": ["ht"], "channels": ["sms"], "steps": [{"key": "one", "timing": {
                "type": "drip", "day": 0, "time": "10:00"}, "content": {"ht": {"sms": "Bonjou"}}}]}),
            make_user("officer"))
        c.status = status
        db.session.commit()
        return c

    active, draft = campaign("aktif", "active"), campaign("bouyon", "draft")
    client = as_user(partner)
    page = _html(client.get("/activity-reports/new"))
    assert "Kanpay aktif" in page and "Kanpay bouyon" not in page
    assert client.post("/activity-reports/new", data=_form(campaign_ids=[str(draft.id)])).status_code == 400
    assert client.post("/activity-reports/new", data=_form(campaign_ids=[str(active.id)])).status_code == 303
    assert _reports()[0].campaign_ids == [active.id]


def test_the_shipped_areas_are_the_first_level_of_every_programme_country():
    from whp_c4d.core.phones import PROGRAMME_COUNTRIES

    areas = admin_areas()
    assert set(areas) == set(PROGRAMME_COUNTRIES)
    counts = {c: len(a["areas"]) for c, a in areas.items()}
    assert counts == {"BS": 32, "BB": 11, "BZ": 6, "CR": 7, "SV": 14, "GT": 22, "HT": 10, "HN": 18, "MX": 32,
                      "PA": 14, "SR": 10, "DO": 32}
    assert "Ciudad de México" in areas["MX"]["areas"] and "Distrito Nacional" in areas["DO"]["areas"]
    assert "Comarca Guna Yala" in areas["PA"]["areas"]
    assert all(len(a) <= 80 for c in areas.values() for a in c["areas"])  # fits partner_report.admin_area


# --- the API -----------------------------------------------------------------------------------------

def _api(form: dict) -> dict:
    out = {k: v for k, v in form.items() if v != ""}
    for name in ("participants", "women", "men", "sex_other", "age_13_17", "age_18_59", "age_60_plus"):
        if name in out:
            out[name] = int(out[name])
    return out


def test_api_files_once_per_submission_token(client, partner, api_token, org):
    headers = api_token(partner)
    r = client.post("/api/v1/partner-reports", json=_api(_form("api-token-0123456789")), headers=headers)
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["status"] == "created" and body["partner_id"] == org.id and body["participants"] == 40
    assert r.headers["Location"].endswith(f"/activity-reports/{body['id']}")
    again = client.post("/api/v1/partner-reports", json=_api(_form("api-token-0123456789")), headers=headers)
    assert again.status_code == 200 and again.get_json()["id"] == body["id"]
    assert again.get_json()["status"] == "already_received"
    [report] = _reports()
    assert report.source == "api"


def test_api_answers_400_with_a_message_per_field(client, partner, api_token):
    r = client.post("/api/v1/partner-reports", headers=api_token(partner), json=_api(_form(
        "api-bad-0123456789", men="15", admin_area="Petén", groups=["nobody"], nickname="x")))
    assert r.status_code == 400
    fields = r.get_json()["fields"]
    assert fields["by_sex"] == "Women, men and other add up to 38, but the total is 40."
    assert set(fields) >= {"by_sex", "admin_area", "groups", "nickname"}
    assert _reports() == []
    assert client.post("/api/v1/partner-reports", headers=api_token(partner), data="[1]",
                       content_type="application/json").status_code == 400


def test_api_takes_a_kobotoolbox_submission_as_it_is(client, partner, api_token):
    submission = {
        "_id": 77, "_uuid": "3f1c6a5e-9b2d-4c1e-8f0a-7d6b5c4a3b21", "formhub/uuid": "abc",
        "meta/instanceID": "uuid:3f1c6a5e-9b2d-4c1e-8f0a-7d6b5c4a3b21", "start": "2026-03-01T09:00:00",
        "deviceid": "collect:XYZ", "phonenumber": "+50937000000", "__version__": "v1",
        "group_activity/activity_date": (date.today() - timedelta(days=1)).isoformat(),
        "group_activity/country": "HT", "group_activity/admin_area": "nord ouest",
        "group_activity/activity_type": "radio", "group_reach/women": "12", "group_reach/men": "8",
        "groups": "in_transit returnees", "languages": "ht", "questions_heard": "Eske gen vis pou Chili?",
        "protection_concern": "no",
    }
    r = client.post("/api/v1/partner-reports", json=submission, headers=api_token(partner))
    assert r.status_code == 201, r.get_json()
    [report] = _reports()
    assert report.submission_token == "uuid:3f1c6a5e-9b2d-4c1e-8f0a-7d6b5c4a3b21"
    assert (report.admin_area, report.participants, report.groups) == ("Nord-Ouest", 20, ["in_transit", "returnees"])
    assert "+50937000000" not in str(r.get_json()) and "collect:XYZ" not in str(vars(report))
    # Kobo retries with only its _uuid: the same submission.
    retry = {k: v for k, v in submission.items() if k != "meta/instanceID"}
    again = client.post("/api/v1/partner-reports", json=retry, headers=api_token(partner))
    assert again.status_code == 200 and again.get_json()["id"] == report.id
    assert len(_reports()) == 1


def test_api_for_an_administrator_needs_the_organisation(client, make_user, api_token, org):
    headers = api_token(make_user("admin"))
    r = client.post("/api/v1/partner-reports", json=_api(_form("admin-api-0123456789")), headers=headers)
    assert r.status_code == 400 and "partner_id" in r.get_json()["fields"]
    r = client.post("/api/v1/partner-reports", json=_api(_form("admin-api-0123456789", partner_id=org.id)),
                    headers=headers)
    assert r.status_code == 201 and r.get_json()["partner_id"] == org.id


def test_api_never_echoes_the_protection_text_and_notifies(client, partner, api_token):
    r = client.post("/api/v1/partner-reports", headers=api_token(partner), json=_api(_form(
        "api-protect-0123456789", protection_concern=True, protection_text=PROTECTION)))
    assert r.status_code == 201 and r.get_json()["protection_concern"] is True
    assert PROTECTION not in r.get_data(as_text=True)
    assert ps.open_notice_count() == 1


def test_api_refuses_officers_and_evaluators(client, make_user, api_token):
    for role in ("officer", "evaluator"):
        r = client.post("/api/v1/partner-reports", json=_api(_form()), headers=api_token(make_user(role)))
        assert r.status_code == 403


def test_openapi_documents_the_partner_reports_endpoint(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    post = spec["paths"]["/api/v1/partner-reports"]["post"]
    assert {"200", "201", "400", "401", "403", "409"} <= set(post["responses"])
    assert "meta/instanceID" in post["description"]
    props = spec["components"]["schemas"]["PartnerReport"]["properties"]
    assert {"submission_token", "activity_date", "women", "age_60_plus", "protection_text"} <= set(props)
    assert "protection_text" not in spec["components"]["schemas"]["PartnerReportReceived"]["properties"]


# --- malformed input never reaches a 500 ---------------------------------------------------------------

def test_malformed_partner_report_payloads_get_a_400_never_a_500(app, partner, api_token):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    headers = api_token(partner)
    client = app.test_client()
    base = _form()
    scalars = st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.floats(allow_nan=True) | st.text(max_size=30)
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(field=st.sampled_from(sorted(base) + ["meta/instanceID", "_uuid", "partner_id", "protection_concern",
                                                 "protection_text", "campaign_ids", "unknown"]),
           value=values, token=st.text(max_size=80) | st.none())
    def check(field, value, token):
        payload = dict(base, submission_token=token) if token is not None else dict(base)
        payload[field] = value
        r = client.post("/api/v1/partner-reports", json=payload, headers=headers)
        assert r.status_code in (200, 201, 400, 409), (r.status_code, field, value)
        db.session.rollback()

    check()
    for raw in (b"", b"[]", b"null", b"{", "é".encode("latin-1"), b'{"activity_date": "2026-02-30"}'):
        r = client.post("/api/v1/partner-reports", data=raw, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 400, raw


def test_malformed_report_forms_are_answered_with_the_form_never_a_500(as_user, partner):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    client = as_user(partner)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(field=st.sampled_from(sorted(_form())), value=st.text(max_size=40) | st.sampled_from(
        ["-1", "1e9", "99999999999999999999", "0x10", " 12 ", "NaN", "2026-13-01", "00"]))
    def check(field, value):
        r = client.post("/activity-reports/new", data=_form(token=f"fuzz-{field}-0123456789abcdef", **{field: value}))
        assert r.status_code in (200, 302, 303, 400), (r.status_code, field, value)
        db.session.rollback()

    check()
