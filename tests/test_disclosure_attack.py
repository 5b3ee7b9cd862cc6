"""Disclosure control that holds across queries (issue 13, finding 2): an attacker with an evaluator's
token asks for every filter combination of a campaign with small countries, languages and channels, and
tries to work out a hidden count of 1 to 4 by subtraction (exact linear algebra over everything shown).
Before the fix, ``sent`` for the campaign minus ``sent`` for Guatemala gave Honduras away."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import timedelta
from fractions import Fraction
from itertools import product

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_reports import MONDAY, _campaign, inbound, out

from whp_c4d.core.disclosure import ALL, Cube, Layout
from whp_c4d.extensions import db
from whp_c4d.reports.guard import reason_key

ADDITIVE = ("targeted", "sent", "delivered", "read", "failed", "replied", "opted_out")


class Span:
    """The row space of the equations an attacker holds (exact, with fractions): a count is derived
    when its vector of base cells lies in it."""

    def __init__(self, size: int):
        self.size = size
        self.rows: dict[int, list[Fraction]] = {}  # pivot -> row, reduced

    def _reduce(self, v: list[Fraction]) -> list[Fraction]:
        v = list(v)
        for pivot, row in self.rows.items():
            if v[pivot]:
                factor = v[pivot]
                v = [a - factor * b for a, b in zip(v, row, strict=True)]
        return v

    def add(self, vector: list[int]) -> None:
        v = self._reduce([Fraction(x) for x in vector])
        pivot = next((i for i, x in enumerate(v) if x), None)
        if pivot is None:
            return
        v = [x / v[pivot] for x in v]
        for p, row in list(self.rows.items()):
            if row[pivot]:
                factor = row[pivot]
                self.rows[p] = [a - factor * b for a, b in zip(row, v, strict=True)]
        self.rows[pivot] = v

    def derives(self, vector: list[int]) -> bool:
        return not any(self._reduce([Fraction(x) for x in vector]))


# --- the engine on random cubes --------------------------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.tuples(st.sampled_from("abc"), st.sampled_from("xyz"), st.sampled_from("pq")),
                       st.integers(0, 12), min_size=1, max_size=18))
def test_no_hidden_small_count_is_derivable_from_what_a_cube_shows(cells):
    """Any table of counts over three dimensions: every line holds, and no hidden count of 1 to 4 is a
    linear combination of the shown ones (marginals included)."""
    cube = Cube(Layout(("d1", "d2", "d3")), counts={k: {"n": v} for k, v in cells.items()})
    base = sorted(cells)
    span = Span(len(base))

    def vector(cell):
        return [int(all(c is ALL or c == b for c, b in zip(cell, key, strict=True))) for key in base]

    for cell in cube.values:
        if not cube.is_hidden(cell, "n"):
            span.add(vector(cell))
    for cell in cube.values:
        n = cube.value(cell, "n")
        assert not (0 < n < 5) or cube.is_hidden(cell, "n")
        if cube.is_hidden(cell, "n") and 0 < n < 5:
            assert not span.derives(vector(cell)), (cell, n)


def test_a_lone_small_cell_takes_its_smallest_neighbour_with_it():
    cube = Cube(Layout(("country",)), counts={("GT",): {"n": 20}, ("HN",): {"n": 3}, ("SV",): {"n": 9}})
    assert {c[0] for c in cube.values if cube.is_hidden(c, "n")} == {"HN", "SV"}
    assert cube.shown(cube.cell(), "n") == 32 and cube.shown(cube.cell(country="SV"), "n") == "<5"


# --- the attack through the API, the pages and the exports -------------------------------------------------

COUNTRIES = {"GT": ("es", 16), "HN": ("es", 3), "SV": ("es", 2), "HT": ("ht", 6)}


@pytest.fixture
def small_places(app, make_user, make_contact):
    """A campaign to 16 Guatemalans, 3 Hondurans, 2 Salvadorans (one on WhatsApp), 6 Haitians (2 of them in
    French, 2 on WhatsApp), over two weeks, with a few replies, an opt-out and failures: small cells
    everywhere an attacker could look. ``truth`` holds every base cell as the test wrote it."""
    officer = make_user("officer")
    campaign = _campaign(officer, key="pequena")
    aviso, poll = sorted(campaign.steps, key=lambda s: s.position)
    truth: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    statuses = ["delivered", "read", "sent", "failed", "delivered", "undelivered"]
    people = []
    for country, (language, size) in COUNTRIES.items():
        for i in range(size):
            lang = "fr" if country == "HT" and i < 2 else language
            channels = ("whatsapp",) if (country == "SV" and i == 0) or (country == "HT" and i in (2, 3)) else ("sms",)
            contact = make_contact(country=country,
                                   language=lang, channels=channels)
            people.append(contact)
    for n, contact in enumerate(people):
        channel = "whatsapp" if contact.channel("whatsapp") else "sms"
        week = MONDAY + timedelta(days=7 * (n % 2))
        for step in (aviso, poll) if contact.country == "GT" else (aviso,):
            status = statuses[(n + step.position) % len(statuses)]
            if status == "read" and channel == "sms":
                status = "delivered"
            reason, code = {"failed": ("failed_at_twilio", 30008), "undelivered": ("undelivered", 30003)}.get(
                status, (None, None))
            out(contact, step, status, channel=channel, code=code, reason=reason, at=week)
            failed = reason_key(reason, code) if status in ("failed", "undelivered") else None
            cell = truth[(step.id, contact.country, contact.language, channel, week.date().isoformat(), failed)]
            cell["targeted"] += 1
            cell["sent"] += 1
            cell["delivered"] += status in ("delivered", "read")
            cell["read"] += status == "read"
            cell["failed"] += status in ("failed", "undelivered")
        if n % 5 == 0:  # a few write back, once, to the first step
            inbound(contact, aviso, "feedback", at=week + timedelta(hours=3))
            truth[(aviso.id, contact.country, contact.language, channel, week.date().isoformat(), None)]["replied"] += 1
        if contact.country == "HN" and n % 5 == 2:
            inbound(contact, aviso, "keyword", "opt_out", at=week + timedelta(hours=4))
            truth[(aviso.id, contact.country, contact.language, channel, week.date().isoformat(), None)][
                "opted_out"] += 1
    db.session.commit()
    return campaign, aviso, poll, {k: dict(v) for k, v in truth.items()}


def _views(campaign, aviso, poll):
    weeks = [(None, None), ("2026-03-02", "2026-03-08"), ("2026-03-09", "2026-03-15")]
    steps = [None, aviso.id, poll.id]
    for cid, step, country, language, channel, (start, end) in product(
            (None, campaign.id), steps, (None, *COUNTRIES), (None, "es", "fr", "ht"), (None, "sms", "whatsapp"), weeks):
        if step and not cid:
            continue
        yield {k: v for k, v in {"campaign": cid, "step": step, "country": country, "language": language,
                                  "channel": channel, "from": start, "to": end}.items() if v is not None}


def _matches(view: dict, key: tuple, base: tuple) -> bool:
    """Whether base cell ``base`` (step, country, language, channel, week, failure reason) counts in a
    view's row."""
    step, country, language, channel, week, reason = base
    checks = {"step": step, "country": country, "language": language, "channel": channel}
    for name, value in checks.items():
        if name in view and view[name] != value:
            return False
    if "from" in view and not (view["from"] <= week <= view["to"]):
        return False
    dim, value = key
    if dim in checks:
        return checks[dim] == value
    if dim == "week":
        return week == value
    if dim == "reason":
        return reason == value
    return True


