"""The simulator as a full fake of Twilio: status callbacks signed exactly as Twilio signs them (checked
with twilio's own RequestValidator) arriving at a local HTTP receiver in order, read receipts on
WhatsApp, undelivered messages, retries of callbacks that fail, duplicates and reordering, faults at
create time seen through the real TwilioChannel, the callback pump, the settings page, and replies
from the phone screen reaching the app as signed inbound webhooks. No internet: everything is local."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
import sqlalchemy as sa
from helpers import all_database_text
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from whp_c4d.core.models import utcnow
from whp_c4d.demo import fictional_numbers
from whp_c4d.extensions import db
from whp_c4d.messaging.channels import OPTED_OUT, RETRY, UNCERTAIN, SendError
from whp_c4d.messaging.channels.twilio import TwilioChannel
from whp_c4d.simulator import services
from whp_c4d.simulator import settings as sim_settings
from whp_c4d.simulator.models import SimulatorEvent, SimulatorMessage
from whp_c4d.simulator.signature import compute_signature, signing_token

TO, OTHER = fictional_numbers("GT", 2, start=400)
SENDER = fictional_numbers("HN", 1)[0]
WA_TO, WA_FROM = f"whatsapp:{TO}", f"whatsapp:{SENDER}"


# --- a local receiver, the app served on a port, channels --------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        srv = self.server
        with srv.lock:
            srv.posts.append({"path": self.path, "headers": dict(self.headers),
                              "form": parse_qsl(body, keep_blank_values=True)})
        status = srv.reply
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass

    def forms(self, status=None):
        return [dict(p["form"]) for p in self.posts if status is None or dict(p["form"]).get("MessageStatus") == status]

    def statuses(self):
        return [dict(p["form"])["MessageStatus"] for p in self.posts]


@pytest.fixture
def receiver():
    server = _Receiver(("127.0.0.1", 0), _Handler)
    server.posts, server.reply, server.lock = [], 204, threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def simulator_url(live_app):
    """The mounted simulator, served over HTTP by the app itself (conftest's live_app)."""
    return live_app.config["C4D_PUBLIC_URL"] + "/simulator"


@pytest.fixture
def channel(app, simulator_url):
    made = []

    def make(timeout: float = 5.0) -> TwilioChannel:
        ch = TwilioChannel(app.config["C4D_SIMULATOR_ACCOUNT_SID"], app.config["C4D_SIMULATOR_AUTH_TOKEN"],
                           api_base=simulator_url, timeout=timeout)
        made.append(ch)
        return ch

    make.default = make()
    yield make
    for ch in made:
        ch.close()


def configure(**values) -> None:
    """Change the simulator's settings as the admin page does, and start its randomness afresh."""
    sim_settings.save({k: str(v) if not isinstance(v, str) else v for k, v in values.items()})
    db.session.commit()
    sim_settings.reseed(1234)


def pump(at):
    """Deliver what is due at ``at`` (a fresh transaction: the server thread committed the messages)."""
    db.session.rollback()
    return services.deliver_due_callbacks(now=at)


def created_at(sid: str):
    db.session.rollback()
    return db.session.query(SimulatorMessage).filter_by(sid=sid).one().created_at


def assert_signed(app, receiver, post):
    url = receiver.url + post["path"]
    params = MultiDict(post["form"])
    signature = post["headers"]["X-Twilio-Signature"]
    assert RequestValidator(signing_token(app.config)).validate(url, params, signature), post["path"]
    assert not RequestValidator("another-token").validate(url, params, signature)


# --- the signature ----------------------------------------------------------------------------------

def test_signature_matches_twilios_check_vector_and_validator():
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
              "From": "+14158675309", "To": "+18005551212"}
    assert compute_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert compute_signature("12345", url, list(params.items())) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    repeated = [("MediaUrl", "https://b.example/2"), ("Body", "á 😜"), ("MediaUrl", "https://a.example/1")]
    signature = compute_signature("tok", "http://127.0.0.1:5000/twilio/messages", repeated)
    assert RequestValidator("tok").validate("http://127.0.0.1:5000/twilio/messages", MultiDict(repeated), signature)


def test_signing_token_is_the_configured_auth_token_else_the_simulators():
    assert signing_token({"TWILIO_AUTH_TOKEN": "real", "C4D_SIMULATOR_AUTH_TOKEN": "sim"}) == "real"
    assert signing_token({"TWILIO_AUTH_TOKEN": None, "C4D_SIMULATOR_AUTH_TOKEN": "sim"}) == "sim"


