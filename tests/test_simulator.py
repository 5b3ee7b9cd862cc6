"""The simulator answers like Twilio's Messages API (JSON shapes, errors, auth, paging), keeps numbers
and text encrypted, forgets a person who is erased, and is mounted only when configured."""

from __future__ import annotations

import re
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
from helpers import all_database_text

from whp_c4d.audience.erasure import erase_contact
from whp_c4d.demo import fictional_numbers
from whp_c4d.extensions import db
from whp_c4d.simulator.models import SimulatorMessage

TO, OTHER = fictional_numbers("GT", 2)
SENDER = fictional_numbers("HN", 1)[0]


@pytest.fixture
def api(app, client):
    sid, token = app.config["C4D_SIMULATOR_ACCOUNT_SID"], app.config["C4D_SIMULATOR_AUTH_TOKEN"]
    base = f"/simulator/2010-04-01/Accounts/{sid}"

    class Api:
        account_sid = sid

        def send(self, auth=(sid, token), **fields):
            fields.setdefault("From", SENDER)
            return client.post(f"{base}/Messages.json", data=fields, auth=auth)

        def fetch(self, message_sid, auth=(sid, token)):
            return client.get(f"{base}/Messages/{message_sid}.json", auth=auth)

        def list(self, auth=(sid, token), **params):
            return client.get(f"{base}/Messages.json", query_string=params, auth=auth)

        def get(self, uri, auth=(sid, token)):
            return client.get("/simulator" + uri, auth=auth)

    return Api()


def test_create_answers_201_with_twilios_message_json(api):
    r = api.send(To=TO, Body="Hola 👋", StatusCallback="https://c4d.example.org/twilio/status?m=1")
    assert r.status_code == 201 and r.is_json
    m = r.get_json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", m["sid"])
    assert m["account_sid"] == api.account_sid and m["api_version"] == "2010-04-01"
    assert (m["to"], m["from"], m["body"], m["status"]) == (TO, SENDER, "Hola 👋", "queued")
    assert m["num_segments"] == "1" and m["num_media"] == "0"
    assert m["price"] is None and m["error_code"] is None and m["error_message"] is None
    assert m["direction"] == "outbound-api" and m["date_sent"] is None
    assert parsedate_to_datetime(m["date_created"]).utcoffset() == timedelta(0)
    assert m["uri"] == f"/2010-04-01/Accounts/{api.account_sid}/Messages/{m['sid']}.json"


def test_segments_are_counted_like_twilio(api):
    assert api.send(To=TO, Body="1" * 161).get_json()["num_segments"] == "2"
    assert api.send(To=TO, Body="😜" + "1" * 69).get_json()["num_segments"] == "2"
    assert api.send(To=f"whatsapp:{TO}", From=f"whatsapp:{SENDER}", Body="1" * 400).get_json()["num_segments"] == "1"


def test_messaging_service_messages_are_accepted_and_media_counted(api):
    r = api.send(To=TO, From="", MessagingServiceSid="MG" + "0" * 32, Body="hola",
                 MediaUrl=["https://c4d.example.org/a.jpg", "https://c4d.example.org/b.jpg"])
    m = r.get_json()
    assert r.status_code == 201 and m["status"] == "accepted" and m["from"] is None and m["num_media"] == "2"
    assert m["messaging_service_sid"] == "MG" + "0" * 32


@pytest.mark.parametrize(("fields", "code"), [
    ({"Body": "hola"}, 21604),
    ({"To": TO, "From": "", "Body": "hola"}, 21603),
    ({"To": TO}, 21602),
    ({"To": "+1555", "Body": "hola"}, 21211),
    ({"To": TO, "From": "no such sender!", "Body": "hola"}, 21212),
    ({"To": f"whatsapp:{TO}", "Body": "hola"}, 21910),
    ({"To": TO, "From": "", "MessagingServiceSid": "MG123", "Body": "hola"}, 21705),
    ({"To": TO, "Body": "x" * 1601}, 21617),
    ({"To": f"whatsapp:{TO}", "From": f"whatsapp:{SENDER}", "ContentSid": "HX1"}, 21655),
    ({"To": f"whatsapp:{TO}", "From": f"whatsapp:{SENDER}", "ContentSid": "HX" + "0" * 32,
      "ContentVariables": "{not json"}, 21656),
    ({"To": TO, "Body": "hola", "ValidityPeriod": "36001"}, 21624),
])
def test_invalid_requests_get_twilios_error_shape_and_nothing_is_stored(api, fields, code):
    r = api.send(**fields)
    assert r.status_code == 400
    assert r.get_json() == {"code": code, "message": r.get_json()["message"],
                            "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": 400}
    assert TO not in r.get_data(as_text=True)
    assert db.session.query(SimulatorMessage).count() == 0