def test_no_filter_combination_gives_a_small_count_away(app, client, small_places, make_user, api_token, login):
    campaign, aviso, poll, truth = small_places
    headers = api_token(make_user("evaluator"))
    base = sorted(truth, key=repr)
    seen: dict[str, dict[tuple, object]] = defaultdict(dict)  # measure -> vector -> what was shown
    for view in _views(campaign, aviso, poll):
        for by in ("week", "country"):
            answer = client.get("/api/v1/reports/funnel", query_string={**view, "by": by}, headers=headers)
            assert answer.status_code == 200, (view, answer.get_json())
            body = answer.get_json()
            rows = [((None, None), body["total"])] + [((by, r["key"]), r) for r in body["rows"]]
            rows += [(("reason", reason_key(r["reason"], r["error_code"])), {"failed": r["messages"]})
                     for r in body["failed_by_reason"]]
            for key, values in rows:
                if key[0] == "step" and key[1] not in (aviso.id, poll.id):
                    continue
                vector = tuple(int(_matches(view, key, b)) for b in base)
                for measure in ADDITIVE:
                    if measure not in values:
                        continue
                    shown = values[measure]
                    truth_value = sum(truth[b].get(measure, 0) for b, v in zip(base, vector, strict=True) if v)
                    if shown != "<5":
                        assert shown == truth_value, (view, key, measure)
                    seen[measure].setdefault(vector, shown)
                    if shown != "<5":
                        seen[measure][vector] = shown
    derived = []
    for measure, shown in seen.items():
        span = Span(len(base))
        for vector, value in shown.items():
            if value != "<5":
                span.add(list(vector))
        for vector, value in shown.items():
            true = sum(truth[b].get(measure, 0) for b, v in zip(base, vector, strict=True) if v)
            if value == "<5" and 0 < true < 5 and span.derives(list(vector)):
                derived.append((measure, vector, true))
    assert not derived, derived[:5]
    hidden = sum(1 for shown in seen.values() for v in shown.values() if v == "<5")
    assert hidden > 50  # the data set does put small cells in front of the attacker

    # The pages and the exports show the very same cells as the API.
    evaluator = make_user("evaluator")
    login(client, evaluator)
    for country in (None, "HN", "GT"):
        view = {"campaign": campaign.id, **({"country": country} if country else {}), "by": "language"}
        api = client.get("/api/v1/reports/funnel", query_string=view, headers=headers).get_json()
        exported = client.get("/reports/engagement.csv", query_string=view).get_data(as_text=True).lstrip("\ufeff")
        table = list(csv.reader(io.StringIO(exported)))
        total_row = next(r for r in table if r and r[0] == "Total")
        assert [str(api["total"][s]) for s in ADDITIVE[:4]] == total_row[1:5]
        page = client.get("/reports", query_string=view).get_data(as_text=True)
        assert page.count("&lt;5") >= sum(1 for s in ADDITIVE if api["total"][s] == "<5")


