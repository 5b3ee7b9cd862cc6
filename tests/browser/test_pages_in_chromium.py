"""The real app in a real browser: `c4d serve` on SQLite in a temporary instance folder, driven by Debian's
headless Chromium through Playwright.

Self-contained: it migrates, seeds the fictional demo contacts, creates its own users with
`c4d users create --password-stdin`, starts the server on a free port and always stops it. Screenshots go
to $C4D_SCREENSHOT_DIR (default: a temporary folder), named like ``dashboard-es.png``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not installed"),
]

PASSWORD = "browser-test-passw0rd-long"  # the policy asks for at least 12 characters
USERS = {
    "admin": "browser-admin@example.org",
    "officer": "browser-officer@example.org",
    "evaluator": "browser-evaluator@example.org",
}
REVIEWER = "browser-reviewer@example.org"  # a second officer, for four-eyes approval
NAV_CONTACTS = {"es": "Contactos", "en": "Contacts"}
ADMIN_PAGES = ("/contacts", "/segments", "/contacts/import", "/admin/users", "/admin/audit")

FULL_NUMBER = re.compile(r"\+\d{6,}")
MASKED_NUMBER = re.compile(r"\+\d{1,4}\s*•")
LONG_DIGIT_RUN = re.compile(r"(?<![\w-])\d{8,}(?![\w-])")
PSEUDONYM = re.compile(r"\bC-[0-9A-Z]{6}\b")
ERROR_TITLE = re.compile(r"^\s*\d{3}\s*·")  # errors/error.html titles the page with the status code


def _c4d() -> list[str]:
    script = Path(sys.executable).with_name("c4d")
    if script.exists():
        return [str(script)]
    found = shutil.which("c4d")
    if found:
        return [found]
    return [sys.executable, "-c", "from whp_c4d.cli import main; main()"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(env: dict, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run([*_c4d(), *args], env=env, input=stdin, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"c4d {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _wait_healthy(base: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"c4d serve exited with {proc.returncode} before answering:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
                last = f"HTTP {r.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = repr(exc)
        time.sleep(0.2)
    pytest.fail(f"/healthz did not answer 200 within {timeout}s (last: {last}):\n{log.read_text()}")


@contextlib.contextmanager
def serving(instance: Path, setup: Callable[[dict], None], *, worker: bool = True):
    """`c4d serve` on SQLite in ``instance`` (migrated, then ``setup(env)`` runs its own `c4d` commands with
    ``_run``): yields the base URL, and always stops the server."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "C4D_TEST_DATABASE_URL", "SECRET_KEY", "C4D_DATA_KEY",
                        "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"}}
    env.update(C4D_INSTANCE_PATH=str(instance), C4D_PUBLIC_URL=f"http://127.0.0.1:{port}", PYTHONUNBUFFERED="1")
    _run(env, "db", "upgrade")
    setup(env)
    log = instance / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*_c4d(), "serve", "--port", str(port), *([] if worker else ["--no-worker"])],
                                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Base URL of a `c4d serve` on SQLite in a fresh instance folder, with demo contacts and our users."""

    def setup(env: dict) -> None:
        _run(env, "demo")  # fictional contacts (its own users' passwords are printed once; we make our own)
        for role, email in USERS.items():
            _run(env, "users", "create", email, "--role", role, "--name", f"Browser {role}", "--password-stdin",
                 stdin=PASSWORD + "\n")
        _run(env, "users", "create", REVIEWER, "--role", "officer", "--name", "Browser reviewer",
             "--password-stdin", stdin=PASSWORD + "\n")

    with serving(tmp_path_factory.mktemp("browser-instance"), setup) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _console_error(page, msg) -> None:
    # Failed loads are reported with their URL by _failed_resource; the browser's own favicon.ico
    # request (the app has none) would otherwise make this flaky.
    if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
        page.script_errors.append(f"{msg.text} ({(msg.location or {}).get('url', '')})")


def _failed_resource(page, response) -> None:
    """A stylesheet, script or image the page needs that did not load (pages are checked by the test)."""
    if response.status >= 400 and response.request.resource_type not in {"document"} \
            and not response.url.endswith("/favicon.ico"):
        page.script_errors.append(f"HTTP {response.status} for {response.url}")


@pytest.fixture
def open_page(browser):
    """Open a page in a new browser context for a locale; collect script errors; close everything after."""
    contexts = []

    def open_(locale: str):
        ctx = browser.new_context(locale=locale, extra_http_headers={"Accept-Language": locale},
                                  viewport={"width": 1280, "height": 800})
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        page.script_errors = []
        page.on("pageerror", lambda exc: page.script_errors.append(str(exc)))
        page.on("console", lambda msg: _console_error(page, msg))
        page.on("response", lambda response: _failed_resource(page, response))
        return page

    yield open_
    for ctx in contexts:
        ctx.close()


RECOVERY_CODES: dict[str, list[str]] = {}  # per e-mail, kept from the two-step set-up for the next logins


def second_step(page, base: str, email: str) -> None:
    """Administrators log in in two steps: the first time they set up the app (the key is read off the
    page and the code computed as the app would), later they type a code (here one of their recovery
    codes, each once: a TOTP code is accepted once per 30 seconds, and the tests log in faster)."""
    import pyotp

    if page.url == base + "/login/enrol":
        secret = page.locator("code[data-secret]").inner_text().replace(" ", "")
        page.locator("input[name=code]").fill(pyotp.TOTP(secret).now())
        with page.expect_navigation():
            page.locator("form:has(input[name=code]) button[type=submit]").click()
        RECOVERY_CODES[email] = page.locator("[data-recovery-codes] code").all_inner_texts()
        assert len(RECOVERY_CODES[email]) == 10, page.locator("main").inner_text()
        with page.expect_navigation():
            page.locator("main a.button").click()
    elif page.url == base + "/login/code":
        page.locator("input[name=code]").fill(RECOVERY_CODES[email].pop())
        with page.expect_navigation():
            page.locator("form:has(input[name=code]) button[type=submit]").click()


def _log_in(page, base: str, email: str) -> None:
    response = page.goto(base + "/login")
    assert response is not None and response.status == 200
    form = page.locator("form:has(input[name=password])")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    second_step(page, base, email)
    assert page.url == base + "/", f"login as {email} ended on {page.url}: {page.locator('main').inner_text()}"


def _assert_not_an_error_page(page, path: str, response) -> None:
    assert response is not None, f"no response for {path}"
    assert response.status < 400, f"{path} answered HTTP {response.status}"
    assert "/login" not in page.url, f"{path} sent us back to the login page"
    title = page.title()
    assert not ERROR_TITLE.match(title), f"{path} rendered the error page: {title!r}"
    headings = [h.strip() for h in page.locator("h1").all_inner_texts()]
    assert headings, f"{path} has no <h1>"
    for h in headings:
        assert "500" not in h and h != "Error", f"{path} shows an error heading {h!r}"


@pytest.mark.parametrize("locale", ["es", "en"])
def test_admin_sees_every_page_in_their_language(server, open_page, screenshot_dir, locale):
    page = open_page(locale)
    _log_in(page, server, USERS["admin"])

    assert page.get_attribute("html", "lang") == locale
    nav = page.locator("nav.main-nav")
    assert nav.is_visible()
    labels = [t.strip() for t in nav.locator("a").all_inner_texts() if t.strip()]
    page.screenshot(path=str(screenshot_dir / f"dashboard-{locale}.png"), full_page=True)

    for path in ADMIN_PAGES:
        response = page.goto(server + path)
        _assert_not_an_error_page(page, path, response)
        assert page.get_attribute("html", "lang") == locale, path
        if path == "/contacts":
            assert PSEUDONYM.search(page.locator("main").inner_text()), "the demo contacts are not listed"
            page.screenshot(path=str(screenshot_dir / f"contacts-{locale}.png"), full_page=True)

    assert page.script_errors == [], f"script or console errors: {page.script_errors}"
    # Last, so that a missing catalog does not hide the checks above.
    assert NAV_CONTACTS[locale] in labels, f"main navigation in {locale!r} shows {labels}"


def test_officer_sees_masked_numbers(server, open_page):
    """The other side of the evaluator test: the patterns below do find numbers where numbers are shown."""
    page = open_page("es")
    _log_in(page, server, USERS["officer"])
    response = page.goto(server + "/contacts")
    _assert_not_an_error_page(page, "/contacts", response)
    text = page.locator("main").inner_text()
    assert MASKED_NUMBER.search(text), "an officer should see masked numbers on the contacts list"
    assert not FULL_NUMBER.search(page.content()), "numbers are masked until revealed one at a time"


def test_evaluator_sees_pseudonyms_never_numbers(server, open_page, screenshot_dir):
    page = open_page("es")
    _log_in(page, server, USERS["evaluator"])
    response = page.goto(server + "/contacts")
    _assert_not_an_error_page(page, "/contacts", response)

    html = page.content()
    text = page.locator("body").inner_text()
    assert len(PSEUDONYM.findall(text)) >= 10, "the evaluator should see the contacts by pseudonym"
    assert not FULL_NUMBER.search(html), f"a phone number on the evaluator's page: {FULL_NUMBER.search(html)[0]}"
    assert not MASKED_NUMBER.search(html), "even a masked number is more than an evaluator may see"
    assert "•" not in text, "a masked number on the evaluator's page"
    assert not LONG_DIGIT_RUN.search(text), f"a number-like digit run: {LONG_DIGIT_RUN.search(text)[0]}"
    page.screenshot(path=str(screenshot_dir / "contacts-evaluator-es.png"), full_page=True)

    # Opening one contact shows no number either.
    page.locator("a.pseudonym").first.click()
    page.wait_for_load_state()
    detail_html = page.content()
    assert PSEUDONYM.search(page.locator("main").inner_text())
    assert not FULL_NUMBER.search(detail_html) and not MASKED_NUMBER.search(detail_html)
    assert page.script_errors == [], f"script or console errors: {page.script_errors}"


def test_pages_fit_a_360px_phone(server, browser, screenshot_dir):
    """Officers and partners use phones: no page may scroll sideways (wide tables scroll in their box)."""
    ctx = browser.new_context(locale="es", extra_http_headers={"Accept-Language": "es"},
                              viewport={"width": 360, "height": 740}, device_scale_factor=1,
                              is_mobile=True, has_touch=True)
    try:
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        _log_in(page, server, USERS["admin"])
        for path, shot in (("/", "dashboard-360-es.png"), ("/contacts", "contacts-360-es.png"),
                           ("/segments", None), ("/contacts/import", None)):
            response = page.goto(server + path)
            _assert_not_an_error_page(page, path, response)
            if shot:
                page.screenshot(path=str(screenshot_dir / shot), full_page=True)
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 1, f"{path} is {overflow}px wider than a 360-px phone screen"
    finally:
        ctx.close()


def _log_out(page) -> None:
    with page.expect_navigation():
        page.locator("header form[action$='/logout'] button").click()


def test_officer_authors_a_two_language_campaign_and_a_colleague_approves_it(server, open_page, screenshot_dir):
    page = open_page("es")
    _log_in(page, server, USERS["officer"])
    page.goto(server + "/campaigns/new")
    form = page.locator("main form")
    form.locator("input[name=name]").fill("Información útil para el viaje")
    for lang in ("es", "en"):
        form.locator(f"input[name=languages][value={lang}]").check()
    form.locator("input[name=base_language][value=es]").check()
    form.locator("input[name=countries][value=GT]").check()
    form.locator("input[name=channels][value=sms]").check()
    form.locator("select[name=audience]").select_option("Demo: everyone who consented")
    with page.expect_navigation():
        form.locator("button[type=submit]").last.click()
    assert re.search(r"/campaigns/\d+$", page.url), page.locator("main").inner_text()
    campaign_url = page.url

    page.locator("a[href$='/steps/new']").first.click()
    page.wait_for_load_state()
    es = page.locator("textarea[name=es-sms]")
    es.fill("Información útil: llame al {hotline}")
    info = page.locator("#es-sms-info")
    info.locator("[data-encoding]").filter(has_text="UCS-2").wait_for()  # the live counter, as one types
    assert {m.strip() for m in info.locator("mark").all_inner_texts()} == {"ó", "ú"}
    page.locator("textarea[name=en-sms]").fill("Useful information: call {hotline}")
    page.locator("#en-sms-info [data-characters]").filter(has_text=re.compile(r"^34\b")).wait_for()
    assert page.locator("#en-sms-info [data-encoding]").inner_text() == "GSM-7"
    page.screenshot(path=str(screenshot_dir / "campaign-editor-es.png"), full_page=True)
    with page.expect_navigation():
        page.locator("main form button[type=submit]:not([name=rewrite])").last.click()
    assert page.url.startswith(campaign_url), page.locator("main").inner_text()

    page.locator("a[href*='/preview']").first.click()
    page.wait_for_load_state()
    bubble = page.locator(".phone .bubble").inner_text()
    assert bubble.startswith("Información útil: llame al ") and "{hotline}" not in bubble
    page.screenshot(path=str(screenshot_dir / "campaign-preview-es.png"), full_page=True)

    page.goto(campaign_url)
    with page.expect_navigation():
        page.locator("form.transition:has(input[value=submit]) button").click()
    assert page.locator(".badge.status-in_review").count() == 1, page.locator("main").inner_text()
    with page.expect_navigation():
        page.locator("form.transition:has(input[value=approve]) button").click()
    assert page.locator(".flash.error").count() == 1  # four eyes: not one's own edit
    assert page.locator(".badge.status-in_review").count() == 1
    assert page.script_errors == [], f"script or console errors: {page.script_errors}"
    _log_out(page)

    page.goto(server + "/login")
    form = page.locator("form:has(input[name=password])")
    form.locator("input[name=email]").fill(REVIEWER)
    form.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    page.goto(campaign_url)
    with page.expect_navigation():
        page.locator("form.transition:has(input[value=approve]) button").click()
    assert page.locator(".badge.status-approved").count() == 1, page.locator("main").inner_text()
    page.screenshot(path=str(screenshot_dir / "campaign-approved-es.png"), full_page=True)