# --- status callbacks -------------------------------------------------------------------------------

def test_sms_status_callbacks_arrive_signed_in_order_with_twilios_fields(app, channel, receiver):
    callback = receiver.url + "/twilio/status?m=123"
    result = channel.default.send(to=TO, from_=SENDER, body="Hola", status_callback=callback)
    t0 = created_at(result.sid)
    assert pump(t0 + timedelta(seconds=0.1)) == 0  # queued: no callback for the initial status
    assert pump(t0 + timedelta(seconds=0.6)) == 1
    assert receiver.statuses() == ["sent"]
    assert channel.default.fetch(result.sid).status == "sent"
    assert pump(t0 + timedelta(seconds=2)) == 1
    assert pump(t0 + timedelta(seconds=60)) == 0  # nothing more for SMS: no read receipts
    assert receiver.statuses() == ["sent", "delivered"]
    for post in receiver.posts:
        assert post["path"] == "/twilio/status?m=123"
        assert post["headers"]["Content-Type"].startswith("application/x-www-form-urlencoded")
        assert_signed(app, receiver, post)
    delivered = receiver.forms("delivered")[0]
    assert delivered["MessageSid"] == delivered["SmsSid"] == result.sid
    assert delivered["MessageStatus"] == delivered["SmsStatus"] == "delivered"
    assert (delivered["AccountSid"], delivered["From"], delivered["To"], delivered["ApiVersion"]) == (
        app.config["C4D_SIMULATOR_ACCOUNT_SID"], SENDER, TO, "2010-04-01")
    assert "ErrorCode" not in delivered and "ChannelPrefix" not in delivered and "EventType" not in delivered
    fetched = channel.default.fetch(result.sid)
    assert (fetched.status, fetched.error_code) == ("delivered", None)
    events = db.session.query(SimulatorEvent).all()
    assert {(e.status, e.state, e.attempts, e.last_http_status) for e in events} == {
        ("sent", "done", 1, 204), ("delivered", "done", 1, 204)}


def test_whatsapp_gets_read_receipts(app, channel, receiver):
    result = channel.default.send(to=WA_TO, from_=WA_FROM, body="Hola",
                                  status_callback=receiver.url + "/twilio/status?m=9")
    pump(created_at(result.sid) + timedelta(seconds=10))
    assert receiver.statuses() == ["sent", "delivered", "read"]
    for post in receiver.posts:
        assert_signed(app, receiver, post)
        form = dict(post["form"])
        assert form["ChannelPrefix"] == "whatsapp" and form["To"] == WA_TO and form["From"] == WA_FROM
        assert ("EventType" in form) == (form["MessageStatus"] == "read")
    assert receiver.forms("read")[0]["EventType"] == "READ"
    assert channel.default.fetch(result.sid).status == "read"


def test_a_messaging_service_message_reports_queued_after_accepted(app, channel, receiver):
    result = channel.default.send(to=TO, messaging_service_sid="MG" + "a" * 32, body="Hola",
                                  status_callback=receiver.url + "/twilio/status?m=1")
    assert result.status == "accepted"
    pump(created_at(result.sid) + timedelta(seconds=10))
    assert receiver.statuses() == ["queued", "sent", "delivered"]
    assert receiver.forms("sent")[0]["MessagingServiceSid"] == "MG" + "a" * 32
    assert "From" not in receiver.forms("sent")[0]


def test_undelivered_carries_its_error_code(app, channel, receiver):
    configure(rate_undelivered=1)
    result = channel.default.send(to=TO, from_=SENDER, body="Hola", status_callback=receiver.url + "/s?m=5")
    pump(created_at(result.sid) + timedelta(seconds=10))
    assert receiver.statuses() == ["sent", "undelivered"]
    assert receiver.forms("undelivered")[0]["ErrorCode"] == "30003"
    assert "ErrorCode" not in receiver.forms("sent")[0]
    fetched = channel.default.fetch(result.sid)
    assert (fetched.status, fetched.error_code) == ("undelivered", 30003)


