"""Fixtures: one app per test session on the real database (SQLite by default, PostgreSQL when
C4D_TEST_DATABASE_URL is set), schema built by the migrations, every table emptied after each test."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from flask import g, has_app_context
from flask.testing import FlaskClient
from helpers import TEST_PASSWORD

from whp_c4d import create_app
from whp_c4d.extensions import db

DEFAULT_LANGUAGES = ("es", "en", "fr", "ht", "nl")
KEEP_TABLES = {"alembic_version"}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("C4D_TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'c4d-test.db'}"


class _FreshGlobalsClient(FlaskClient):
    """Tests keep an app context pushed so they can use the database; Flask then reuses it for each
    request, and with it ``g``. Clearing ``g`` gives every request what it has in production."""

    def open(self, *args, **kwargs):
        if has_app_context():
            for key in list(g):
                g.pop(key)
        # As a real server does, read the response to the end and close it, so that work registered
        # with ``call_on_close`` (the inbound webhook understands a message after answering) has run.
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


@pytest.fixture(scope="session")
def _app(database_url, tmp_path_factory):
    os.environ["C4D_INSTANCE_PATH"] = str(tmp_path_factory.mktemp("instance"))
    app = create_app({
        "DATABASE_URL": database_url,
        "TESTING": True,
        "WTF_CSRF_ENABLED": False,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "C4D_DATA_KEY": "test-data-key-0123456789abcdef",
        # Cheap hashing in tests; production uses RFC 9106's parameters (config.py).
        "C4D_ARGON2": {"time_cost": 1, "memory_cost": 8, "parallelism": 1},
    })
    app.test_client_class = _FreshGlobalsClient
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(directory=app.extensions["migrate"].directory)
        _empty_tables()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _empty_tables() -> None:
    db.session.rollback()
    tables = [t for t in db.metadata.sorted_tables if t.name not in KEEP_TABLES]
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        db.session.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for t in reversed(tables):
            db.session.execute(t.delete())
    db.session.execute(sa.text("INSERT INTO content_language (code, enabled) VALUES "
                               + ", ".join(f"('{c}', true)" for c in DEFAULT_LANGUAGES)))
    _reseed_campaign_defaults()
    db.session.commit()


def _reseed_campaign_defaults() -> None:
    """Put back the rows migrations 0002, 0007 and 0008 ship (objectives, content variables, keywords, feedback
    topics and suggestion rules), from the migrations themselves."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "migrations" / "versions" / "0002_campaigns.py"
    spec = importlib.util.spec_from_file_location("_migration_0002", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from whp_c4d.campaigns.models import CampaignObjective, ContentVariable

    for i, (code, labels) in enumerate(module.OBJECTIVES):
        db.session.add(CampaignObjective(code=code, labels=labels, position=i * 10, active=True))
    for name, description in module.VARIABLES:
        db.session.add(ContentVariable(name=name, description=description))
    path = path.with_name("0007_inbound.py")
    spec = importlib.util.spec_from_file_location("_migration_0007", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from whp_c4d.inbound.models import Keyword

    db.session.add_all(Keyword(**row) for row in module.keyword_rows())
    path = path.with_name("0008_feedback.py")
    spec = importlib.util.spec_from_file_location("_migration_0008", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from whp_c4d.feedback.models import CodingRule, FeedbackTopic

    topics = [FeedbackTopic(**row) for row in module.topic_rows()]
    db.session.add_all(topics)
    db.session.flush()
    db.session.add_all(CodingRule(**row) for row in module.rule_rows({t.code: t.id for t in topics}))


@pytest.fixture
def app(_app):
    config = dict(_app.config)  # a test may change settings (timeouts, the public URL): put them back
    ctx = _app.app_context()
    ctx.push()
    try:
        yield _app
    finally:
        db.session.remove()
        _empty_tables()
        db.session.remove()
        _app.extensions.pop("c4d_disclosure_cubes", None)  # a new database: the reports' cubes go with the old
        ctx.pop()
        _app.config.clear()
        _app.config.update(config)


@pytest.fixture
def empty_database(app):
    """The function that empties every table (and puts back the shipped rows), for tests that need a
    fresh database more than once, such as a state machine's examples."""
    return _empty_tables


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# --- factories -------------------------------------------------------------------------------

@pytest.fixture
def make_partner(app):
    from whp_c4d.auth.models import PartnerOrganisation

    def make(name="Red de Apoyo Ejemplo", country="GT"):
        org = PartnerOrganisation(name=name, country=country)
        db.session.add(org)
        db.session.commit()
        return org

    return make


@pytest.fixture
def make_user(app, make_partner):
    from whp_c4d.auth import services

    counter = iter(range(1, 10_000))

    def make(role="officer", *, email=None, partner=None, countries=None, password=TEST_PASSWORD):
        if role == "partner" and partner is None:
            partner = make_partner(name=f"Organización {next(counter)}")
        user = services.create_user(email or f"{role}{next(counter)}@example.org", f"Test {role}", role,
                                    password=password, partner_id=partner.id if partner else None,
                                    countries=countries)
        db.session.commit()
        return user

    return make


@pytest.fixture
def make_contact(app):
    from whp_c4d.audience import services

    numbers = iter(range(100, 10_000))

    def make(*, phone=None, country="GT", language="es", channels=("sms",), tags=(), partner=None, actor=None):
        contact = services.create_contact(
            phone=phone or f"+502555{next(numbers):05d}", country=country, language=language,
            channels=list(channels), tags=list(tags), actor=actor,
            consent=services.ConsentInput(source="form"), partner_id=partner.id if partner else None)
        db.session.commit()
        return contact

    return make


@pytest.fixture
def login(app):
    """Log a test client in as a user without going through the form (the form has its own tests)."""
    from whp_c4d.auth import services

    def do(client, user):
        token = services.open_session(user)
        db.session.commit()
        with client.session_transaction() as sess:
            sess.clear()
            sess["_user_id"] = token
            sess["_fresh"] = True
        return token

    return do


@pytest.fixture
def api_token(app):
    from whp_c4d.auth import services

    def make(user):
        _row, secret = services.create_api_token(user, "test")
        db.session.commit()
        return {"Authorization": f"Bearer {secret}"}

    return make


@pytest.fixture
def live_app(app):
    """The app served on a free local port (threads), with C4D_PUBLIC_URL pointing at it: the real SDK
    reaches the mounted simulator over HTTP and the simulator's callbacks reach the app."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    old = app.config["C4D_PUBLIC_URL"]
    app.config["C4D_PUBLIC_URL"] = f"http://127.0.0.1:{server.server_port}"
    try:
        yield app
    finally:
        app.config["C4D_PUBLIC_URL"] = old
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def dispatchers(app):
    """``dispatchers(**options)`` makes a started Dispatcher; all are stopped after the test."""
    from whp_c4d.messaging.dispatcher import Dispatcher

    made = []

    def make(**kw):
        d = Dispatcher(app, **kw)
        d.start()
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


@pytest.fixture
def audience(app, make_user, make_contact):
    """An officer and twelve Guatemalan SMS contacts in a segment named "Todos" (fictional numbers)."""
    from whp_c4d.audience.models import Segment
    from whp_c4d.demo import fictional_numbers

    db.session.add(Segment(name="Todos", filters={}))
    db.session.commit()
    contacts = [make_contact(phone=n, country="GT") for n in fictional_numbers("GT", 12, start=300)]
    return make_user("officer"), contacts


@pytest.fixture
def fake_twilio():
    """The in-memory fake Twilio (tests/fake_twilio.py) in its own process: ``.base`` for
    TWILIO_API_BASE, ``.stats()`` for what it received."""
    from fake_twilio import running

    with running() as fake:
        yield fake


# --- a scripted Twilio ------------------------------------------------------------------------------

class _Scripted(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        srv = self.server
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, body = srv.replies.pop(0) if srv.replies else (201, None)
        srv.created += 1
        if body is None:
            body = {"sid": "SM" + hashlib.md5(str(srv.created).encode()).hexdigest(), "status": "queued",
                    "num_segments": "1", "error_code": None, "body": "x"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        data = json.dumps({"messages": self.server.listing, "next_page_uri": None, "page": 0,
                           "page_size": 50, "uri": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted_twilio(app):
    """A Twilio fake in this process whose answers a test scripts: ``.replies`` (status, JSON) for the next
    creates (then 201s), ``.listing`` for every list, ``.created`` counts the creates."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.replies, server.created, server.listing = [], 0, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    old = app.config["TWILIO_API_BASE"]
    app.config["TWILIO_API_BASE"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    app.config["TWILIO_API_BASE"] = old
    server.shutdown()
    server.server_close()
