"""Logging in and out: argon2id, throttling counted in the database, server-side sessions."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from helpers import TEST_PASSWORD

from whp_c4d.auth import services
from whp_c4d.auth.models import AuditEvent, LoginAttempt, User, UserSession
from whp_c4d.extensions import db


def _login(client, email, password=TEST_PASSWORD):
    return client.post("/login", data={"email": email, "password": password})


def test_passwords_are_hashed_with_argon2id(app, make_user):
    user = make_user("officer")
    assert user.password_hash.startswith("$argon2id$")
    assert TEST_PASSWORD not in user.password_hash


def test_production_argon2_parameters_meet_rfc_9106(tmp_path):
    from whp_c4d.config import load_config

    params = load_config(tmp_path)["C4D_ARGON2"]
    assert params["memory_cost"] >= 65536 and params["time_cost"] >= 3


def test_login_opens_a_server_side_session_and_logout_ends_it(app, client, make_user):
    user = make_user("officer")
    r = _login(client, user.email)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    row = db.session.scalar(sa.select(UserSession).where(UserSession.user_id == user.id))
    assert row is not None and row.revoked_at is None
    with client.session_transaction() as sess:
        stolen = dict(sess)  # what an attacker copying the cookie would hold
    client.post("/logout")
    db.session.expire_all()
    assert db.session.get(UserSession, row.id).revoked_at is not None
    replay = app.test_client()
    with replay.session_transaction() as sess:
        sess.update(stolen)
    assert replay.get("/").status_code == 302  # the old cookie no longer works
    # Issue 13, finding 9: the logout is in the audit trail, with the user and nothing else about them.
    from whp_c4d.auth.models import AuditEvent

    [event] = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "logout")).all()
    assert event.actor_id == user.id and event.target_id == user.id


def test_login_replaces_whatever_session_was_there_before(app, client, make_user):
    user = make_user("officer")
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
    _login(client, user.email)
    with client.session_transaction() as sess:
        assert "planted" not in sess


def test_wrong_password_is_refused_and_audited(app, client, make_user):
    user = make_user("officer")
    r = _login(client, user.email, "not the password")
    assert r.status_code == 401
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginAttempt)) == 1
    assert db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "login.failed")).target_id == user.id


def test_throttling_is_counted_in_the_database_so_it_holds_across_processes(app, make_user):
    user = make_user("officer")
    for _ in range(app.config["C4D_LOGIN_MAX_FAILURES"]):
        assert _login(app.test_client(), user.email, "wrong password!!").status_code == 401
    # The only state is the rows in login_attempt, which every web process reads: a brand-new client
    # (another browser, another process behind the load balancer) is refused too, even with the right
    # password, and so is the next one once the rows are there but not before.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginAttempt)) == 5
    assert _login(app.test_client(), user.email).status_code == 429
    db.session.execute(sa.delete(LoginAttempt))
    db.session.commit()
    assert _login(app.test_client(), user.email).status_code == 302


def test_disabling_a_user_ends_their_sessions(app, make_user, login):
    admin, officer = make_user("admin"), make_user("officer")
    client = app.test_client()
    login(client, officer)
    assert client.get("/contacts").status_code == 200
    services.update_user(officer, name=officer.name, role="officer", active=False, partner_id=None,
                         countries=[], ui_language=None, actor=admin)
    db.session.commit()
    assert client.get("/contacts").status_code == 302


def test_idle_and_absolute_timeouts_end_the_session(app, make_user, login):
    user = make_user("officer")
    client = app.test_client()
    token = login(client, user)
    row = db.session.scalar(sa.select(UserSession).where(UserSession.user_id == user.id))
    row.last_seen_at = row.last_seen_at - app.config["C4D_SESSION_IDLE"] - timedelta(minutes=1)
    db.session.commit()
    assert client.get("/contacts").status_code == 302
    assert services.load_session(token) is None
    token = login(client, user)
    row = db.session.scalar(sa.select(UserSession).where(UserSession.revoked_at.is_(None)))
    row.created_at = row.created_at - app.config["C4D_SESSION_ABSOLUTE"] - timedelta(minutes=1)
    db.session.commit()
    assert client.get("/contacts").status_code == 302


def test_first_admin_setup_link_works_once(app, client):
    token = services.create_setup_token()
    db.session.commit()
    assert client.get(f"/setup/{token}").status_code == 200
    r = client.post(f"/setup/{token}", data={"name": "Primera", "email": "first@example.org",
                                             "password": TEST_PASSWORD, "confirm": TEST_PASSWORD})
    assert r.status_code == 302
    assert db.session.scalar(sa.select(User).where(User.email == "first@example.org")).role == "admin"
    assert client.get(f"/setup/{token}").status_code == 404


def test_admin_creates_users_and_role_changes_are_audited(app, make_user, login, make_partner):
    admin = make_user("admin")
    org = make_partner(name="Cruz Local")
    client = app.test_client()
    login(client, admin)
    r = client.post("/admin/users/new", data={"name": "Nuevo", "email": "nuevo@example.org", "role": "partner",
                                              "partner_id": org.id, "active": "y", "password": TEST_PASSWORD})
    assert r.status_code == 302
    user = db.session.scalar(sa.select(User).where(User.email == "nuevo@example.org"))
    assert user.partner_id == org.id
    r = client.post(f"/admin/users/{user.id}", data={"name": "Nuevo", "email": user.email, "role": "evaluator",
                                                     "partner_id": 0, "active": "y"})
    assert r.status_code == 302
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "user.role_changed"))
    assert event.details == {"old": "partner", "new": "evaluator"}


def test_partner_role_without_organisation_is_refused_with_a_clear_message(app, make_user, login):
    admin = make_user("admin")
    client = app.test_client()
    login(client, admin)
    r = client.post("/admin/users/new", data={"name": "X", "email": "x@example.org", "role": "partner",
                                              "partner_id": 0, "active": "y"},
                    headers={"Accept-Language": "en"})
    assert r.status_code == 200
    assert b"must belong to a partner organisation" in r.data


def test_user_changes_own_language_and_password(app, make_user, login):
    user = make_user("evaluator")
    client = app.test_client()
    login(client, user)
    client.post("/account", data={"acc-ui_language": "fr"})
    assert b'<html lang="fr">' in client.get("/").data
    r = client.post("/account", data={"pw-current": TEST_PASSWORD, "pw-password": "a brand new passphrase",
                                      "pw-confirm": "a brand new passphrase"})
    assert r.status_code == 302
    db.session.expire_all()
    assert services.verify_password(db.session.get(User, user.id), "a brand new passphrase")


def test_audit_log_is_append_only(app, make_user):
    import pytest

    event = services.audit("test.event", None)
    db.session.commit()
    event.action = "changed"
    with pytest.raises(RuntimeError):
        db.session.flush()
    db.session.rollback()


def test_cli_creates_a_user_with_the_password_from_stdin(app, runner):
    r = runner.invoke(args=["users", "create", "cli@example.org", "--role", "admin", "--password-stdin"],
                      input=TEST_PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    user = db.session.scalar(sa.select(User).where(User.email == "cli@example.org"))
    assert user.role == "admin" and services.verify_password(user, TEST_PASSWORD)
    r = runner.invoke(args=["api-token", "create", "cli@example.org"])
    assert r.exit_code == 0 and r.output.strip().startswith("c4d_")
    assert services.user_for_api_token(r.output.strip()).id == user.id


# --- behind a proxy; throttling that cannot be turned against people (issue 13, finding 5) ---------------

PROXY = "10.0.0.1"  # the reverse proxy every request comes through in production


def _login_from(app, email, client_ip, password=TEST_PASSWORD):
    return app.test_client().post("/login", data={"email": email, "password": password},
                                  headers={"X-Forwarded-For": client_ip}, environ_base={"REMOTE_ADDR": PROXY})


def test_behind_a_proxy_one_clients_failures_do_not_lock_everybody_out(app, make_user, monkeypatch):
    """Behind the README's reverse proxy every request came from the proxy's address: the 30-failures-
    per-address limit became one global limit, and every audit address was the proxy's. With
    C4D_TRUSTED_PROXIES set to the number of proxies, the client's own address counts."""
    from whp_c4d.auth.models import AuditEvent

    monkeypatch.setitem(app.config, "C4D_TRUSTED_PROXIES", 1)
    owner = make_user("officer")
    for i in range(app.config["C4D_LOGIN_MAX_FAILURES_PER_IP"]):
        _login_from(app, f"guess{i}@example.org", "203.0.113.7", "wrong password!!")
    assert _login_from(app, "another@example.org", "203.0.113.7", "wrong password!!").status_code == 429
    assert _login_from(app, owner.email, "198.51.100.9").status_code == 302
    ips = set(db.session.scalars(sa.select(AuditEvent.ip).where(AuditEvent.action.like("login.%"))))
    assert ips == {"203.0.113.0/24", "198.51.100.0/24"}  # the clients', truncated; never the proxy's