def test_statuses_advance_for_a_lookup_even_without_a_callback_or_a_pump(app, channel):
    configure(callback_delays="0,0,0")
    result = channel.default.send(to=TO, from_=SENDER, body="Hola")
    assert channel.default.fetch(result.sid).status == "delivered"
    assert [m.status for m in channel.default.client.messages.list(to=TO)] == ["delivered"]
    db.session.rollback()
    assert pump(utcnow() + timedelta(seconds=1)) == 0  # no URL: nothing posted, events done
    assert {e.state for e in db.session.query(SimulatorEvent)} == {"done"}


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(app, channel, receiver):
    configure(callback_delays="0.5,100,200")
    receiver.reply = 500
    result = channel.default.send(to=TO, from_=SENDER, body="Hola", status_callback=receiver.url + "/s?m=1")
    t = created_at(result.sid) + timedelta(seconds=0.6)  # "sent" only
    assert pump(t) == 1
    event = db.session.query(SimulatorEvent).filter_by(status="sent").one()
    assert (event.state, event.attempts, event.last_http_status) == ("pending", 1, 500)
    assert event.due_at == t + timedelta(seconds=1)
    assert pump(t + timedelta(seconds=0.5)) == 0  # not yet
    assert pump(t + timedelta(seconds=1)) == 1
    assert pump(t + timedelta(seconds=1 + 1.9)) == 0
    assert pump(t + timedelta(seconds=1 + 2)) == 1
    assert pump(t + timedelta(seconds=1 + 2 + 4)) == 1
    event = db.session.query(SimulatorEvent).filter_by(status="sent").one()
    assert (event.state, event.attempts, event.last_http_status) == ("given_up", 4, 500)
    assert pump(t + timedelta(seconds=50)) == 0
    assert receiver.statuses() == ["sent"] * 4
    receiver.reply = 200  # the receiver is back for "delivered"
    assert pump(t + timedelta(seconds=100)) == 1
    assert receiver.statuses()[-1] == "delivered"
    assert db.session.query(SimulatorEvent).filter_by(status="delivered").one().state == "done"
    assert channel.default.fetch(result.sid).status == "delivered"  # only a report was lost


def test_a_receiver_that_is_down_is_recorded_without_an_http_status(app, channel):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = channel.default.send(to=TO, from_=SENDER, body="Hola",
                                  status_callback=f"http://127.0.0.1:{port}/twilio/status?m=1")
    assert pump(created_at(result.sid) + timedelta(seconds=0.6)) == 1
    event = db.session.query(SimulatorEvent).filter_by(status="sent").one()
    assert (event.state, event.attempts, event.last_http_status) == ("pending", 1, None)


def test_duplicated_and_reordered_callbacks_leave_the_message_right(app, channel, receiver):
    configure(rate_duplicate=1, rate_reorder=1)
    result = channel.default.send(to=TO, from_=SENDER, body="Hola", status_callback=receiver.url + "/s?m=2")
    t0 = created_at(result.sid)
    pump(t0 + timedelta(seconds=1.65))  # delivered at 1.5 s and again at 1.6 s; "sent" moved to 1.7 s
    assert receiver.statuses() == ["delivered", "delivered"]
    assert channel.default.fetch(result.sid).status == "delivered"
    pump(t0 + timedelta(seconds=10))
    assert receiver.statuses() == ["delivered", "delivered", "sent", "sent"]  # late "sent", twice
    assert channel.default.fetch(result.sid).status == "delivered"  # never backwards
    for post in receiver.posts:
        assert_signed(app, receiver, post)


def test_the_pump_posts_callbacks_until_stopped(app, channel, receiver):
    configure(callback_delays="0,0.05,0.1")
    pump_thread = services.start_callback_pump(app, interval=0.02)
    try:
        for i in range(3):
            channel.default.send(to=TO, from_=SENDER, body=f"m{i}", status_callback=receiver.url + f"/s?m={i}")
        deadline = time.monotonic() + 10
        while len(receiver.posts) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        pump_thread.stop()
    assert not pump_thread.is_alive()
    by_message = {}
    for post in receiver.posts:
        by_message.setdefault(post["path"], []).append(dict(post["form"])["MessageStatus"])
    assert by_message == {f"/s?m={i}": ["sent", "delivered"] for i in range(3)}


