"""Campaign authoring: content files, four eyes, checks before approval, the editor's segment counter,
estimates, the plan the engine consumes, the API and the CLI."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
import sqlalchemy as sa

from whp_c4d.audience.models import Segment
from whp_c4d.auth.models import AuditEvent
from whp_c4d.campaigns import services
from whp_c4d.campaigns import settings as campaign_settings
from whp_c4d.campaigns.checks import check_campaign
from whp_c4d.campaigns.estimates import estimate
from whp_c4d.campaigns.files import load_path, load_text
from whp_c4d.campaigns.models import Campaign, CampaignEnrolment, Step
from whp_c4d.campaigns.planning import enrol_audience, plan_step
from whp_c4d.core.errors import ServiceError
from whp_c4d.core.localtime import out_of_quiet_hours
from whp_c4d.extensions import db

SHIPPED = Path(__file__).resolve().parent.parent / "campaigns"


def _campaign_data(**over) -> dict:
    data = {
        "key": "two-languages", "name": "Dos idiomas", "objective": "regular_pathways",
        "countries": ["GT", "HT"], "languages": ["es", "ht"], "channels": ["sms"], "audience": "Todos",
        "steps": [
            {"key": "hola", "timing": {"type": "drip", "day": 0, "time": "10:00"},
             "content": {"es": {"sms": "Hola, informacion oficial: {hotline}"},
                         "ht": {"sms": "Bonjou, enfomasyon ofisyel: {hotline}"}}},
            {"key": "segundo", "timing": {"type": "drip", "day": 3, "time": "10:00"},
             "content": {"es": {"sms": "Segundo mensaje"}, "ht": {"sms": "Dezyem mesaj"}}},
        ],
    }
    data.update(over)
    return data


@pytest.fixture
def ready(app, make_user, make_contact):
    """Two officers, an audience in GT and HT, and the variable values the content uses."""
    admin = make_user("admin")
    for country, value in (("GT", "555-0100"), ("HT", "555-0101")):
        from whp_c4d.campaigns.models import ContentVariable

        campaign_settings.set_variable_values(db.session.get(ContentVariable, "hotline"), {country: value}, admin)
    db.session.add(Segment(name="Todos", filters={}))
    db.session.commit()
    make_contact(country="GT", language="es")
    make_contact(country="HT", language="ht", phone="+50937512345")
    return make_user("officer"), make_user("officer")


def _create(author, **over) -> Campaign:
    campaign = services.create_campaign(services.campaign_schema().load(_campaign_data(**over)), author)
    db.session.commit()
    return campaign


# --- content files ----------------------------------------------------------------------------------

def test_loading_the_shipped_campaigns_twice_leaves_the_database_unchanged(app):
    first = load_path(SHIPPED, None)
    assert [r.problems for r in first] == [[]] * len(first)
    assert len(first) >= 3 and {r.outcome for r in first} == {"created"}
    db.session.commit()

    def snapshot():
        rows = []
        with db.engine.connect() as conn:
            for table in ("campaign", "campaign_step", "step_content", "audit_event"):
                rows.append(sorted(map(tuple, conn.exec_driver_sql(f'SELECT * FROM "{table}"'))))
        return rows

    before = snapshot()
    second = load_path(SHIPPED, None)
    db.session.commit()
    assert {r.outcome for r in second} == {"unchanged"}
    assert snapshot() == before


def test_shipped_campaigns_cover_drip_poll_menu_and_four_languages(app):
    for r in load_path(SHIPPED, None):
        assert not r.problems
    campaigns = db.session.scalars(sa.select(Campaign)).all()
    kinds = {s.kind for c in campaigns for s in c.steps}
    timings = {s.timing_type for c in campaigns for s in c.steps}
    assert {"message", "poll", "menu"} <= kinds and "drip" in timings
    for c in campaigns:
        assert {"es", "en", "fr", "ht"} <= set(c.languages)
        for step in c.steps:
            assert {x.language for x in step.contents} == set(c.languages), (c.key, step.key)


def test_a_changed_file_updates_the_draft_and_an_approved_campaign_goes_back_to_review(app, ready):
    author, reviewer = ready
    text = (SHIPPED / "verify-job-offers.yaml").read_text(encoding="utf-8")
    assert load_text(text, "v.yaml", author).outcome == "created"
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.key == "verify-job-offers"))
    campaign.status, campaign.approved_version = "approved", campaign.version
    db.session.commit()
    changed = text.replace("name: ", "name: V2 ", 1)
    result = load_text(changed, "v.yaml", author)
    db.session.commit()
    assert result.outcome == "updated"
    assert campaign.name.startswith("V2 ") and campaign.status == "in_review" and campaign.version == 2


def test_a_typo_in_a_file_names_the_file_the_path_and_the_line(app):
    text = (SHIPPED / "hurricane-season.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    target = next(i for i, line in enumerate(lines) if line.strip().startswith("sms:"))
    lines[target] = lines[target].replace("sms:", "smss:", 1)
    result = load_text("\n".join(lines), "campaigns/hurricane-season.yaml", None)
    assert result.outcome == "error"
    problem = result.problems[0]
    assert problem.file == "campaigns/hurricane-season.yaml"
    assert problem.path.startswith("steps[0].content.") and problem.path.endswith(".smss")
    assert problem.line == target + 1
    assert "Unknown field" in problem.message
    assert f"campaigns/hurricane-season.yaml:{target + 1}: steps[0]" in str(problem)


def test_a_wrong_value_is_reported_with_what_was_expected(app):
    bad = "key: x-y\nname: X\nobjective: regular_pathways\ncountries: [GT]\nlanguages: [es]\nchannels: [fax]\n"
    problems = load_text(bad, "bad.yaml", None).problems
    assert [(p.path, p.line) for p in problems] == [("channels", 6)]
    assert "sms or whatsapp" in problems[0].message


def test_times_written_without_quotes_stay_times(app):
    text = ("key: t-t\nname: T\nobjective: emergencies\ncountries: [GT]\nlanguages: [es]\nchannels: [sms]\n"
            "steps:\n  - key: a\n    timing: {type: drip, day: 1, time: 09:30}\n    content: {es: {sms: Hola}}\n")
    result = load_text(text, "t.yaml", None)
    assert result.outcome == "created", result.problems
    assert db.session.get(Campaign, result.campaign_id).steps[0].local_time == time(9, 30)


def test_export_then_load_is_unchanged(app, ready, runner):
    author, _ = ready
    campaign = _create(author)
    out = runner.invoke(args=["campaigns", "export", str(campaign.id)])
    assert out.exit_code == 0 and "key: two-languages" in out.output
    assert load_text(out.output, "export.yaml", author).outcome == "unchanged"


# --- four eyes and the workflow ------------------------------------------------------------------------

def test_approving_ones_own_edit_is_refused_and_another_officer_can(app, ready):
    author, reviewer = ready
    campaign = _create(author)
    services.transition(campaign, "submit", author)
    with pytest.raises(ServiceError) as refused:
        services.transition(campaign, "approve", author)
    assert refused.value.code == "approve_own_edit"
    services.transition(campaign, "approve", reviewer)
    db.session.commit()
    assert campaign.status == "approved" and campaign.approved_by_id == reviewer.id
    actions = db.session.scalars(sa.select(AuditEvent.action).where(
        AuditEvent.target_type == "campaign", AuditEvent.target_id == campaign.id)).all()
    assert "campaign.submit" in actions and "campaign.approve" in actions


def test_the_reviewer_who_edits_cannot_then_approve(app, ready):
    author, reviewer = ready
    campaign = _create(author)
    services.transition(campaign, "submit", author)
    services.save_step(campaign, campaign.steps[1], {**services.step_data(campaign.steps[1]),
                                                      "timing": {"type": "drip", "day": 4, "time": "11:00"}},
                       reviewer)
    with pytest.raises(ServiceError):
        services.transition(campaign, "approve", reviewer)
    services.transition(campaign, "approve", author)
    assert campaign.status == "approved"


def test_editing_an_approved_campaign_sends_it_back_to_review(app, ready):
    author, reviewer = ready
    campaign = _create(author)
    services.transition(campaign, "submit", author)
    services.transition(campaign, "approve", reviewer)
    services.save_step(campaign, None, {"key": "tercero", "timing": {"type": "drip", "day": 7, "time": "10:00"},
                                        "content": {"es": {"sms": "Tres"}, "ht": {"sms": "Twa"}}}, author)
    assert campaign.status == "in_review" and campaign.approved_version == 1 and campaign.version == 2
    assert "campaign.returned_to_review" in db.session.scalars(sa.select(AuditEvent.action)).all()


def test_an_active_campaign_cannot_be_edited_until_paused_and_resuming_needs_new_approval(app, ready):
    author, reviewer = ready
    campaign = _create(author)
    for action, who in (("submit", author), ("approve", reviewer), ("activate", author)):
        services.transition(campaign, action, who)
    with pytest.raises(ServiceError) as exc:
        services.save_step(campaign, None, {"key": "x", "timing": {"type": "drip", "day": 1, "time": "10:00"},
                                            "content": {}}, author)
    assert exc.value.code == "campaign_not_editable"
    services.transition(campaign, "pause", author)
    services.save_step(campaign, None, {"key": "x", "timing": {"type": "drip", "day": 1, "time": "10:00"},
                                        "content": {"es": {"sms": "x"}, "ht": {"sms": "x"}}}, author)
    assert campaign.status == "in_review"
    assert "resume" not in services.allowed_actions(campaign)


# --- checks before approval ------------------------------------------------------------------------------

def test_missing_creole_for_one_step_blocks_approval_and_names_the_step(app, ready, client, login):
    author, reviewer = ready
    data = _campaign_data()
    data["steps"][1]["content"].pop("ht")
    campaign = _create(author, **{"steps": data["steps"]})
    problems = [p for p in check_campaign(campaign) if p.blocking]
    assert [(p.code, p.params["step"], p.language) for p in problems] == [("missing_content", 2, "ht")]
    with pytest.raises(ServiceError) as exc:
        services.transition(campaign, "submit", author)
    assert exc.value.code == "campaign_has_problems"
    login(client, author)
    page = client.get(f"/campaigns/{campaign.id}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Step 2 has no content in Haitian Creole and no fallback covers it." in page
    page = client.get(f"/campaigns/{campaign.id}", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "El paso 2 no tiene contenido en criollo haitiano" in page
    # A fallback chain covers it.
    services.update_settings(campaign, {**services.export_campaign(campaign), "fallbacks": {"ht": ["es"]}}, author)
    assert not [p for p in check_campaign(campaign) if p.blocking]


def test_every_blocking_problem_is_listed_at_once(app, ready):
    author, _ = ready
    campaign = _create(author, channels=["sms", "whatsapp"], audience=None, steps=[
        {"key": "late", "timing": {"type": "at", "date": "2030-01-10", "time": "22:30"},
         "content": {"es": {"sms": "Hola {official_info_url}"}, "ht": {"sms": ""}}}])
    codes = {p.code for p in check_campaign(campaign) if p.blocking}
    assert codes >= {"no_audience", "whatsapp_needs_template", "quiet_hours_everyone", "variable_without_value",
                     "missing_content"}


def test_fixed_zone_step_is_blocked_only_when_quiet_for_everyone(app, ready):
    author, _ = ready
    # 19:30 in Guatemala is 21:30 in Haiti (DST) or 20:30 (standard): quiet there, not in Guatemala.
    campaign = _create(author, steps=[{"key": "a", "timing": {"type": "at", "date": "2030-01-10", "time": "19:30",
                                                              "timezone": "America/Guatemala"},
                                       "content": {"es": {"sms": "Hola"}, "ht": {"sms": "Bonjou"}}}])
    problems = {p.code: p for p in check_campaign(campaign)}
    assert "quiet_hours_everyone" not in problems and problems["quiet_hours_some"].severity == "warning"


def test_warnings_for_segments_avoidable_ucs2_and_unofficial_links(app, ready):
    author, _ = ready
    campaign_settings.add_domain("gob.gt", author)
    long_text = "Información " * 30
    campaign = _create(author, steps=[{"key": "a", "timing": {"type": "drip", "day": 0, "time": "10:00"},
                                       "content": {"es": {"sms": long_text + "https://www.gob.gt/x https://bit.ly/y"},
                                                   "ht": {"sms": "Li “sa” – tanpri"}}}])
    warnings = {(p.code, p.language) for p in check_campaign(campaign) if not p.blocking}
    assert ("too_many_segments", "es") in warnings
    assert ("ucs2_avoidable", "ht") in warnings
    assert ("unofficial_link", "es") in warnings
    links = [p for p in check_campaign(campaign) if p.code == "unofficial_link"]
    assert [p.params["domain"] for p in links] == ["bit.ly"]


def test_unknown_variable_is_refused_at_save_time_with_a_suggestion(app, ready, client, login):
    author, _ = ready
    campaign = _create(author)
    login(client, author)
    form = {"key": "nuevo", "kind": "message", "timing_type": "drip", "drip_day": "1", "time": "10:00",
            "es-sms": "Llama al {hotlin}", "ht-sms": "Rele {hotline}"}
    r = client.post(f"/campaigns/{campaign.id}/steps/new", data=form, headers={"Accept-Language": "en"})
    assert r.status_code == 400
    assert "Unknown variable {hotlin}: did you mean {hotline}?" in r.get_data(as_text=True)
    db.session.expire_all()
    assert len(campaign.steps) == 2 and campaign.version == 1


# --- the editor's counter and the estimate ----------------------------------------------------------------

def test_editor_counter_shows_ucs2_and_the_offending_characters(app, ready, client, login):
    author, _ = ready
    login(client, author)
    accented = client.post("/campaigns/segments", json={"text": "Información útil"}).get_json()
    assert accented["encoding"] == "UCS-2" and accented["non_gsm"] == ["ó", "ú"]
    plain = client.post("/campaigns/segments", json={"text": "Informacion util"}).get_json()
    assert plain["encoding"] == "GSM-7" and plain["non_gsm"] == []
    rewritten = client.post("/campaigns/segments", json={"text": "“Hola” — ya…", "rewrite": "typographic"}).get_json()
    assert rewritten["text"] == '"Hola" - ya...' and rewritten["encoding"] == "GSM-7"
    campaign = _create(author)
    r = client.post(f"/campaigns/{campaign.id}/steps/new", headers={"Accept-Language": "es"}, data={
        "key": "x", "kind": "message", "timing_type": "drip", "drip_day": "1", "time": "10:00",
        "es-sms": "Información útil", "ht-sms": "Enfòmasyon", "rewrite": "es:accents"})
    page = r.get_data(as_text=True)
    assert ">Informacion util</textarea>" in page and r.status_code == 200  # rewritten, not saved
    r = client.post(f"/campaigns/{campaign.id}/steps/new", headers={"Accept-Language": "es"}, data={
        "key": "x", "kind": "message", "timing_type": "drip", "drip_day": "1", "time": "10:00",
        "es-sms": "Información útil", "ht-sms": "Enfomasyon"})
    assert r.status_code == 302
    step = db.session.scalar(sa.select(Step).where(Step.key == "x"))
    page = client.get(f"/campaigns/{campaign.id}/steps/{step.id}").get_data(as_text=True)
    assert "UCS-2" in page and "<mark>ó</mark>" in page and "<mark>ú</mark>" in page


def test_cost_estimate_follows_the_encoding(app, ready):
    author, _ = ready
    campaign_settings.save_price("*", "sms", "0.05", "USD", author)
    text = "Información útil para tu viaje. " * 3  # 96 characters: UCS-2 -> 2 segments; GSM-7 -> 1
    campaign = _create(author, steps=[{"key": "a", "timing": {"type": "drip", "day": 0, "time": "10:00"},
                                       "content": {"es": {"sms": text}, "ht": {"sms": "Bonjou"}}}])
    accented = estimate(campaign)
    services.save_step(campaign, campaign.steps[0], {**services.step_data(campaign.steps[0]), "content": {
        "es": {"sms": text.replace("ó", "o").replace("ú", "u")}, "ht": {"sms": "Bonjou"}}}, author)
    plain = estimate(campaign)
    assert accented.recipients == plain.recipients == 2
    assert accented.total_segments == 3 and plain.total_segments == 2
    assert accented.totals["USD"] > plain.totals["USD"]


# --- the plan the engine consumes ----------------------------------------------------------------------------

def test_plan_gives_language_after_fallback_channel_by_consent_and_local_time_out_of_quiet_hours(
        app, ready, make_contact):
    author, _ = ready
    nl_speaker = make_contact(country="GT", language="nl", channels=("whatsapp", "sms"), phone="+50255599999")
    campaign = _create(author, channels=["sms", "whatsapp"], sms_fallback=True, fallbacks={"ht": ["es"]}, steps=[
        {"key": "a", "timing": {"type": "at", "date": "2030-03-05", "time": "07:00"},
         "content": {"es": {"sms": "Hola {hotline}", "whatsapp": "Hola por WhatsApp {hotline}"}}}])
    plans = {p.contact_id: p for p in plan_step(campaign.steps[0])}
    assert len(plans) == 3
    creole = next(p for p in plans.values() if p.language == "es" and p.body.endswith("555-0101"))
    assert creole.channel == "sms" and creole.local_send_at.hour == 8  # moved out of quiet hours
    wa = plans[nl_speaker.id]
    assert wa.channel == "whatsapp" and wa.body == "Hola por WhatsApp 555-0100"
    assert wa.sms_fallback_body == "Hola 555-0100" and wa.segments == 1
    assert wa.earliest_utc == datetime(2030, 3, 5, 14, 0, tzinfo=UTC)  # 08:00 in Guatemala (UTC-6)


def test_plan_skips_opted_out_contacts_and_drip_starts_at_each_enrolment(app, ready, make_contact):
    from whp_c4d.audience.services import record_consent

    author, _ = ready
    campaign = _create(author)
    enrol_audience(campaign, now=datetime(2030, 1, 1, 15, 0, tzinfo=UTC))
    late = make_contact(country="GT", language="es", phone="+50255588888")
    enrol_audience(campaign, now=datetime(2030, 1, 10, 15, 0, tzinfo=UTC))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CampaignEnrolment)) == 3
    plans = {p.contact_id: p for p in plan_step(campaign.steps[1])}
    assert plans[late.id].local_send_at.date() == date(2030, 1, 13)
    assert {p.local_send_at.date() for cid, p in plans.items() if cid != late.id} == {date(2030, 1, 4)}
    record_consent(late, "sms", granted=False, source="keyword", actor=None)
    assert late.id not in {p.contact_id for p in plan_step(campaign.steps[1])}


def test_quiet_hours_move_late_sends_to_the_next_morning():
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("America/Guatemala")
    assert out_of_quiet_hours(datetime(2030, 1, 1, 21, 0, tzinfo=tz), time(20), time(8)) == \
        datetime(2030, 1, 2, 8, 0, tzinfo=tz)
    assert out_of_quiet_hours(datetime(2030, 1, 1, 6, 0, tzinfo=tz), time(20), time(8)) == \
        datetime(2030, 1, 1, 8, 0, tzinfo=tz)
    noon = datetime(2030, 1, 1, 12, 0, tzinfo=tz)
    assert out_of_quiet_hours(noon, time(20), time(8)) == noon


# --- API and CLI ---------------------------------------------------------------------------------------------

def test_api_creates_reads_replaces_and_moves_campaigns(app, ready, api_token):
    author, reviewer = ready
    client = app.test_client()
    h_author, h_reviewer = api_token(author), api_token(reviewer)
    r = client.post("/api/v1/campaigns", json=_campaign_data(), headers=h_author)
    assert r.status_code == 201, r.get_json()
    cid = r.get_json()["id"]
    body = client.get(f"/api/v1/campaigns/{cid}", headers=h_reviewer).get_json()
    assert body["status"] == "draft" and body["steps"][1]["key"] == "segundo" and body["problems"] == []
    bad = copy.deepcopy(body)
    bad["steps"][1]["content"]["ht"]["sms"] = "{nope}"
    r = client.put(f"/api/v1/campaigns/{cid}", json=bad, headers=h_author)
    assert r.status_code == 400 and "steps[1].content.ht.sms" in r.get_json()["fields"]
    assert client.post(f"/api/v1/campaigns/{cid}/transitions", json={"action": "submit"},
                       headers=h_author).status_code == 200
    r = client.post(f"/api/v1/campaigns/{cid}/transitions", json={"action": "approve"}, headers=h_author)
    assert r.status_code == 409 and r.get_json()["error"] == "approve_own_edit"
    assert "campaign.approval_refused" in db.session.scalars(sa.select(AuditEvent.action)).all()
    r = client.post(f"/api/v1/campaigns/{cid}/transitions", json={"action": "approve"}, headers=h_reviewer)
    assert r.status_code == 200 and r.get_json()["status"] == "approved"
    assert "/api/v1/campaigns/{campaign_id}/transitions" in client.get("/api/v1/openapi.json").get_json()["paths"]


def test_cli_submit_and_approve_follow_the_ui_rules(app, ready, runner):
    author, reviewer = ready
    campaign = _create(author)
    r = runner.invoke(args=["campaigns", "submit", str(campaign.id), "--user", author.email])
    assert r.exit_code == 0, r.output
    r = runner.invoke(args=["campaigns", "approve", campaign.key, "--user", author.email])
    assert r.exit_code != 0 and "four eyes" in r.output
    r = runner.invoke(args=["campaigns", "approve", campaign.key, "--user", reviewer.email])
    assert r.exit_code == 0, r.output
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "approved"


def test_cli_load_reports_errors_and_saves_nothing(app, runner, tmp_path):
    (tmp_path / "good.yaml").write_text((SHIPPED / "verify-job-offers.yaml").read_text(encoding="utf-8"),
                                        encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("key: Bad Key\nname: x\n", encoding="utf-8")
    r = runner.invoke(args=["campaigns", "load", str(tmp_path)])
    assert r.exit_code == 1
    assert "bad.yaml:1: key:" in r.output and "nothing saved" in r.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 0


# --- pages ---------------------------------------------------------------------------------------------------

def test_officer_creates_a_campaign_through_the_settings_form(app, ready, client, login):
    author, _ = ready
    login(client, author)
    r = client.post("/campaigns/new", headers={"Accept-Language": "en"}, data={
        "name": "Temporada de lluvias", "objective": "emergencies", "countries": ["GT", "HT"],
        "languages": ["es", "ht"], "base_language": "es", "fallback_ht": "es", "channels": ["sms"],
        "audience": "Todos", "quiet_start": "21:00", "quiet_end": "07:30"})
    assert r.status_code == 302
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.key == "temporada-de-lluvias"))
    assert campaign.fallbacks == {"ht": ["es"]} and campaign.quiet_start == time(21) and campaign.segment_id
    r = client.post("/campaigns/new", headers={"Accept-Language": "en"}, data={"name": "", "languages": ["xx"]})
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    assert "Choose at least one country." in page and "Unknown language" in page


def test_evaluator_sees_campaigns_but_cannot_change_them(app, ready, make_user, client, login):
    author, _ = ready
    campaign = _create(author)
    login(client, make_user("evaluator"))
    assert client.get(f"/campaigns/{campaign.id}").status_code == 200
    assert client.post(f"/campaigns/{campaign.id}/transition", data={"action": "submit"}).status_code == 403
    assert client.get(f"/campaigns/{campaign.id}/steps/new").status_code == 403


def test_admin_maintains_variables_prices_and_domains(app, make_user, client, login):
    admin = make_user("admin")
    login(client, admin)
    assert client.post("/admin/campaign-settings/variables", data={"name": "consulate", "description": "x"}
                       ).status_code == 302
    assert client.post("/admin/campaign-settings/variables/consulate/values", data={"value_GT": "555-0123"}
                       ).status_code == 302
    assert client.post("/admin/campaign-settings/prices", data={"country": "GT", "channel": "sms", "price": "0,07",
                                                                "currency": "usd"}).status_code == 302
    r = client.post("/admin/campaign-settings/domains", data={"domain": "not a domain"}, follow_redirects=True,
                    headers={"Accept-Language": "en"})
    assert "is not a domain name" in r.get_data(as_text=True)
    page = client.get("/admin/campaign-settings").get_data(as_text=True)
    assert "{consulate}" in page and "555-0123" in page and "0.07000 USD" in page


# --- preview and test send --------------------------------------------------------------------------------



def test_preview_renders_variables_for_the_chosen_country_and_fallback(app, ready, client, login):
    author, _ = ready
    campaign = _create(author, fallbacks={"ht": ["es"]})
    step = campaign.steps[0]
    login(client, author)
    page = client.get(f"/campaigns/{campaign.id}/steps/{step.id}/preview?language=ht&channel=sms&country=HT",
                      headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Bonjou, enfomasyon ofisyel: 555-0101" in page and 'class="phone"' in page


def test_test_send_goes_through_the_simulator_to_the_officers_own_number(live_app, ready, client, login):
    from whp_c4d.demo import fictional_numbers
    from whp_c4d.simulator.models import SimulatorMessage

    author, _ = ready
    campaign = _create(author)
    step = campaign.steps[0]
    login(client, author)
    url = f"/campaigns/{campaign.id}/steps/{step.id}/test"
    r = client.post(url, data={"language": "es", "channel": "sms", "country": "GT"}, follow_redirects=True,
                    headers={"Accept-Language": "en"})
    assert "Add your own phone number" in r.get_data(as_text=True)
    author.test_phone = fictional_numbers("GT", 1, start=700)[0]
    db.session.commit()
    r = client.post(url, data={"language": "es", "channel": "sms", "country": "GT"}, follow_redirects=True,
                    headers={"Accept-Language": "en"})
    assert "Test message sent to your number" in r.get_data(as_text=True)
    db.session.expire_all()
    sent = db.session.scalars(sa.select(SimulatorMessage)).all()
    assert len(sent) == 1 and sent[0].body == "Hola, informacion oficial: 555-0100"
    assert "campaign.test_sent" in db.session.scalars(sa.select(AuditEvent.action)).all()


# --- malformed input never reaches a 500 ------------------------------------------------------------------

def _json_values():
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers(-5, 10**6) | st.text(max_size=12)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(["sms", "es", "key", "timing", "type", "time", "day",
                                                           "content", "options", "number", "label", "x"]),
                                          inner, max_size=4), max_leaves=12)


def test_malformed_campaign_payloads_get_a_clear_400_never_a_500(app, ready, api_token):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    author, _ = ready
    headers = api_token(author)
    client = app.test_client()
    base = _campaign_data()
    fields = sorted(base) + ["steps"]

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(field=st.sampled_from(fields), value=_json_values(), step_field=st.sampled_from(
        ["key", "kind", "timing", "content", "answer_window_hours"]), in_step=st.booleans())
    def check(field, value, step_field, in_step):
        payload = copy.deepcopy(base)
        payload["key"] = "fuzz"
        if in_step:
            payload["steps"][0][step_field] = value
        else:
            payload[field] = value
        r = client.post("/api/v1/campaigns", json=payload, headers=headers)
        assert r.status_code in (201, 400, 409), (r.status_code, payload)
        if r.status_code == 400:
            assert r.get_json()["fields"]
        db.session.rollback()
        db.session.execute(sa.delete(Step))
        db.session.execute(sa.delete(Campaign))
        db.session.commit()

    check()


def test_malformed_web_forms_are_answered_with_the_form_and_its_errors(app, ready, client, login):
    author, _ = ready
    campaign = _create(author)
    login(client, author)
    step_url = f"/campaigns/{campaign.id}/steps/new"
    for form in ({"timing_type": "weekly??", "time": "25:99", "key": "Ñ!"},
                 {"timing_type": "recurring", "every": "monthly", "month_day": "abc", "time": "10:00", "key": "a"},
                 {"timing_type": "at", "date": "2027-13-45", "timezone_mode": "fixed", "timezone": "Mars/Base",
                  "time": "10:00", "key": "b"},
                 {"kind": "menu", "timing_type": "drip", "drip_day": "1", "time": "10:00", "key": "c",
                  "es-opt0-label": "Uno", "es-opt0-number": "x", "es-sms": "Elija"}):
        r = client.post(step_url, data=form, headers={"Accept-Language": "es"})
        assert r.status_code == 400, form
        assert 'class="error"' in r.get_data(as_text=True)
    r = client.post(f"/campaigns/{campaign.id}/edit", headers={"Accept-Language": "es"}, data={
        "name": "x" * 300, "objective": "nope", "start_date": "2027-02-30", "quiet_start": "99:00"})
    assert r.status_code == 400
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).name == "Dos idiomas"  # nothing saved is lost
