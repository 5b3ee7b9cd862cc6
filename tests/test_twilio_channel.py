"""The Twilio channel sends through the real twilio SDK: to the simulator served by the app on a local
port, and to a small fake HTTP server for Twilio's failures, which it classifies by what to do next."""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from whp_c4d.demo import fictional_numbers
from whp_c4d.extensions import db
from whp_c4d.messaging.channels import (
    FATAL,
    INVALID_NUMBER,
    OPTED_OUT,
    RETRY,
    UNCERTAIN,
    WINDOW,
    SendError,
    channel_from_config,
    error_kind,
)
from whp_c4d.messaging.channels.twilio import DEFAULT_API_BASE, BaseUrlHttpClient, TwilioChannel
from whp_c4d.simulator.models import SimulatorMessage

TO, OTHER = fictional_numbers("GT", 2)
SENDER = fictional_numbers("HN", 1)[0]
ACCOUNT = "AC" + "1" * 32


@pytest.fixture
def simulator_url(live_app):
    """The mounted simulator, served over HTTP by the app itself (conftest's live_app)."""
    return live_app.config["C4D_PUBLIC_URL"] + "/simulator"


@pytest.fixture
def channels():
    """Builds channels and closes their HTTP sessions afterwards (an open socket is a test failure)."""
    made: list[TwilioChannel] = []

    def make(account_sid: str, token: str, api_base: str, timeout: float = 5.0) -> TwilioChannel:
        channel = TwilioChannel(account_sid, token, api_base=api_base, timeout=timeout)
        made.append(channel)
        return channel

    yield make
    for channel in made:
        channel.close()


@pytest.fixture
def simulator(app, simulator_url, channels) -> TwilioChannel:
    cfg = app.config
    return channels(cfg["C4D_SIMULATOR_ACCOUNT_SID"], cfg["C4D_SIMULATOR_AUTH_TOKEN"], simulator_url)


class _FakeTwilio(BaseHTTPRequestHandler):
    """Answers every request with the server's scripted reply and records what it was asked."""

    def _answer(self):
        srv = self.server
        length = int(self.headers.get("Content-Length") or 0)
        srv.requests.append({"method": self.command, "path": self.path, "host": self.headers.get("Host"),
                             "body": self.rfile.read(length).decode() if length else ""})
        status, body, delay = srv.reply
        if delay:
            srv.release.wait(delay)
        payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args):  # quiet: the test output is for failures
        pass


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that timed out has hung up: expected
        pass


@pytest.fixture
def fake():
    server = _FakeServer(("127.0.0.1", 0), _FakeTwilio)
    server.requests, server.release = [], threading.Event()
    server.reply = (201, {}, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def _twilio_error(code: int, status: int, message: str = "Error") -> dict:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}


# --- through the SDK to the simulator ----------------------------------------------------------

def test_send_through_the_sdk_reaches_the_simulator_and_is_stored(app, simulator):
    result = simulator.send(to=TO, from_=SENDER, body="Hola, información útil para su viaje.",
                            status_callback="http://127.0.0.1:5000/twilio/status?m=7", validity_period=600)
    assert result.sid.startswith("SM") and len(result.sid) == 34
    assert result.status == "queued" and result.num_segments == 1 and result.error_code is None
    db.session.rollback()  # see what the server thread committed
    row = db.session.query(SimulatorMessage).filter_by(sid=result.sid).one()
    assert (row.to_address, row.from_address, row.channel) == (TO, SENDER, "sms")
    assert row.status_callback.endswith("m=7") and row.validity_period == 600


def test_fetch_returns_what_was_sent(simulator):
    sent = simulator.send(to=TO, from_=SENDER, body="x" * 161)
    fetched = simulator.fetch(sent.sid)
    assert fetched.sid == sent.sid and fetched.status == "queued" and fetched.num_segments == 2