def test_two_pumps_never_post_the_same_callback(app, channel, receiver):
    configure(callback_delays="0,100,200")
    for i in range(12):
        channel.default.send(to=TO, from_=SENDER, body=f"m{i}", status_callback=receiver.url + f"/s?m={i}")
    db.session.rollback()
    at = utcnow() + timedelta(seconds=1)
    slow = threading.Barrier(2, timeout=10)
    counts, errors = [], []

    def post(url, data, headers, timeout):
        time.sleep(0.01)
        return services.http_post(url, data, headers, timeout)

    def run():
        with app.app_context():
            try:
                slow.wait()
                counts.append(services.deliver_due_callbacks(now=at, post=post))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and sum(counts) == 12
    assert sorted(p["path"] for p in receiver.posts) == sorted(f"/s?m={i}" for i in range(12))


def test_create_app_never_starts_the_pump(app):
    assert not any(t.name == "c4d-simulator-callbacks" for t in threading.enumerate())


# --- faults at create time, through the real channel ------------------------------------------------

def _stored() -> int:
    db.session.rollback()
    return db.session.query(SimulatorMessage).count()


@pytest.mark.parametrize(("setting", "kind", "code", "status"), [
    ("rate_429", RETRY, 20429, 429),
    ("rate_21610", OPTED_OUT, 21610, 400),
    ("rate_500", UNCERTAIN, 20500, 500),
])
def test_refusals_reach_the_channel_as_twilio_errors_and_store_nothing(app, channel, setting, kind, code, status):
    configure(**{setting: 1})
    with pytest.raises(SendError) as info:
        channel.default.send(to=TO, from_=SENDER, body="Hola")
    assert (info.value.kind, info.value.code, info.value.http_status) == (kind, code, status)
    assert _stored() == 0


def test_a_timeout_is_uncertain_and_stores_nothing(app, channel):
    configure(rate_timeout=1, timeout_seconds=1)
    with pytest.raises(SendError) as info:
        channel(timeout=0.3).send(to=TO, from_=SENDER, body="Hola")
    assert info.value.kind == UNCERTAIN and info.value.http_status is None
    assert _stored() == 0


@pytest.mark.parametrize("setting", ["rate_accepted_then_500", "rate_accepted_then_timeout"])
def test_accepted_but_answer_lost_is_found_by_listing_messages_to_the_number(app, channel, receiver, setting):
    # "sent" is planned 5 s after creation (the default is 0.5 s, which a loaded CI machine overran between
    # the send and the lookup, so the message was already "sent" when the test expected it still queued).
    configure(**{setting: 1}, timeout_seconds=1, callback_delays="5,6,8")
    before = utcnow() - timedelta(seconds=1)
    with pytest.raises(SendError) as info:
        channel(timeout=0.3).send(to=TO, from_=SENDER, body="Mensaje de reconciliación",
                                  status_callback=receiver.url + "/s?m=77")
    assert info.value.kind == UNCERTAIN
    configure()  # the lookup itself goes through
    # Still queued at "Twilio": no date_sent yet, so a DateSent filter misses it; To and From find it.
    assert channel.default.client.messages.list(to=TO, date_sent_after=before) == []
    found = channel.default.client.messages.list(to=TO, from_=SENDER)
    assert [(m.body, m.status, m.date_sent) for m in found] == [("Mensaje de reconciliación", "queued", None)]
    assert found[0].date_created >= before.replace(microsecond=0)
    assert channel.default.client.messages.list(to=OTHER) == []
    # It was really sent: its callbacks come like any other's.
    pump(created_at(found[0].sid) + timedelta(seconds=10))
    assert receiver.statuses() == ["sent", "delivered"]
    assert receiver.forms()[0]["MessageSid"] == found[0].sid


def test_outcomes_follow_the_seeded_random_and_the_rates(app):
    configure(rate_429=0.3, rate_500=0.1, rate_accepted_then_500=0.1)
    first = [services.draw_outcome(sim_settings.current()) for _ in range(200)]
    sim_settings.reseed(1234)
    assert [services.draw_outcome(sim_settings.current()) for _ in range(200)] == first
    assert 40 <= first.count("429") <= 80 and first.count("500") > 5 and first.count("accepted_then_500") > 5
    assert first.count(None) > 60 and "timeout" not in first
    configure()
    assert {services.draw_outcome(sim_settings.current()) for _ in range(50)} == {None}


def test_latency_is_drawn_in_its_range():
    fixed = sim_settings.build({"latency_ms": "120"})
    assert services.latency_seconds(fixed) == 0.12
    assert services.latency_seconds(sim_settings.SimSettings()) == 0


