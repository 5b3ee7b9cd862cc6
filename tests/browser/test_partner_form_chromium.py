"""A partner on a 360-px phone fills the activity report in Haitian Creole, reloads it half-way (the draft
comes back), loses the connection as it is sent (the server got it, the phone never heard back) and sends
it again: one report is stored, and the phone shows it.

Its own `c4d serve` on SQLite in a temporary instance (demo data for campaigns to choose, a Haitian partner
organisation made with `c4d partners create`, the partner with `c4d users create --password-stdin`), driven
by Debian's headless Chromium. Screenshots partner-form-ht.png and partner-report-ht.png go to
$C4D_SCREENSHOT_DIR (default: a temporary folder).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from test_pages_in_chromium import CHROMIUM, CHROMIUM_ARGS, _run, serving

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not installed"),
]

PASSWORD = "browser-partner-passw0rd"
PARTNER = "browser-partner@example.org"
ORGANISATION = "Rezo Fanmi Ayiti (test)"
PROTECTION = "Yon timoun ap vwayaje pou kont li"
PAGE_BUDGET = 60_000  # bytes of HTML, CSS and JavaScript the form needs, uncompressed


@pytest.fixture(scope="module")
def instance(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("partner-instance")


@pytest.fixture(scope="module")
def server(instance):
    def setup(env: dict) -> None:
        _run(env, "demo")  # campaigns to choose from (one is completed); its own users are not used
        _run(env, "partners", "create", ORGANISATION, "--country", "HT")
        _run(env, "users", "create", PARTNER, "--role", "partner", "--partner", ORGANISATION, "--name",
             "Browser partner", "--password-stdin", stdin=PASSWORD + "\n")

    with serving(instance, setup, worker=False) as base:
        yield base


@pytest.fixture
def phone():
    """A 360 x 740 touch phone in a fresh browser (its own storage), with script errors collected."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        ctx = browser.new_context(locale="es", extra_http_headers={"Accept-Language": "es"},
                                  viewport={"width": 360, "height": 740}, device_scale_factor=1, is_mobile=True,
                                  has_touch=True)
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        page.script_errors = []
        page.on("pageerror", lambda exc: page.script_errors.append(str(exc)))
        # The dropped connection is reported by the browser as a failed load: expected here.
        page.on("console", lambda msg: page.script_errors.append(msg.text)
                if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
        try:
            yield page
        finally:
            ctx.close()
            browser.close()


def _reports(instance: Path) -> list[tuple]:
    """Our partner's reports, read from the instance's database (the demo has reports of its own)."""
    with sqlite3.connect(instance / "c4d.db") as conn:
        return conn.execute(
            "SELECT r.id, r.submission_token, r.participants, r.women, r.men, r.sex_other, r.age_13_17, r.age_18_59, "
            "r.age_60_plus, r.admin_area, r.protection_concern FROM partner_report r JOIN partner_organisation o "
            "ON o.id = r.partner_id WHERE o.name = ? ORDER BY r.id", (ORGANISATION,)).fetchall()


def _overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def _log_in_in_creole(page, base: str) -> None:
    page.goto(base + "/login")
    switch = page.locator("form.lang-switch")
    switch.locator("select[name=language]").select_option("ht")
    with page.expect_navigation():
        switch.locator("button[type=submit]").click()
    assert page.get_attribute("html", "lang") == "ht"
    form = page.locator("form:has(input[name=password])")
    form.locator("input[name=email]").fill(PARTNER)
    form.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert page.url == base + "/", page.locator("main").inner_text()


def test_a_partner_on_a_phone_sends_a_report_in_creole_over_a_dropped_connection_and_one_is_stored(
        server, instance, phone, screenshot_dir):
    page = phone
    _log_in_in_creole(page, server)
    page.goto(server + "/activity-reports/new")
    page.wait_for_load_state("load")
    # What a phone must download for the form: the page, its stylesheet and scripts (nothing else).
    # (fetched again: the browser's cache may already hold the stylesheet from the login page)
    urls = page.evaluate("() => [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]")
    sizes = {url.replace(server, ""): len(page.request.get(url).body()) for url in urls}
    assert page.get_attribute("html", "lang") == "ht"
    form = page.locator("form.pr-form")
    token = form.locator("input[name=submission_token]").input_value()
    assert len(token) >= 24
    weight = sum(sizes.values())
    assert weight < PAGE_BUDGET, f"the form needs {weight} bytes: {sizes}"
    print(f"\nform page weight: {weight} bytes ({sizes})")

    # First sections, then the phone reloads the page (a tap on a link, a dead battery...).
    form.locator("input[name=activity_date]").fill("2026-03-14")
    form.locator("input[name=activity_type][value=community_meeting]").check()
    assert form.locator("select[name=country]").input_value() == "HT"  # the organisation's country
    areas = form.locator("select[name=admin_area] option").all_inner_texts()
    assert "Nord-Ouest" in areas and "Petén" not in areas and len(areas) == 11  # Haiti's ten, and "—"
    form.locator("select[name=admin_area]").select_option("Nord-Ouest")
    form.locator("input[name=locality]").fill("Pòdepè")
    form.locator("input[name=women]").fill("20")
    page.reload()
    form = page.locator("form.pr-form")
    page.locator("#pr-status").wait_for()
    assert form.locator("input[name=submission_token]").input_value() == token, "the draft keeps its token"
    assert form.locator("input[name=activity_date]").input_value() == "2026-03-14"
    assert form.locator("input[name=activity_type][value=community_meeting]").is_checked()
    assert form.locator("select[name=admin_area]").input_value() == "Nord-Ouest"
    assert form.locator("input[name=locality]").input_value() == "Pòdepè"
    assert form.locator("input[name=women]").input_value() == "20"

    # Every other section; the total is left empty: it is counted from the breakdown by sex.
    form.locator("input[name=campaign_ids]").first.check()
    form.locator("input[name=materials]").fill("Afich, fèy")
    form.locator("input[name=men]").fill("15")
    form.locator("input[name=sex_other]").fill("1")
    for name, value in (("age_13_17", "6"), ("age_18_59", "25"), ("age_60_plus", "5")):
        form.locator(f"input[name={name}]").fill(value)
    assert "36" in form.locator("#f-by_sex .pr-sum").inner_text()
    for group in ("in_transit", "returnees"):
        form.locator(f"input[name=groups][value={group}]").check()
    for language in ("ht", "fr"):
        form.locator(f"input[name=languages][value={language}]").check()
    form.locator("textarea[name=what_worked]").fill("Moun yo te poze anpil kesyon")
    form.locator("textarea[name=what_did_not]").fill("Pa te gen kouran")
    form.locator("textarea[name=questions_heard]").fill("Kijan pou m jwenn yon viza pou Chili?")
    form.locator("textarea[name=rumours_heard]").fill("Yo di fwontyè a louvri pou tout moun")
    form.locator("textarea[name=suggestions]").fill("Plis emisyon radyo")
    form.locator("input[name=protection_concern]").check()
    form.locator("textarea[name=protection_text]").fill(PROTECTION)
    assert _overflow(page) <= 1, "the form scrolls sideways on a 360-px phone"
    page.screenshot(path=str(screenshot_dir / "partner-form-ht.png"), full_page=True)

    # The connection drops as the report is sent: the server gets it, the phone never hears back.
    reached: list[int] = []

    def drop_answer(route):
        if route.request.method != "POST":
            route.continue_()
            return
        reached.append(route.fetch(max_redirects=0).status)
        route.abort("internetdisconnected")

    cookies = page.context.cookies()
    page.route("**/activity-reports/new", drop_answer)
    form.locator("button[type=submit]").click()
    page.locator("#pr-send-status.error").wait_for()
    # route.fetch() shares the context's cookie jar; nothing of the lost answer may reach the phone.
    page.context.clear_cookies()
    page.context.add_cookies(cookies)
    assert reached == [303], "the first copy reached the server and was stored"
    assert len(_reports(instance)) == 1
    assert page.locator("form.pr-form").is_visible(), "the form is still on the screen"
    page.screenshot(path=str(screenshot_dir / "partner-offline-ht.png"))
    assert form.locator("input[name=submission_token]").input_value() == token
    assert form.locator("textarea[name=protection_text]").input_value() == PROTECTION

    # Back online, the partner sends it again.
    page.unroute("**/activity-reports/new")
    form.locator("button[type=submit]").click()
    page.locator(".pr-report").wait_for()
    [report] = _reports(instance)
    report_id, stored_token = report[0], report[1]
    assert stored_token == token
    assert report[2:] == (36, 20, 15, 1, 6, 25, 5, "Nord-Ouest", 1)
    assert page.url == f"{server}/activity-reports/{report_id}"
    assert page.locator(".flash.warning").count() == 1  # "already received"
    assert page.locator(".flash.success").count() == 0  # the first answer (saved) was lost
    assert page.get_attribute("html", "lang") == "ht"
    main = page.locator("main").inner_text()
    assert "Pòdepè" in main and "Nord-Ouest" in main and PROTECTION not in main
    drafts = page.evaluate("Object.keys(localStorage).filter(function (k) { return k.indexOf('c4d-pr:') === 0; })")
    assert drafts == [], "the draft is forgotten once the report is shown"
    assert _overflow(page) <= 1, "the report page scrolls sideways on a 360-px phone"
    page.screenshot(path=str(screenshot_dir / "partner-report-ht.png"), full_page=True)

    # A new form starts empty, with a new token.
    page.goto(server + "/activity-reports/new")
    assert page.locator("form.pr-form input[name=submission_token]").input_value() != token
    assert page.locator("form.pr-form input[name=women]").input_value() == ""
    assert page.script_errors == [], f"script or console errors: {page.script_errors}"


def test_a_phone_offline_when_it_sends_keeps_the_report_and_sends_it_once_back_online(server, instance, phone):
    """The other way a connection is lost: before the report leaves the phone (nothing reaches the server)."""
    page = phone
    _log_in_in_creole(page, server)
    before = len(_reports(instance))
    page.goto(server + "/activity-reports/new")
    form = page.locator("form.pr-form")
    page.wait_for_load_state("load")
    form.locator("input[name=activity_date]").fill("2026-03-20")
    form.locator("input[name=activity_type][value=radio]").check()
    form.locator("input[name=participants]").fill("12")
    form.locator("textarea[name=rumours_heard]").fill("Yo di gen bato ki pati gratis")
    page.context.set_offline(True)
    form.locator("button[type=submit]").click()
    page.locator("#pr-send-status.error").wait_for()
    assert len(_reports(instance)) == before, "nothing left the phone"
    assert form.locator("textarea[name=rumours_heard]").input_value() == "Yo di gen bato ki pati gratis"
    page.context.set_offline(False)
    form.locator("button[type=submit]").click()
    page.locator(".pr-report").wait_for()
    assert len(_reports(instance)) == before + 1
    assert page.locator(".flash.success").count() == 1  # this time the answer arrived: saved, once
    assert page.script_errors == [], f"script or console errors: {page.script_errors}"


def test_without_javascript_the_form_lists_every_area_and_still_sends(server, instance, screenshot_dir):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        ctx = browser.new_context(java_script_enabled=False, viewport={"width": 360, "height": 740},
                                  extra_http_headers={"Accept-Language": "ht"})
        try:
            page = ctx.new_page()
            page.set_default_timeout(15_000)
            _log_in_plain(page, server)
            page.goto(server + "/activity-reports/new")
            form = page.locator("form.pr-form")
            assert form.locator("select[name=admin_area] optgroup").count() == 12
            before = len(_reports(instance))
            form.locator("input[name=activity_date]").fill("2026-03-15")
            form.locator("input[name=activity_type][value=radio]").check()
            form.locator("select[name=admin_area]").select_option(label="Artibonite")
            form.locator("input[name=women]").fill("3")
            form.locator("input[name=men]").fill("5")
            form.locator("input[name=participants]").fill("9")
            with page.expect_navigation():
                form.locator("button[type=submit]").click()
            assert page.locator("#e-by_sex").count() == 1  # 3 + 5 is not 9: said in place, nothing stored
            page.screenshot(path=str(screenshot_dir / "partner-form-errors-ht.png"))
            assert len(_reports(instance)) == before
            page.locator("form.pr-form input[name=participants]").fill("8")
            with page.expect_navigation():
                page.locator("form.pr-form button[type=submit]").click()
            assert re.search(r"/activity-reports/\d+$", page.url), page.locator("main").inner_text()
            assert len(_reports(instance)) == before + 1
        finally:
            ctx.close()
            browser.close()


def _log_in_plain(page, base: str) -> None:
    page.goto(base + "/login")
    form = page.locator("form:has(input[name=password])")
    form.locator("input[name=email]").fill(PARTNER)
    form.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
