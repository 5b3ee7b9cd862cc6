"""An administrator sets up two-step login at the first login, then logs in with a code from the app and
with a recovery code, in a real browser (issue 13). Its own `c4d serve` on SQLite; the authenticator app
is pyotp, given the key the page shows. Screenshots two-step-enrol-en.png, two-step-codes-en.png and
two-step-code-en.png go to $C4D_SCREENSHOT_DIR (default: a temporary folder).
"""

from __future__ import annotations

import time

import pytest
from test_pages_in_chromium import CHROMIUM, _run, browser, open_page, serving  # noqa: F401  (fixtures)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not installed"),
]

ADMIN = "two-step-admin@example.org"
PASSWORD = "two-step-admin-passw0rd"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    def setup(env: dict) -> None:
        _run(env, "users", "create", ADMIN, "--role", "admin", "--name", "Two-step admin", "--password-stdin",
             stdin=PASSWORD + "\n")

    with serving(tmp_path_factory.mktemp("two-step-instance"), setup, worker=False) as base:
        yield base


@pytest.fixture
def page(open_page):  # noqa: F811  (the imported fixture)
    tab = open_page("en")
    tab.set_viewport_size({"width": 390, "height": 844})  # a phone: where the authenticator app is
    yield tab
    assert tab.script_errors == []


def _password(page, base: str) -> None:
    page.goto(base + "/login")
    form = page.locator("form:has(input[name=password])")
    form.locator("input[name=email]").fill(ADMIN)
    form.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()


def _code(page, code: str) -> None:
    page.locator("input[name=code]").fill(code)
    with page.expect_navigation():
        page.locator("form:has(input[name=code]) button[type=submit]").click()


def _log_out(page) -> None:
    with page.expect_navigation():
        page.locator("form[action='/logout'] button").click()


def test_an_administrator_enrols_then_logs_in_with_a_code_and_with_a_recovery_code(server, page, screenshot_dir):
    import pyotp

    _password(page, server)
    assert page.url == server + "/login/enrol"  # the first login: set it up, no way around
    assert page.locator("figure.qr svg").count() == 1
    page.screenshot(path=str(screenshot_dir / "two-step-enrol-en.png"), full_page=True)
    app = pyotp.TOTP(page.locator("code[data-secret]").inner_text().replace(" ", ""))
    _code(page, "000000")
    assert page.url == server + "/login/enrol" and "not right" in page.locator("main").inner_text()
    _code(page, app.now())
    codes = page.locator("[data-recovery-codes] code").all_inner_texts()
    assert len(codes) == 10
    page.screenshot(path=str(screenshot_dir / "two-step-codes-en.png"), full_page=True)
    with page.expect_navigation():
        page.locator("main a.button").click()
    assert page.url == server + "/"
    _log_out(page)

    _password(page, server)
    assert page.url == server + "/login/code"
    page.screenshot(path=str(screenshot_dir / "two-step-code-en.png"), full_page=True)
    _code(page, app.at(time.time() + 30))  # the next code: the one of the set-up is spent
    assert page.url == server + "/"
    _log_out(page)

    _password(page, server)
    _code(page, codes[0])  # the phone is lost: a recovery code
    assert page.url == server + "/"
    _log_out(page)

    _password(page, server)
    _code(page, codes[0])  # each recovery code works once
    assert page.url == server + "/login/code"