# --- settings: environment, page, database ----------------------------------------------------------

def test_defaults_come_from_the_environment(tmp_path, monkeypatch):
    from whp_c4d.config import load_config

    monkeypatch.setenv("C4D_SIM_LATENCY_MS", "50-200")
    monkeypatch.setenv("C4D_SIM_RATE_429", "0.3")
    monkeypatch.setenv("C4D_SIM_CALLBACK_DELAYS", "1,2,3")
    monkeypatch.setenv("C4D_SIM_SEED", "42")
    cfg = load_config(tmp_path)
    defaults = sim_settings.defaults(cfg)
    assert defaults.latency_ms == (50, 200) and defaults.rate_429 == 0.3 and defaults.rate_500 == 0
    assert defaults.callback_delays == (1.0, 2.0, 3.0) and cfg["C4D_SIM_SEED"] == 42
    assert defaults.timeout_seconds == cfg["TWILIO_TIMEOUT_SECONDS"] + 5
    assert sim_settings.defaults(load_config(tmp_path, {"C4D_SIM_LATENCY_MS": "0"})).latency_ms == (0, 0)


@pytest.mark.parametrize(("name", "value"), [
    ("C4D_SIM_RATE_500", "2"), ("C4D_SIM_RATE_429", "lots"), ("C4D_SIM_LATENCY_MS", "200-50"),
    ("C4D_SIM_CALLBACK_DELAYS", "3,2,1"), ("C4D_SIM_TIMEOUT_SECONDS", "0"),
])
def test_a_malformed_variable_stops_the_start_with_its_name(tmp_path, name, value):
    from whp_c4d import create_app

    with pytest.raises(sim_settings.SettingsError) as info:
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "C4D_SIMULATOR": True, name: value,
                    "SECRET_KEY": "test-secret-key-not-for-production",
                    "C4D_DATA_KEY": "test-data-key-0123456789abcdef"})
    assert name in str(info.value)


def test_settings_page_changes_what_every_process_reads(app, client, login, make_user):
    admin = make_user("admin")
    login(client, admin)
    page = client.get("/simulator/settings", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and b"C4D_SIM_RATE_429" in page.data
    r = client.post("/simulator/settings", data={"latency_ms": "10-20", "rate_429": "0,25", "rate_500": "0.05",
                                                 "callback_delays": "1,2,3"})
    assert r.status_code == 302
    db.session.rollback()
    current = sim_settings.current()
    assert (current.latency_ms, current.rate_429, current.rate_500, current.callback_delays) == (
        (10, 20), 0.25, 0.05, (1.0, 2.0, 3.0))
    # Only what differs from the environment is stored.
    from whp_c4d.simulator.models import SimulatorSettings

    assert set(db.session.get(SimulatorSettings, 1).values) == {"latency_ms", "rate_429", "rate_500",
                                                                "callback_delays"}
    assert client.post("/simulator/settings/reset").status_code == 302
    db.session.rollback()
    assert sim_settings.current() == sim_settings.defaults(app.config)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("rate_500", "1.5", "share from 0 to 1"),
    ("latency_ms", "fast", "milliseconds"),
    ("callback_delays", "4,1", "three increasing numbers"),
    ("rate_429", "0.8", "add up to more than 1"),
])
def test_settings_page_explains_a_wrong_value_and_saves_nothing(app, client, login, make_user, field, value, message):
    login(client, make_user("admin"))
    data = {field: value}
    if field == "rate_429":
        data["rate_500"] = "0.5"
    r = client.post("/simulator/settings", data=data, headers={"Accept-Language": "en"})
    assert r.status_code == 200 and message in r.get_data(as_text=True)
    db.session.rollback()
    assert sim_settings.current() == sim_settings.defaults(app.config)
    r = client.post("/simulator/settings", data=data, headers={"Accept-Language": "es"})
    assert r.status_code == 200 and message not in r.get_data(as_text=True)  # translated


def test_only_admins_manage_the_settings(app, client, login, make_user):
    login(client, make_user("officer"))
    assert client.get("/simulator/settings").status_code == 403
    assert client.post("/simulator/settings", data={"rate_500": "1"}).status_code == 403
    db.session.rollback()
    assert sim_settings.current().rate_500 == 0


# --- the phone screen's replies reach the app as signed webhooks -----------------------------------

