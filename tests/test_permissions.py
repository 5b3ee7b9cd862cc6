"""Every registered route for every role is allowed or refused exactly as the permission map says,
and object-level scoping hides other organisations' and other countries' records (404)."""

from __future__ import annotations

import pytest

from whp_c4d.audience.models import Segment
from whp_c4d.auth.models import ApiToken
from whp_c4d.campaigns.services import campaign_schema, create_campaign
from whp_c4d.core.permissions import ROLES, can
from whp_c4d.extensions import db
from whp_c4d.messaging.services import save_sender

SKIP_METHODS = {"HEAD", "OPTIONS"}


def _marker(view):
    if getattr(view, "c4d_public", False):
        return "public"
    if getattr(view, "c4d_authenticated", False):
        return "authenticated"
    return getattr(view, "c4d_action", None)


def test_every_endpoint_declares_who_may_use_it(app):
    unmarked = [ep for ep, view in app.view_functions.items() if ep != "static" and _marker(view) is None]
    assert unmarked == []


@pytest.fixture
def world(app, make_user, make_partner, make_contact, api_token):
    partner_org = make_partner(name="Org A", country="GT")
    users = {role: make_user(role, partner=partner_org if role == "partner" else None) for role in ROLES}
    contact = make_contact(partner=partner_org)
    segment = Segment(name="Guatemala", filters={"countries": ["GT"]})
    db.session.add(segment)
    db.session.commit()
    api_token(users["admin"])
    token_row = db.session.query(ApiToken).first()
    ids = {"user_id": users["officer"].id, "partner_id": partner_org.id, "contact_id": contact.id,
           "segment_id": segment.id, "token_id": token_row.id, "token": "not-a-real-setup-token"}
    ids["sender_id"] = save_sender(None, name="SMS Guatemala", channel="sms", from_address="+50255500100").id
    campaign = create_campaign(campaign_schema().load({
        "key": "matrix", "name": "Matrix", "objective": "regular_pathways", "countries": ["GT"],
        "languages": ["es"], "channels": ["sms"],
        "steps": [{"key": "one", "timing": {"type": "drip", "day": 0, "time": "10:00"},
                   "content": {"es": {"sms": "Hola"}}}]}), users["officer"])
    ids.update(campaign_id=campaign.id, step_id=campaign.steps[0].id, name="hotline")
    db.session.commit()
    # The simulator's Twilio-style routes (public for the app; they answer 401 without Basic auth).
    ids.update(account_sid=app.config["C4D_SIMULATOR_ACCOUNT_SID"], message_sid="SM" + "0" * 32)
    ids.update(handset_id="0" * 64)  # the phone screen: an unknown handset (404 where allowed)
    from whp_c4d.inbound.models import Keyword

    ids.update(keyword_id=db.session.query(Keyword.id).filter_by(word="stop").scalar(), ref=contact.pseudonym)
    # Participatory evaluation: a report of the partner's own organisation, a notice, an item, the codebook.
    from datetime import date

    from whp_c4d.feedback.models import CodingRule, FeedbackItem, FeedbackTopic, Notice, PartnerReport

    report = PartnerReport(partner_id=partner_org.id, submission_token="matrix-token", activity_date=date(2026, 11, 2),
                           country="GT", activity_type="workshop", participants=0)
    db.session.add(report)
    db.session.flush()
    notice = Notice(kind="protection_concern", target_type="partner_report", target_id=report.id)
    item = FeedbackItem(source="message", contact_id=contact.id, text="Hola", country="GT", language="es",
                        channel="sms")
    db.session.add_all([notice, item])
    db.session.commit()
    ids.update(report_id=report.id, notice_id=notice.id, item_id=item.id,
               topic_id=db.session.query(FeedbackTopic.id).filter_by(code="health").scalar(),
               rule_id=db.session.query(CodingRule.id).order_by(CodingRule.id.desc()).limit(1).scalar())
    return users, ids


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - SKIP_METHODS):
            yield rule, method


def _url(rule, ids):
    url = rule.rule
    for arg in rule.arguments:
        url = url.replace(f"<int:{arg}>", str(ids[arg])).replace(f"<{arg}>", str(ids[arg]))
    return url


def test_route_by_role_matrix_matches_the_permission_map(app, world, login, api_token):
    users, ids = world
    headers = {role: api_token(user) for role, user in users.items()}
    checked = 0
    for rule, method in _routes(app):
        view = app.view_functions[rule.endpoint]
        marker = _marker(view)
        url = _url(rule, ids)
        is_api = rule.endpoint.startswith("api.")
        for role, user in users.items():
            client = app.test_client()
            if is_api:
                r = client.open(url, method=method, headers=headers[role], json={} if method == "POST" else None)
            else:
                login(client, user)
                r = client.open(url, method=method, data={})
            allowed = marker in ("public", "authenticated") or can(role, marker)
            where = f"{method} {rule.rule} as {role}"
            assert r.status_code < 500, where
            if rule.rule.startswith("/twilio/"):  # Twilio's webhooks: the signature, not the role, decides
                assert r.status_code == 403, where
            elif allowed:
                assert r.status_code != 403, where
            else:
                assert r.status_code == 403, where
            checked += 1
        # Anonymous: web pages send to the login page, the API answers 401.
        r = app.test_client().open(url, method=method, data={})
        if marker != "public":
            assert r.status_code == (401 if is_api else 302), f"{method} {rule.rule} anonymous"
        elif rule.rule.startswith("/twilio/"):
            assert r.status_code == 403, f"{method} {rule.rule} unsigned"
    assert checked > 100


