"""An evaluator codes fifty feedback items in bulk in a real browser, and the dashboard's feedback-by-type
chart (and the table of its numbers) changes accordingly.

Its own `c4d serve` on SQLite in a temporary instance with the demo data (whose past campaign leaves about
a hundred uncoded replies in the queue), the evaluator made with `c4d users create --password-stdin`,
driven by Debian's headless Chromium. Screenshots feedback-queue-en.png and dashboard-coded-en.png go to
$C4D_SCREENSHOT_DIR (default: a temporary folder).
"""

from __future__ import annotations

import pytest
from test_pages_in_chromium import CHROMIUM, CHROMIUM_ARGS, _run, serving

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not installed"),
]

PASSWORD = "browser-evaluator-passw0rd"
EVALUATOR = "browser-coder@example.org"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    def setup(env: dict) -> None:
        _run(env, "demo")
        _run(env, "users", "create", EVALUATOR, "--role", "evaluator", "--name", "Browser coder", "--password-stdin",
             stdin=PASSWORD + "\n")

    with serving(tmp_path_factory.mktemp("coding-instance"), setup, worker=False) as base:
        yield base


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