@pytest.fixture
def officer_client(app, client, login, make_user):
    login(client, make_user("officer"))
    return client


def _handset_of(sid: str) -> str:
    db.session.rollback()
    return db.session.query(SimulatorMessage).filter_by(sid=sid).one().to_index


def test_a_reply_posts_a_signed_inbound_webhook(app, channel, receiver, officer_client, monkeypatch):
    monkeypatch.setitem(app.config, "C4D_PUBLIC_URL", receiver.url)
    receiver.reply = 200
    sent = channel.default.send(to=TO, from_=SENDER, body="¿Necesita ayuda? Responda SI")
    handset = _handset_of(sent.sid)
    r = officer_client.post(f"/simulator/phones/{handset}/reply", data={"to": SENDER, "body": "SI, gracias"},
                            headers={"Accept-Language": "en"}, follow_redirects=True)
    assert r.status_code == 200 and "Delivered to the app (HTTP 200)" in r.get_data(as_text=True)
    [post] = receiver.posts
    assert post["path"] == "/twilio/messages"
    assert_signed(app, receiver, post)
    form = dict(post["form"])
    assert form["MessageSid"].startswith("SM") and len(form["MessageSid"]) == 34
    assert form["MessageSid"] == form["SmsSid"] == form["SmsMessageSid"]
    assert (form["From"], form["To"], form["Body"]) == (TO, SENDER, "SI, gracias")
    assert (form["NumMedia"], form["NumSegments"], form["SmsStatus"], form["ApiVersion"]) == (
        "0", "1", "received", "2010-04-01")
    assert form["AccountSid"] == app.config["C4D_SIMULATOR_ACCOUNT_SID"] and "WaId" not in form
    assert "ProfileName" not in form
    db.session.rollback()
    inbound = db.session.query(SimulatorMessage).filter_by(direction="inbound").one()
    assert (inbound.sid, inbound.webhook_status, inbound.from_index) == (form["MessageSid"], 200, handset)
    assert "SI, gracias" not in all_database_text() and TO not in all_database_text()
    page = officer_client.get(f"/simulator/phones/{handset}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "SI, gracias" in page and "the app got it (HTTP 200)" in page


def test_a_whatsapp_reply_carries_the_wa_id(app, channel, receiver, officer_client, monkeypatch):
    monkeypatch.setitem(app.config, "C4D_PUBLIC_URL", receiver.url)
    sent = channel.default.send(to=WA_TO, from_=WA_FROM, body="Hola")
    officer_client.post(f"/simulator/phones/{_handset_of(sent.sid)}/reply", data={"to": WA_FROM, "body": "Hola 😜"})
    form = dict(receiver.posts[0]["form"])
    assert (form["From"], form["To"], form["WaId"]) == (WA_TO, WA_FROM, TO.lstrip("+"))
    assert_signed(app, receiver, receiver.posts[0])


def test_the_page_says_what_the_app_answered_without_failing(app, channel, receiver, officer_client, monkeypatch):
    monkeypatch.setitem(app.config, "C4D_PUBLIC_URL", receiver.url)
    receiver.reply = 404
    handset = _handset_of(channel.default.send(to=TO, from_=SENDER, body="Hola").sid)
    r = officer_client.post(f"/simulator/phones/{handset}/reply", data={"to": SENDER, "body": "INFO"},
                            headers={"Accept-Language": "en"}, follow_redirects=True)
    assert r.status_code == 200 and "the app answered HTTP 404" in r.get_data(as_text=True)
    receiver.shutdown()
    receiver.server_close()
    r = officer_client.post(f"/simulator/phones/{handset}/reply", data={"to": SENDER, "body": "INFO"},
                            headers={"Accept-Language": "en"}, follow_redirects=True)
    assert r.status_code == 200 and "could not be reached" in r.get_data(as_text=True)
    db.session.rollback()
    assert [m.webhook_status for m in db.session.query(SimulatorMessage).filter_by(direction="inbound")
            .order_by(SimulatorMessage.id)] == [404, None]


def test_a_new_phone_writes_in_and_gets_its_own_handset(app, receiver, officer_client, monkeypatch):
    monkeypatch.setitem(app.config, "C4D_PUBLIC_URL", receiver.url)
    receiver.reply = 200
    r = officer_client.post("/simulator/phones/new",
                            data={"number": OTHER, "to": services.SIMULATOR_FROM, "body": "INFO"})
    assert r.status_code == 302
    handset = r.headers["Location"].rsplit("/", 1)[1]
    assert OTHER[1:] not in r.headers["Location"] and len(handset) == 64
    form = dict(receiver.posts[0]["form"])
    assert (form["From"], form["To"], form["Body"]) == (OTHER, services.SIMULATOR_FROM, "INFO")
    page = officer_client.get(f"/simulator/phones/{handset}").get_data(as_text=True)
    assert "INFO" in page and OTHER not in page
    r = officer_client.post("/simulator/phones/new", data={"number": "12", "to": services.SIMULATOR_FROM,
                                                           "body": "x"}, follow_redirects=True)
    assert r.status_code == 200 and len(receiver.posts) == 1
    db.session.rollback()
    assert db.session.query(SimulatorMessage).count() == 1


def test_erasure_removes_replies_and_planned_events(app, channel, receiver, officer_client, make_contact,
                                                    monkeypatch):
    from whp_c4d.audience.erasure import erase_contact

    monkeypatch.setitem(app.config, "C4D_PUBLIC_URL", receiver.url)
    contact = make_contact(phone=TO)
    sent = channel.default.send(to=TO, from_=SENDER, body="Hola", status_callback=receiver.url + "/s?m=1")
    officer_client.post(f"/simulator/phones/{_handset_of(sent.sid)}/reply", data={"to": SENDER, "body": "Hola"})
    db.session.rollback()
    assert db.session.query(SimulatorEvent).count() == 2
    erase_contact(contact, None)
    db.session.commit()
    assert db.session.query(SimulatorMessage).count() == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SimulatorEvent)) == 0