def test_without_trusted_proxies_a_forwarded_address_is_not_believed(app, make_user):
    make_user("officer")
    _login_from(app, "nobody@example.org", "203.0.113.7", "wrong password!!")
    from whp_c4d.auth.models import AuditEvent

    assert db.session.scalar(sa.select(AuditEvent.ip).where(AuditEvent.action == "login.failed")) == "10.0.0.0/24"


def test_wrong_passwords_from_elsewhere_delay_an_account_but_never_lock_its_owner_out(app, make_user, monkeypatch):
    """5 wrong passwords locked an account — an administrator's too — even against its correct password:
    anyone who knew the e-mail address could lock its owner out. Failures from one client still stop
    that client; account-wide they only make the next attempt wait, longer each time, a minute at most."""
    monkeypatch.setitem(app.config, "C4D_TRUSTED_PROXIES", 1)
    admin = make_user("admin")
    for _ in range(app.config["C4D_LOGIN_MAX_FAILURES"] + 3):
        _login_from(app, admin.email, "203.0.113.7", "wrong password!!")
    assert _login_from(app, admin.email, "203.0.113.7").status_code == 429  # that client is stopped
    from whp_c4d.auth import services as auth

    wait = auth.account_delay(admin.email)
    assert timedelta(0) < wait <= timedelta(seconds=60)
    assert _login_from(app, admin.email, "198.51.100.9").status_code == 429  # too soon after the last failure
    for attempt in db.session.scalars(sa.select(LoginAttempt)):  # time passes
        attempt.at -= wait
    db.session.commit()
    assert _login_from(app, admin.email, "198.51.100.9").status_code == 302  # the owner gets in


def test_the_account_delay_grows_and_stays_under_a_minute(app, make_user):
    from whp_c4d.auth import services as auth

    user = make_user("officer")
    delays = []
    for n in range(1, 16):
        db.session.add(LoginAttempt(email_hash=auth._keyed(user.email), ip_hash=auth._keyed(f"198.51.100.{n}")))
        db.session.commit()
        delays.append(auth.account_delay(user.email).total_seconds())
    assert delays[: app.config["C4D_LOGIN_MAX_FAILURES"] - 1] == [0] * (app.config["C4D_LOGIN_MAX_FAILURES"] - 1)
    assert delays == sorted(delays) and delays[-1] == 60