def test_basic_auth_is_required_and_names_the_accounts_sid(api):
    for auth in (None, ("AC" + "1" * 32, "any token")):  # none, or another account than the URL's
        r = api.send(auth=auth, To=TO, Body="hola")
        assert r.status_code == 401 and r.get_json()["code"] == 20003
        assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert api.list(auth=None).status_code == 401
    assert api.fetch("SM" + "0" * 32, auth=None).status_code == 401
    assert db.session.query(SimulatorMessage).count() == 0


def test_without_twilio_its_own_generated_token_is_required_never_any_password(app, client, api):
    """Issue 13, finding 1: with TWILIO_ACCOUNT_SID unset (the quick start, every demo), Basic auth with
    the public simulator account SID and any password listed every number and message, not logged in,
    and let anyone create messages. The simulator's generated token is now required."""
    assert not app.config.get("TWILIO_AUTH_TOKEN")
    token = app.config["C4D_SIMULATOR_AUTH_TOKEN"]
    assert api.send(auth=(api.account_sid, token), To=TO, Body="hola").status_code == 201
    for password in ("anything", "", token[:-1], token + "x"):
        assert api.list(auth=(api.account_sid, password)).status_code == 401
        assert api.send(auth=(api.account_sid, password), To=TO, Body="hola").status_code == 401
    assert db.session.query(SimulatorMessage).count() == 1
    # Another account SID with the token: its own messages only.
    other = "AC" + "2" * 32
    r = client.post(f"/simulator/2010-04-01/Accounts/{other}/Messages.json", auth=(other, token),
                    data={"To": TO, "From": SENDER, "Body": "hola"})
    assert r.status_code == 201 and r.get_json()["account_sid"] == other
    assert len(api.list().get_json()["messages"]) == 1
    assert api.fetch(r.get_json()["sid"]).status_code == 404


def test_a_configured_auth_token_must_be_given(app, api, monkeypatch):
    monkeypatch.setitem(app.config, "TWILIO_AUTH_TOKEN", "the-real-auth-token")
    r = api.send(auth=(api.account_sid, "wrong"), To=TO, Body="hola")
    assert r.status_code == 401 and r.get_json()["code"] == 20003
    assert api.send(auth=(api.account_sid, "the-real-auth-token"), To=TO, Body="hola").status_code == 201
    assert db.session.query(SimulatorMessage).count() == 1


def test_fetch_one_message_and_unknown_sid_is_a_twilio_404(api):
    sid = api.send(To=TO, Body="hola").get_json()["sid"]
    r = api.fetch(sid)
    assert r.status_code == 200 and r.get_json()["sid"] == sid and r.get_json()["body"] == "hola"
    r = api.fetch("SM" + "f" * 32)
    assert r.status_code == 404 and r.get_json()["code"] == 20404