def test_whatsapp_template_through_a_messaging_service_is_accepted(simulator):
    result = simulator.send(to=f"whatsapp:{TO}", messaging_service_sid="MG" + "a" * 32,
                            content_sid="HX" + "b" * 32, content_variables={"1": "Ana", "2": "lunes"})
    assert result.status == "accepted" and result.num_segments == 1


def test_listing_follows_twilio_paging_through_the_custom_client(simulator):
    for i in range(3):
        simulator.send(to=TO, from_=SENDER, body=f"mensaje {i}")
    simulator.send(to=OTHER, from_=SENDER, body="otro")
    listed = simulator.client.messages.list(to=TO, page_size=2)
    assert [m.body for m in listed] == ["mensaje 2", "mensaje 1", "mensaje 0"]  # newest first, two pages


def test_wrong_auth_token_is_refused_like_twilio(app, simulator_url, channels, monkeypatch):
    # The simulator takes any account SID; the token is checked when TWILIO_AUTH_TOKEN is configured.
    monkeypatch.setitem(app.config, "TWILIO_AUTH_TOKEN", "the-real-auth-token")
    channel = channels(ACCOUNT, "not-the-token", simulator_url)
    with pytest.raises(SendError) as info:
        channel.send(to=TO, from_=SENDER, body="hola")
    assert (info.value.kind, info.value.code, info.value.http_status) == (FATAL, 20003, 401)
    right = channels(ACCOUNT, "the-real-auth-token", simulator_url)
    assert right.send(to=TO, from_=SENDER, body="hola").status == "queued"


def test_invalid_number_from_the_simulator_is_classified(simulator):
    with pytest.raises(SendError) as info:
        simulator.send(to="+1555", from_=SENDER, body="hola")
    assert (info.value.kind, info.value.code, info.value.http_status) == (INVALID_NUMBER, 21211, 400)


def test_fetching_an_unknown_message_is_fatal_not_a_retry(simulator):
    with pytest.raises(SendError) as info:
        simulator.fetch("SM" + "f" * 32)
    assert (info.value.kind, info.value.code, info.value.http_status) == (FATAL, 20404, 404)


# --- the HTTP client and the configuration -----------------------------------------------------

def test_custom_http_client_sends_every_request_to_twilio_api_base(fake, channels):
    fake.reply = (201, {"sid": "SM" + "0" * 32, "status": "queued", "num_segments": "1", "error_code": None}, 0)
    channel = channels(ACCOUNT, "token", fake.url + "/prefix")
    result = channel.send(to=TO, from_=SENDER, body="hola")
    assert result.sid == "SM" + "0" * 32
    request = fake.requests[-1]
    assert request["method"] == "POST" and request["host"] == f"127.0.0.1:{fake.server_port}"
    assert request["path"] == f"/prefix/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert "Body=hola" in request["body"]
    channel.fetch("SM" + "0" * 32)
    assert fake.requests[-1]["path"] == f"/prefix/2010-04-01/Accounts/{ACCOUNT}/Messages/SM{'0' * 32}.json"


def test_query_string_is_kept_and_the_default_base_is_left_alone():
    custom = BaseUrlHttpClient("http://localhost:8080/sim")
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=2&Page=1"
    assert custom.rewrite(url) == "http://localhost:8080/sim/2010-04-01/Accounts/AC1/Messages.json?PageSize=2&Page=1"
    assert BaseUrlHttpClient(DEFAULT_API_BASE).rewrite("https://content.twilio.com/v1/Content") == \
        "https://content.twilio.com/v1/Content"
    with pytest.raises(ValueError):
        BaseUrlHttpClient("ftp://example.org")