# --- what Twilio does that the engine relies on (issue 12) ---------------------------------------------------

def test_date_sent_is_when_the_message_was_sent_not_when_its_callback_was_claimed(app, channel, receiver):
    """Case 11: the pump claims a due event by moving its due time past a lease; date_sent used to be
    taken from that moved time, 60 s in the future."""
    from email.utils import parsedate_to_datetime

    configure(callback_delays="1,2,3")
    result = channel.default.send(to=TO, from_=SENDER, body="Hola", status_callback=receiver.url + "/s?m=1")
    created = created_at(result.sid)
    pump(created + timedelta(seconds=2.5))
    db.session.rollback()
    message = db.session.query(SimulatorMessage).filter_by(sid=result.sid).one()
    assert message.sent_at == created + timedelta(seconds=1)
    fetched = channel.default.client.messages(result.sid).fetch()
    assert fetched.date_sent == parsedate_to_datetime(_rfc2822_of(created + timedelta(seconds=1)))


def _rfc2822_of(when):
    from email.utils import format_datetime

    return format_datetime(when.replace(microsecond=0), usegmt=True)


def test_a_queued_message_has_no_date_sent_and_date_sent_filters_leave_it_out(app, channel):
    """Case 8: Twilio leaves date_sent empty while a message waits in its queue, so a list filtered on
    DateSent does not show it; the simulator used created_at instead and hid the problem."""
    configure(callback_delays="600,700,800")
    result = channel.default.send(to=TO, from_=SENDER, body="Hola")
    assert channel.default.fetch(result.sid).status == "queued"
    listed = channel.default.client.messages.list(to=TO)
    assert [(m.sid, m.date_sent) for m in listed] == [(result.sid, None)]
    since = created_at(result.sid) - timedelta(minutes=5)
    assert channel.default.client.messages.list(to=TO, date_sent_after=since) == []


def test_a_message_with_both_from_and_a_messaging_service_is_accepted_from_that_number(app, channel, receiver):
    """Twilio sends from the given number, as part of the Messaging Service: status accepted, both kept."""
    result = channel.default.send(to=TO, from_=SENDER, messaging_service_sid="MG" + "b" * 32, body="Hola",
                                  status_callback=receiver.url + "/s?m=1")
    fetched = channel.default.client.messages(result.sid).fetch()
    assert (result.status, fetched.from_, fetched.messaging_service_sid) == ("accepted", SENDER, "MG" + "b" * 32)
    pump(created_at(result.sid) + timedelta(seconds=10))
    assert receiver.statuses() == ["queued", "sent", "delivered"]
    assert receiver.forms("sent")[0]["From"] == SENDER