def test_list_filters_by_to_from_and_date_and_pages(api):
    for i in range(3):
        api.send(To=TO, Body=f"m{i}")
    api.send(To=OTHER, Body="other")
    api.send(To=f"whatsapp:{TO}", From=f"whatsapp:{SENDER}", Body="wa")
    first = api.list(To=TO, PageSize=2).get_json()
    assert [m["body"] for m in first["messages"]] == ["m2", "m1"]
    assert (first["page"], first["page_size"], first["start"], first["end"]) == (0, 2, 0, 1)
    assert first["previous_page_uri"] is None and first["uri"].startswith("/2010-04-01/Accounts/")
    second = api.get(first["next_page_uri"]).get_json()
    assert [m["body"] for m in second["messages"]] == ["m0"] and second["next_page_uri"] is None
    assert second["previous_page_uri"] is not None
    assert [m["body"] for m in api.list(To=f"whatsapp:{TO}").get_json()["messages"]] == ["wa"]
    assert len(api.list(From=SENDER).get_json()["messages"]) == 4
    assert len(api.list().get_json()["messages"]) == 5
    from whp_c4d.simulator.models import SimulatorEvent

    rows = db.session.query(SimulatorMessage).order_by(SimulatorMessage.id).all()
    for row in rows[1:]:
        row.sent_at = row.created_at
    for event in db.session.query(SimulatorEvent).filter(SimulatorEvent.message_id == rows[0].id):
        event.due_at += timedelta(hours=1)  # the first one stays queued whatever the test's pace
    rows[1].sent_at = rows[1].created_at = rows[1].created_at - timedelta(days=3)
    db.session.commit()
    today = (rows[1].created_at + timedelta(days=3)).date().isoformat()
    # DateSent reads date_sent, as Twilio: the first message, still queued, has none and never matches.
    assert len(api.list(**{"DateSent>": today}).get_json()["messages"]) == 3
    assert len(api.list(**{"DateSent<": rows[1].created_at.date().isoformat()}).get_json()["messages"]) == 1
    assert api.list(**{"DateSent>": "yesterday"}).status_code == 400
    assert api.list(PageSize=0).status_code == 400


def test_numbers_and_text_are_encrypted_at_rest(api):
    api.send(To=TO, Body="Texto confidencial del mensaje")
    dump = all_database_text()
    assert TO not in dump and TO[1:] not in dump and "Texto confidencial" not in dump


def test_erasing_a_contact_deletes_their_simulated_messages(app, api, make_contact):
    contact = make_contact(phone=TO, channels=("sms", "whatsapp"))
    api.send(To=TO, Body="sms")
    api.send(To=f"whatsapp:{TO}", From=f"whatsapp:{SENDER}", Body="wa")
    keep = api.send(To=OTHER, Body="someone else").get_json()["sid"]
    erase_contact(contact, None)
    db.session.commit()
    assert [m.sid for m in db.session.query(SimulatorMessage)] == [keep]


def test_retention_purges_old_simulated_messages(app, api):
    from whp_c4d.core import retention

    api.send(To=TO, Body="old")
    fresh = api.send(To=TO, Body="new").get_json()["sid"]
    old = db.session.query(SimulatorMessage).filter(SimulatorMessage.sid != fresh).one()
    old.created_at = old.created_at - timedelta(days=31)
    db.session.commit()
    assert retention.purge()["simulator_messages"] == 1
    db.session.commit()
    assert [m.sid for m in db.session.query(SimulatorMessage)] == [fresh]


def test_simulator_is_on_by_default_only_without_a_twilio_account(tmp_path, monkeypatch):
    from whp_c4d.config import SIMULATOR_ACCOUNT_SID, load_config

    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.delenv("C4D_SIMULATOR", raising=False)
    cfg = load_config(tmp_path)
    assert cfg["C4D_SIMULATOR"] is True and cfg["C4D_SIMULATOR_ACCOUNT_SID"] == SIMULATOR_ACCOUNT_SID
    assert len(cfg["C4D_SIMULATOR_AUTH_TOKEN"]) >= 24
    assert load_config(tmp_path)["C4D_SIMULATOR_AUTH_TOKEN"] == cfg["C4D_SIMULATOR_AUTH_TOKEN"]
    assert (tmp_path / "simulator_token").stat().st_mode & 0o077 == 0
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    assert load_config(tmp_path)["C4D_SIMULATOR"] is False
    monkeypatch.setenv("C4D_SIMULATOR", "true")
    assert load_config(tmp_path)["C4D_SIMULATOR"] is True