def test_without_twilio_credentials_the_channel_uses_the_simulator(app, monkeypatch):
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "9" * 32)  # the SDK must not read the environment
    cfg = {**app.config, "TWILIO_ACCOUNT_SID": None, "TWILIO_AUTH_TOKEN": None,
           "TWILIO_API_BASE": DEFAULT_API_BASE, "C4D_PUBLIC_URL": "http://c4d.example.org"}
    channel = channel_from_config(cfg)
    try:
        assert channel.api_base == "http://c4d.example.org/simulator"
        assert channel.account_sid == app.config["C4D_SIMULATOR_ACCOUNT_SID"]
        assert channel.client.username == app.config["C4D_SIMULATOR_ACCOUNT_SID"]
        assert channel.client.password == app.config["C4D_SIMULATOR_AUTH_TOKEN"]
    finally:
        channel.close()
    real = channel_from_config({**cfg, "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "secret"})
    try:
        assert real.api_base == DEFAULT_API_BASE and real.client.username == ACCOUNT
    finally:
        real.close()
    with pytest.raises(RuntimeError):
        channel_from_config({**cfg, "TWILIO_ACCOUNT_SID": ACCOUNT})


# --- failures, classified ----------------------------------------------------------------------

@pytest.mark.parametrize(("status", "body", "kind", "code"), [
    (429, _twilio_error(20429, 429, "Too Many Requests"), RETRY, 20429),
    (400, _twilio_error(21610, 400, "Attempt to send to unsubscribed recipient"), OPTED_OUT, 21610),
    (400, _twilio_error(21211, 400, f"The 'To' number {TO} is not a valid phone number."), INVALID_NUMBER, 21211),
    (400, _twilio_error(21614, 400, f"'To' number {TO} is not a valid mobile number"), INVALID_NUMBER, 21614),
    (400, _twilio_error(63016, 400, "Failed to send freeform message outside the window"), WINDOW, 63016),
    (400, _twilio_error(21611, 400, "This 'From' number has exceeded the maximum queue size"), RETRY, 21611),
    (400, _twilio_error(21408, 400, "Permission to send an SMS has not been enabled for the region"), FATAL, 21408),
    (500, "<html>Internal Server Error</html>", UNCERTAIN, None),
    (503, _twilio_error(20503, 503, "Service Unavailable"), UNCERTAIN, 20503),
])
def test_twilio_errors_map_to_what_the_dispatcher_must_do(fake, channels, caplog, status, body, kind, code):
    fake.reply = (status, body, 0)
    channel = channels(ACCOUNT, "token", fake.url)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SendError) as info:
        channel.send(to=TO, from_=SENDER, body="Texto privado del mensaje")
    error = info.value
    assert (error.kind, error.code, error.http_status) == (kind, code, status)
    # Twilio's own message quotes the number: neither it nor the text may reach an exception or a log.
    for text in (str(error), repr(error), caplog.text):
        assert TO not in text and TO[1:] not in text and "Texto privado" not in text


def test_a_timeout_is_uncertain(fake, channels):
    fake.reply = (201, {"sid": "SM" + "0" * 32, "status": "queued"}, 2.0)
    channel = channels(ACCOUNT, "token", fake.url, timeout=0.2)
    with pytest.raises(SendError) as info:
        channel.send(to=TO, from_=SENDER, body="hola")
    assert (info.value.kind, info.value.code, info.value.http_status) == (UNCERTAIN, None, None)


def test_a_refused_connection_is_uncertain(channels):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    channel = channels(ACCOUNT, "token", f"http://127.0.0.1:{port}", timeout=1.0)
    with pytest.raises(SendError) as info:
        channel.send(to=TO, from_=SENDER, body="hola")
    assert info.value.kind == UNCERTAIN


def test_error_kinds_by_code_and_status():
    assert error_kind(None, 429) == RETRY
    assert error_kind(63018, 400) == RETRY and error_kind(30001, 400) == RETRY
    assert error_kind(63003, 400) == INVALID_NUMBER and error_kind(21635, 400) == INVALID_NUMBER
    assert error_kind(None, 502) == UNCERTAIN and error_kind(None, None) == UNCERTAIN
    assert error_kind(20003, 401) == FATAL
    with pytest.raises(ValueError):
        SendError("maybe")


def test_a_send_needs_a_sender(simulator):
    with pytest.raises(ValueError):
        simulator.send(to=TO, body="hola")
