"""An evaluator codes fifty feedback items in bulk in a real browser, and the dashboard's feedback-by-type
chart (and the table of its numbers) changes accordingly.

Its own `c4d serve` on SQLite in a temporary instance with the demo data (whose past campaign leaves about
a hundred uncoded replies in the queue), the evaluator made with `c4d users create --password-stdin`,
driven by Debian's headless Chromium. Screenshots feedback-queue-en.png and dashboard-coded-en.png go to
$C4D_SCREENSHOT_DIR (default: a temporary folder).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from test_pages_in_chromium import CHROMIUM, CHROMIUM_ARGS, _c4d, _free_port, _run, _wait_healthy

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not installed"),
]

PASSWORD = "browser-evaluator-passw0rd"
EVALUATOR = "browser-coder@example.org"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("coding-instance")
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "C4D_TEST_DATABASE_URL", "SECRET_KEY", "C4D_DATA_KEY",
                        "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"}}
    env.update(C4D_INSTANCE_PATH=str(instance), C4D_PUBLIC_URL=f"http://127.0.0.1:{port}", PYTHONUNBUFFERED="1")
    _run(env, "db", "upgrade")
    _run(env, "demo")
    _run(env, "users", "create", EVALUATOR, "--role", "evaluator", "--name", "Browser coder", "--password-stdin",
         stdin=PASSWORD + "\n")
    log = instance / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*_c4d(), "serve", "--port", str(port), "--no-worker"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
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
def screenshot_dir(tmp_path_factory) -> Path:
    configured = os.environ.get("C4D_SCREENSHOT_DIR")
    path = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def desk():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        ctx = browser.new_context(locale="en", extra_http_headers={"Accept-Language": "en"},
                                  viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page
        finally:
            assert errors == []
            ctx.close()
            browser.close()


def _by_type(page, base: str) -> dict[str, str]:
    """The dashboard's feedback-by-type numbers, as the table beside the chart shows them."""
    page.goto(base + "/")
    section = page.locator("section#feedback_by_type")
    assert section.locator("svg").count() >= 1
    rows = section.locator("table tbody tr")
    return {rows.nth(i).locator("th, td").nth(0).inner_text().strip():
            rows.nth(i).locator("td").last.inner_text().strip() for i in range(rows.count())}


def test_an_evaluator_codes_fifty_items_in_bulk_and_the_dashboard_chart_follows(server, desk, screenshot_dir):
    page = desk
    page.goto(server + "/login")
    form = page.locator("form:has(input[name=password])")
    form.locator("input[name=email]").fill(EVALUATOR)
    form.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    before = _by_type(page, server)
    assert before["Question"] == "0" and int(before["Not coded yet"]) >= 60

    page.goto(server + "/feedback?type=uncoded&per_page=200")
    boxes = page.locator("input[name=ids]")
    uncoded = boxes.count()
    assert 60 <= uncoded < 200  # all on one page
    for i in range(50):
        boxes.nth(i).check()
    page.select_option("#b-type", "question")
    page.select_option("#b-criticality", "action")
    page.screenshot(path=str(screenshot_dir / "feedback-queue-en.png"))
    with page.expect_navigation():
        page.get_by_role("button", name="Apply to the selected items").click()
    assert "50 items coded." in page.locator(".flash.success").inner_text()
    assert page.locator("input[name=ids]").count() == uncoded - 50  # back on the same filtered page

    after = _by_type(page, server)
    assert after["Question"] == "50"
    assert int(after["Not coded yet"]) == int(before["Not coded yet"]) - 50
    page.locator("section#feedback_by_type").screenshot(path=str(screenshot_dir / "dashboard-coded-en.png"))