def test_simulator_routes_exist_only_when_enabled(app, tmp_path):
    from whp_c4d import create_app

    assert any(r.rule.startswith("/simulator/") for r in app.url_map.iter_rules())
    other = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'off.db'}", "C4D_SIMULATOR": False,
                        "SECRET_KEY": "test-secret-key-not-for-production",
                        "C4D_DATA_KEY": "test-data-key-0123456789abcdef"})
    try:
        assert not any(r.rule.startswith("/simulator") for r in other.url_map.iter_rules())
    finally:
        with other.app_context():
            db.engine.dispose()


# --- the phone screen ---------------------------------------------------------------------------------

def _handset(sid: str) -> str:
    return db.session.query(SimulatorMessage).filter_by(sid=sid).one().to_index


def test_officers_see_fake_handsets_masked_with_the_contacts_pseudonym(app, api, login, make_user, make_contact):
    from whp_c4d.core.phones import mask

    contact = make_contact(phone=TO)
    api.send(To=TO, Body="uno")
    api.send(To=f"whatsapp:{TO}", From=f"whatsapp:{SENDER}", Body="dos")
    api.send(To=OTHER, Body="tres")
    client = app.test_client()
    login(client, make_user("officer"))
    r = client.get("/simulator/phones", headers={"Accept-Language": "en"})
    page = r.get_data(as_text=True)
    assert r.status_code == 200
    assert mask(TO) in page and mask(OTHER) in page and contact.pseudonym in page
    assert page.count("/simulator/phones/") >= 2 and "not a contact" in page
    for number in (TO, OTHER):
        assert number not in page and number[1:] not in page
    assert "Test phones" in page  # the menu link


def test_a_handset_shows_its_conversation_with_statuses(app, api, login, make_user):
    from whp_c4d.simulator import settings as sim_settings

    sim_settings.save({"callback_delays": "0,0,0"})
    db.session.commit()
    sid = api.send(To=TO, Body="Hola, información útil").get_json()["sid"]
    api.send(To=OTHER, Body="para otra persona")
    client = app.test_client()
    login(client, make_user("admin"))
    handset = _handset(sid)
    r = client.get(f"/simulator/phones/{handset}", headers={"Accept-Language": "en"})
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "Hola, información útil" in page and "para otra persona" not in page
    assert "delivered" in page and TO not in page and f'value="{SENDER}"' in page  # reply to the sender
    assert "entregado" in client.get(f"/simulator/phones/{handset}", headers={"Accept-Language": "es"}).get_data(
        as_text=True)
    assert client.get("/simulator/phones/" + "0" * 64).status_code == 404
    assert client.get("/simulator/phones/not-an-id").status_code == 404
    assert client.post("/simulator/phones/" + "0" * 64 + "/reply", data={"to": SENDER, "body": "x"}).status_code == 404


def test_evaluators_and_partners_have_no_phone_screen(app, api, login, make_user):
    sid = api.send(To=TO, Body="hola").get_json()["sid"]
    handset = _handset(sid)
    for role in ("evaluator", "partner"):
        client = app.test_client()
        login(client, make_user(role))
        assert client.get("/simulator/phones").status_code == 403
        assert client.get(f"/simulator/phones/{handset}").status_code == 403
        assert client.post(f"/simulator/phones/{handset}/reply", data={"to": SENDER, "body": "x"}).status_code == 403
        assert "/simulator/phones" not in client.get("/").get_data(as_text=True)
    assert db.session.query(SimulatorMessage).count() == 1


def test_the_phone_screen_needs_a_csrf_token_while_the_twilio_api_does_not(app, api, login, make_user):
    sid = api.send(To=TO, Body="hola").get_json()["sid"]
    client = app.test_client()
    login(client, make_user("officer"))
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        r = client.post(f"/simulator/phones/{_handset(sid)}/reply", data={"to": SENDER, "body": "x"})
        assert r.status_code == 400
        r = client.post("/simulator/phones/new", data={"number": OTHER, "to": SENDER, "body": "x"})
        assert r.status_code == 400
        assert api.send(To=TO, Body="sin token CSRF").status_code == 201
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert db.session.query(SimulatorMessage).filter_by(direction="inbound").count() == 0