def test_partner_reading_another_organisations_records_gets_404(app, make_user, make_partner, make_contact,
                                                                 login, api_token):
    mine, theirs = make_partner(name="Mine", country="GT"), make_partner(name="Theirs", country="HN")
    partner = make_user("partner", partner=mine)
    own = make_contact(partner=mine)
    other = make_contact(partner=theirs, country="HN", phone="+50495512345")
    client = app.test_client()
    login(client, partner)
    # Partners see their registrations, never contacts: a contact's history would tell whether the person
    # was known before (tests/test_membership_oracle.py).
    assert client.get(f"/contacts/{own.id}").status_code == 404
    assert client.get(f"/contacts/{other.id}").status_code == 404
    assert client.get(f"/partners/{mine.id}").status_code == 200
    assert client.get(f"/partners/{theirs.id}").status_code == 404
    listing = client.get("/contacts").get_data(as_text=True)
    assert own.pseudonym not in listing and other.pseudonym not in listing
    headers = api_token(partner)
    assert client.get(f"/api/v1/contacts/{other.id}", headers=headers).status_code == 404
    assert client.get("/api/v1/contacts", headers=headers).get_json()["data"] == []


def test_officer_limited_to_countries_sees_only_those(app, make_user, make_contact, login):
    officer = make_user("officer", countries=["HN"])
    gt = make_contact(country="GT")
    hn = make_contact(country="HN", phone="+50495512345")
    client = app.test_client()
    login(client, officer)
    assert client.get(f"/contacts/{gt.id}").status_code == 404
    assert client.get(f"/contacts/{hn.id}").status_code == 200


def test_refusals_are_written_to_the_audit_log(app, make_user, login):
    from whp_c4d.auth.models import AuditEvent

    evaluator = make_user("evaluator")
    client = app.test_client()
    login(client, evaluator)
    assert client.get("/admin/users").status_code == 403
    event = db.session.query(AuditEvent).filter_by(action="permission.refused").one()
    assert event.actor_id == evaluator.id and event.details["endpoint"] == "auth.users"


def test_post_without_csrf_token_is_refused(app, make_user, login):
    admin = make_user("admin")
    client = app.test_client()
    login(client, admin)
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        r = client.post("/admin/partners/new", data={"name": "Sin token", "country": "GT", "active": "y"})
        assert r.status_code == 400
        assert b"form expired" in r.data or b"formulario" in r.data
        from whp_c4d.auth.models import PartnerOrganisation

        assert db.session.query(PartnerOrganisation).filter_by(name="Sin token").count() == 0
        page = client.get("/admin/partners/new").get_data(as_text=True)
        token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        r = client.post("/admin/partners/new", data={"name": "Con token", "country": "GT", "active": "y",
                                                     "csrf_token": token})
        assert r.status_code == 302
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_get_requests_never_change_state(app):
    """State changes only through POST: no endpoint that accepts GET is a known mutating one."""
    mutating = {"auth.logout", "audience.contact_reveal", "audience.contact_erase", "audience.privacy_purge",
                "auth.api_token_revoke", "auth.user_sessions_revoke", "audience.contact_consent",
                "audience.contact_number", "audience.contact_edit", "audience.segment_save", "core.set_language",
                "inbox.reveal", "inbox.handled", "inbox.reply"}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in mutating:
            assert "GET" not in rule.methods, rule.rule


def test_the_readme_says_what_each_role_can_read():
    """Issue 13, finding 9: the roles table did not say that evaluators list conversations. Every action
    that reads people's data is named in the row of each role that has it, and no other."""
    from pathlib import Path

    from whp_c4d.core.permissions import PERMISSIONS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = {line.split("`")[1]: line for line in readme.splitlines() if line.startswith("| `") and "(" in line
            and line.split("`")[1] in PERMISSIONS}
    words = {"conversations.view": "conversations", "conversations.read": "conversations",
             "inbox.view": "inbox", "feedback.view": "feedback", "reports.view": "report",
             "partner_reports.view": "activity reports", "protection.view": "protection concern",
             "audit.view": "audit log", "contacts.reveal": "reveal"}
    for role in ("officer", "evaluator", "partner"):
        for action, word in words.items():
            if action in PERMISSIONS[role]:
                assert word in rows[role], (role, action, word)
    assert "never the messages' text" in rows["evaluator"]
    assert "conversations.read" not in PERMISSIONS["evaluator"]