def test_no_feedback_filter_combination_gives_a_small_count_away(app, client, make_user, api_token):
    """The same attack on the feedback report: by type, country, month and source under every filter."""
    from whp_c4d.feedback.models import FeedbackItem

    truth: dict[tuple, int] = defaultdict(int)
    plan = [("GT", "es", "sms", 12), ("HN", "es", "sms", 3), ("SV", "es", "whatsapp", 2), ("HT", "ht", "sms", 6),
            ("HT", "ht", "whatsapp", 1)]
    n = 0
    for country, language, channel, size in plan:
        for _ in range(size):
            week = MONDAY + timedelta(days=7 * (n % 2))
            kind = ("question", "observation", None)[n % 3]
            db.session.add(FeedbackItem(source="message", text="¿Dónde pido cita?", country=country,
                                        language=language, channel=channel, received_at=week, updated_at=week,
                                        type=kind))
            truth[(country, language, channel, week.date().isoformat(), kind or "")] += 1
            n += 1
    db.session.commit()
    headers = api_token(make_user("evaluator"))
    base = sorted(truth, key=repr)
    weeks = [(None, None), ("2026-03-02", "2026-03-08"), ("2026-03-09", "2026-03-15")]
    seen: dict[tuple, object] = {}
    for country, language, channel, (start, end) in product((None, "GT", "HN", "SV", "HT"), (None, "es", "ht"),
                                                            (None, "sms", "whatsapp"), weeks):
        view = {k: v for k, v in {"country": country, "language": language, "channel": channel, "from": start,
                                  "to": end}.items() if v is not None}
        body = client.get("/api/v1/reports/feedback", query_string=view, headers=headers).get_json()
        cells = [((), body["total"])]
        cells += [((("type", "" if k == "not_coded" else k),), v) for k, v in body["by_type"].items()]
        cells += [((("country", k),), v) for k, v in body["by_country"].items()]
        for key, shown in cells:
            def counts(b, key=key, view=view):
                c, lang, ch, week, kind = b
                if any(view.get(name) not in (None, value) for name, value in
                       (("country", c), ("language", lang), ("channel", ch))):
                    return False
                if "from" in view and not (view["from"] <= week <= view["to"]):
                    return False
                return all({"type": kind, "country": c}[d] == v for d, v in key)

            vector = tuple(int(counts(b)) for b in base)
            true = sum(truth[b] for b, v in zip(base, vector, strict=True) if v)
            if shown != "<5":
                assert shown == true, (view, key)
                seen[vector] = shown
            else:
                seen.setdefault(vector, shown)
    span = Span(len(base))
    for vector, value in seen.items():
        if value != "<5":
            span.add(list(vector))
    derived = [(vector, sum(truth[b] for b, v in zip(base, vector, strict=True) if v)) for vector, value in seen.items()
               if value == "<5" and 0 < sum(truth[b] for b, v in zip(base, vector, strict=True) if v) < 5
               and span.derives(list(vector))]
    assert not derived, derived[:5]
    assert sum(1 for v in seen.values() if v == "<5") > 10
