"""Two-step login (issue 13, finding 4): TOTP from an authenticator app, mandatory for administrators
(set up at their first login), required of other staff roles when an administrator says so; one-time
recovery codes kept as hashes; a code accepted once; remembered for the session only; reset from the
command line; every step audited."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa
from helpers import TEST_PASSWORD, all_database_text

from whp_c4d.auth.models import AuditEvent, LoginAttempt, RecoveryCode, User, UserSession
from whp_c4d.core.models import utcnow
from whp_c4d.extensions import db


def _password(client, email, password=TEST_PASSWORD):
    return client.post("/login", data={"email": email, "password": password})


def _actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def _enrol(client, email) -> tuple[str, list[str]]:
    """Log in with the password, read the key from the set-up page, confirm it; the secret and codes."""
    assert _password(client, email).headers["Location"] == "/login/enrol"
    page = client.get("/login/enrol").get_data(as_text=True)
    assert "<svg" in page
    secret = re.search(r"<code data-secret>([A-Z2-7 ]+)</code>", page).group(1).replace(" ", "")
    r = client.post("/login/enrol", data={"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", r.get_data(as_text=True))
    return secret, codes


@pytest.fixture
def admin(make_user):
    return make_user("admin")


def test_an_administrator_sets_up_two_step_login_at_the_first_login(app, client, admin):
    assert _password(client, admin.email).headers["Location"] == "/login/enrol"
    assert client.get("/").status_code == 302  # no session before the second step
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UserSession)) == 0
    assert client.post("/login/enrol", data={"code": "000000"}).status_code == 400  # a wrong code
    client.get("/login/enrol")
    secret, codes = _enrol(app.test_client(), admin.email)
    assert len(codes) == 10 and len(set(codes)) == 10
    db.session.expire_all()
    user = db.session.get(User, admin.id)
    assert user.mfa_enabled_at is not None
    assert secret not in all_database_text()  # encrypted at rest, like a number
    assert not any(code in all_database_text() for code in codes)  # only keyed hashes are kept
    assert "mfa.enrolled" in _actions() and _actions()[-1] == "login.succeeded"


def test_then_every_login_asks_for_a_code_accepted_once(app, admin):
    secret, _codes = _enrol(app.test_client(), admin.email)
    totp = pyotp.TOTP(secret)
    client = app.test_client()
    assert _password(client, admin.email).headers["Location"] == "/login/code"
    code = totp.at(utcnow() + timedelta(seconds=30))  # the next step: enrolment used this one
    r = client.post("/login/code", data={"code": code})
    assert r.status_code == 302 and client.get("/").status_code == 200
    other = app.test_client()  # the same code seen over a shoulder, typed on another computer
    _password(other, admin.email)
    assert other.post("/login/code", data={"code": code}).status_code == 401
    assert "mfa.failed" in _actions()


def test_a_recovery_code_works_once(app, admin):
    _secret, codes = _enrol(app.test_client(), admin.email)
    client = app.test_client()
    _password(client, admin.email)
    assert client.post("/login/code", data={"code": codes[3].upper()}).status_code == 302
    again = app.test_client()
    _password(again, admin.email)
    assert again.post("/login/code", data={"code": codes[3]}).status_code == 401
    assert "mfa.recovery_used" in _actions()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode).where(
        RecoveryCode.used_at.is_(None))) == 9


def test_the_second_step_must_follow_the_password_within_minutes(app, admin, monkeypatch):
    import time as clock

    secret, _codes = _enrol(app.test_client(), admin.email)
    client = app.test_client()
    _password(client, admin.email)
    later = clock.time() + 301
    monkeypatch.setattr("whp_c4d.auth.views.time.time", lambda: later)
    r = client.post("/login/code", data={"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 302 and r.headers["Location"] == "/login"


def test_wrong_codes_count_like_wrong_passwords(app, admin):
    _enrol(app.test_client(), admin.email)
    client = app.test_client()
    _password(client, admin.email)
    for _ in range(app.config["C4D_LOGIN_MAX_FAILURES"]):
        assert client.post("/login/code", data={"code": "123456"}).status_code == 401
    assert client.post("/login/code", data={"code": "123456"}).headers["Location"] == "/login"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginAttempt)) == 5


def test_other_roles_need_it_once_an_administrator_requires_it(app, admin, make_user, login):
    officer, evaluator = make_user("officer"), make_user("evaluator")
    assert _password(app.test_client(), officer.email).headers["Location"] == "/"
    web = app.test_client()
    login(web, admin)
    assert web.post("/admin/users/two-step-login", data={"require_officer": "on"}).status_code == 302
    assert _password(app.test_client(), officer.email).headers["Location"] == "/login/enrol"
    assert _password(app.test_client(), evaluator.email).headers["Location"] == "/"
    assert "mfa.policy_changed" in _actions()


def test_a_reset_from_the_command_line_ends_the_sessions_and_asks_to_set_it_up_again(app, admin, runner):
    _enrol(app.test_client(), admin.email)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UserSession).where(
        UserSession.revoked_at.is_(None))) == 1
    result = runner.invoke(args=["users", "reset-mfa", admin.email])
    assert result.exit_code == 0 and "set it up again" in result.output
    db.session.expire_all()
    user = db.session.get(User, admin.id)
    assert user.mfa_secret is None and user.mfa_enabled_at is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UserSession).where(
        UserSession.revoked_at.is_(None))) == 0
    assert "mfa.reset" in _actions()
    assert _password(app.test_client(), admin.email).headers["Location"] == "/login/enrol"
    assert runner.invoke(args=["users", "reset-mfa", "nobody@example.org"]).exit_code != 0


def test_the_account_page_says_whether_it_is_on(app, admin, login):
    _enrol(app.test_client(), admin.email)
    web = app.test_client()
    web.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(web, admin)
    page = web.get("/account").get_data(as_text=True)
    assert "10 recovery codes left" in page
