"""Keyword administration (add, refuse duplicates, switch built-in words off and on, delete added ones) and
poll results (grouped counts, labels from the base language, small cells for evaluators), through the pages
and Twilio's signed webhook."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from test_inbound import POLL, sms, twilio_post, whatsapp
from test_outbox import _campaign, _due_now

from whp_c4d.audience.models import Contact, ContactChannel, Segment
from whp_c4d.core.models import utcnow
from whp_c4d.extensions import db
from whp_c4d.inbound.models import InboundMessage, Keyword, PollResponse
from whp_c4d.inbound.results import poll_results
from whp_c4d.messaging.models import OutboundMessage


@pytest.fixture
def admin_client(app, make_user, login):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(client, make_user("admin"))
    return client


def _keyword(word: str) -> Keyword | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(Keyword).where(Keyword.word == word))


def _opted_out(contact: Contact) -> bool:
    db.session.expire_all()
    return db.session.get(ContactChannel, (contact.id, "sms")).opted_out_at is not None


# --- keywords ------------------------------------------------------------------------------------------

def test_the_keywords_page_lists_every_word_by_action_and_explains_matching(app, admin_client):
    page = admin_client.get("/admin/keywords").get_data(as_text=True)
    assert "<code>baja</code>" in page and "<code>darme de baja</code>" in page and "<code>espanol</code>" in page
    assert page.index('id="kw-opt_out"') < page.index("<code>baja</code>") < page.index('id="kw-opt_in"')
    assert "allows one typo in words of 5 letters or more" in page and "the whole message" in page
    assert 'href="/admin/keywords"' in page  # linked from the administration menu
    assert "built-in" in page and "Switch off" in page


def test_an_added_keyword_is_understood_in_inbound_messages(app, client, admin_client, make_contact):
    person = make_contact(phone="+50255500201")
    r = admin_client.post("/admin/keywords", data={"word": "¡Salir!", "action": "opt_out", "language": "es"})
    assert r.status_code == 302
    row = _keyword("salir")
    assert row is not None and row.action == "opt_out" and not row.built_in and row.active
    assert "Keyword “salir” added." in admin_client.get("/admin/keywords").get_data(as_text=True)
    twilio_post(client, app, sms("+50255500201", "SALIR"))
    assert _opted_out(person)


def test_a_language_keyword_switches_to_its_target_language(app, client, admin_client, make_contact):
    person = make_contact(phone="+50255500202", language="es")
    r = admin_client.post("/admin/keywords", data={"word": "Inglés", "action": "language", "language": "es",
                                                   "value": "en"})
    assert r.status_code == 302
    row = _keyword("ingles")
    assert (row.language, row.value) == ("es", "en")
    twilio_post(client, app, sms("+50255500202", "ingles"))
    db.session.expire_all()
    assert db.session.get(Contact, person.id).language == "en"
    # Without a target, the word's own language is the target.
    admin_client.post("/admin/keywords", data={"word": "kreyol souple", "action": "language", "language": "ht"})
    assert _keyword("kreyol souple").value == "ht"


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"word": "BAJA", "action": "help", "language": "es"}, "word",
     "“baja” is already a keyword: a word can do only one thing. It already means “Stop (opt out)”."),
    ({"word": "¡¿!?", "action": "help", "language": "es"}, "word", "“¡¿!?” cannot be a keyword"),
    ({"word": "x" * 61, "action": "help", "language": "es"}, "word", "cannot be a keyword"),
    ({"word": "socorro", "action": "", "language": "es"}, "action", "Choose what the keyword does."),
    ({"word": "socorro", "action": "help", "language": "xx"}, "language", "Unknown or disabled language “xx”."),
    ({"word": "papiamento", "action": "language", "language": "es", "value": "pap"}, "value",
     "Unknown or disabled language “pap”."),
])
def test_a_duplicate_or_invalid_keyword_is_refused_with_a_clear_message(app, admin_client, form, field, message):
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Keyword))
    r = admin_client.post("/admin/keywords", data=form)
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    error = re.search(rf'<p class="error" id="kw-{field}-err">([^<]*)</p>', page)
    assert error and message in error.group(1).replace("&#34;", '"'), page[:200]
    assert f'value="{form["word"]}"' in page.replace("&#39;", "'") or form["word"].startswith("x")  # kept
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Keyword)) == before


def test_a_duplicate_of_a_switched_off_word_says_so(app, admin_client):
    admin_client.post(f"/admin/keywords/{_keyword('alto').id}/active", data={"active": "n"})
    r = admin_client.post("/admin/keywords", data={"word": "alto", "action": "help", "language": "es"})
    assert r.status_code == 400 and "It already means “Stop (opt out)” (switched off)." in r.get_data(as_text=True)


def test_a_word_one_typo_from_another_action_s_word_is_added_with_a_warning(app, admin_client):
    r = admin_client.post("/admin/keywords", data={"word": "ayudas", "action": "real", "language": "es"},
                          follow_redirects=True)
    page = r.get_data(as_text=True)
    assert "Keyword “ayudas” added." in page and "is one typo away from “ayuda”" in page


def test_a_built_in_keyword_switched_off_no_longer_opts_out_and_switched_on_again_does(
        app, client, admin_client, make_contact):
    person = make_contact(phone="+50255500203")
    baja = _keyword("baja")
    assert baja.built_in
    r = admin_client.post(f"/admin/keywords/{baja.id}/active", data={"active": "n"}, follow_redirects=True)
    assert "“baja” is off" in r.get_data(as_text=True)
    assert _keyword("baja").active is False
    assert twilio_post(client, app, sms("+50255500203", "BAJA")).status_code == 200
    assert not _opted_out(person)
    message = db.session.scalar(sa.select(InboundMessage))
    assert message.kind == "feedback" and message.action is None
    # Other Spanish stop words still work, so switching one off never takes opting out away.
    admin_client.post(f"/admin/keywords/{baja.id}/active", data={"active": "y"})
    assert _keyword("baja").active is True
    twilio_post(client, app, sms("+50255500203", "Baja"))
    assert _opted_out(person)


def test_the_last_stop_word_of_a_language_cannot_be_switched_off(app, admin_client):
    stoppen, afmelden, uitschrijven = (_keyword(w) for w in ("stoppen", "afmelden", "uitschrijven"))
    for row in (stoppen, afmelden):
        admin_client.post(f"/admin/keywords/{row.id}/active", data={"active": "n"})
    r = admin_client.post(f"/admin/keywords/{uitschrijven.id}/active", data={"active": "n"}, follow_redirects=True)
    assert "last stop word in its language" in r.get_data(as_text=True)
    assert _keyword("uitschrijven").active is True
    # An added stop word lets the last built-in one go off.
    admin_client.post("/admin/keywords", data={"word": "hou op", "action": "opt_out", "language": "nl"})
    admin_client.post(f"/admin/keywords/{uitschrijven.id}/active", data={"active": "n"})
    assert _keyword("uitschrijven").active is False
    r = admin_client.post(f"/admin/keywords/{_keyword('hou op').id}/delete", follow_redirects=True)
    assert "last stop word in its language" in r.get_data(as_text=True) and _keyword("hou op") is not None


def test_an_added_keyword_can_be_deleted_a_built_in_one_cannot(app, admin_client):
    from whp_c4d.auth.models import AuditEvent

    admin_client.post("/admin/keywords", data={"word": "auxilio", "action": "help", "language": "es"})
    row = _keyword("auxilio")
    page = admin_client.get("/admin/keywords").get_data(as_text=True)
    assert f'/admin/keywords/{row.id}/delete' in page
    assert f'/admin/keywords/{_keyword("ayuda").id}/delete' not in page  # no delete button on built-in words
    r = admin_client.post(f"/admin/keywords/{row.id}/delete", follow_redirects=True)
    assert "Keyword “auxilio” deleted." in r.get_data(as_text=True) and _keyword("auxilio") is None
    ayuda = _keyword("ayuda")
    r = admin_client.post(f"/admin/keywords/{ayuda.id}/delete", follow_redirects=True)
    assert "Built-in keywords cannot be deleted" in r.get_data(as_text=True) and _keyword("ayuda") is not None
    assert admin_client.post("/admin/keywords/999999/delete").status_code == 404
    actions = set(db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("keyword.%"))))
    assert actions == {"keyword.added", "keyword.deleted"}


@pytest.mark.parametrize("role", ["officer", "evaluator", "partner"])
def test_only_administrators_manage_keywords(app, make_user, login, role):
    client = app.test_client()
    login(client, make_user(role))
    baja = _keyword("baja")
    assert client.get("/admin/keywords").status_code == 403
    assert client.post("/admin/keywords", data={"word": "salir", "action": "opt_out",
                                                "language": "es"}).status_code == 403
    assert client.post(f"/admin/keywords/{baja.id}/active", data={"active": "n"}).status_code == 403
    assert client.post(f"/admin/keywords/{baja.id}/delete").status_code == 403
    assert _keyword("salir") is None and _keyword("baja").active
    assert 'href="/admin/keywords"' not in client.get("/").get_data(as_text=True)


# --- poll results ----------------------------------------------------------------------------------------

def _poll(author, countries=("GT", "HN")):
    """The five-language poll of test_inbound, expanded and delivered to everybody in the segment."""
    campaign = _campaign(author, key="sondeo", name="Sondeo", countries=list(countries),
                         languages=["es", "en", "fr", "ht", "nl"], steps=[POLL])
    _due_now(campaign)
    db.session.execute(sa.update(OutboundMessage).values(status="delivered", sent_at=utcnow() - timedelta(minutes=5),
                                                         provider_sid=None))
    db.session.commit()
    return campaign


@pytest.fixture
def answered_poll(app, client, make_user, make_contact):
    """Twelve people answer: seven say 2 (in five languages, one on WhatsApp), three say 1, two twice
    say something we do not understand."""
    db.session.add(Segment(name="Todos", filters={}))
    db.session.commit()
    people = [
        ("+50255500301", "GT", "es", "2"), ("+50255500302", "GT", "es", "dos"), ("+50255500303", "GT", "fr", "deux"),
        ("+50255500304", "GT", "ht", "de"), ("+50255500305", "GT", "nl", "twee"), ("+50495512301", "HN", "es", "No"),
        ("+50495512302", "HN", "es", "2."), ("+50255500306", "GT", "es", "1"), ("+50255500307", "GT", "en", "yes"),
        ("+50495512303", "HN", "es", "sí"), ("+50255500308", "GT", "es", "quizás"),
        ("+50495512304", "HN", "es", "no sé"),
    ]
    contacts = [make_contact(phone=p, country=c, language=lang) for p, c, lang, _a in people]
    campaign = _poll(make_user("officer"))
    for phone, _c, _l, answer in people:
        form = whatsapp(phone, answer) if answer == "2." else sms(phone, answer)
        assert twilio_post(client, app, form).status_code == 200
        if answer in ("quizás", "no sé"):  # asked again once, then kept as feedback
            twilio_post(client, app, sms(phone, "no lo tengo claro"))
    return campaign, contacts


def test_poll_results_count_each_choice_by_language_country_and_channel(app, answered_poll):
    campaign, _contacts = answered_poll
    step = campaign.steps[0]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PollResponse)) == 12
    r = poll_results(step.id)
    assert [(c.number, c.label, c.count) for c in r.choices] == [(1, "Sí", 3), (2, "No", 7)]
    no = r.choices[1]
    assert no.by["language"] == {"es": 4, "fr": 1, "ht": 1, "nl": 1}
    assert no.by["country"] == {"GT": 5, "HN": 2}
    assert no.by["channel"] == {"sms": 6, "whatsapp": 1}
    assert r.choices[0].by["language"] == {"es": 2, "en": 1}
    assert r.not_understood.count == 2 and r.not_understood.by["country"] == {"GT": 1, "HN": 1}
    assert (r.total, r.answered) == (12, 10)
    assert r.values == {"language": ["en", "es", "fr", "ht", "nl"], "country": ["GT", "HN"],
                        "channel": ["sms", "whatsapp"]}
    assert r.question.startswith("¿Conoces el albergue")
    assert poll_results(999999) is None


def test_the_results_page_shows_exact_counts_to_officers_and_small_cells_to_evaluators(
        app, answered_poll, make_user, login):
    campaign, _contacts = answered_poll
    step = campaign.steps[0]
    url = f"/campaigns/{campaign.id}/steps/{step.id}/results"
    officer = app.test_client()
    login(officer, make_user("officer"))
    detail = officer.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert f'href="{url}"' in detail  # reachable from the campaign page
    page = officer.get(url).get_data(as_text=True)
    assert "¿Conoces el albergue" in page and "Sí" in page
    assert re.search(r'<td class="num">7</td>\s*<td class="num">70\s?%</td>', page)
    assert re.search(r'<td class="num">3</td>\s*<td class="num">30\s?%</td>', page)
    assert '<meter class="bar" min="0" max="10" value="7"' in page
    assert "&lt;5" not in page
    evaluator = app.test_client()
    login(evaluator, make_user("evaluator"))
    page = evaluator.get(url).get_data(as_text=True)
    assert '<td class="num">&lt;5</td>' in page
    # 7 "No" would give the 3 "Sí" away (10 valid answers minus 7): it is hidden with them, and no share shows.
    assert not re.search(r'<td class="num">7</td>', page) and not re.search(r"70\s?%", page)
    assert '<span class="value">12</span>' in page  # everybody who replied stays exact
    assert 'value="3"' not in page and not re.search(r"30\s?%", page)  # no share gives a small cell away
    cells = re.findall(r'<td class="num">(?:<strong>)?([^<]*)(?:</strong>)?</td>', page)
    assert not {"1", "2", "3", "4"} & set(cells)


def test_the_results_page_is_only_for_poll_steps_of_that_campaign(app, answered_poll, make_user, login):
    campaign, _contacts = answered_poll
    step = campaign.steps[0]
    client = app.test_client()
    login(client, make_user("officer"))
    other = _campaign(make_user("officer"), key="otra")
    assert client.get(f"/campaigns/{other.id}/steps/{step.id}/results").status_code == 404
    assert client.get(f"/campaigns/{other.id}/steps/{other.steps[0].id}/results").status_code == 404  # a message
    assert f"/steps/{other.steps[0].id}/results" not in client.get(f"/campaigns/{other.id}").get_data(as_text=True)
    partner = app.test_client()
    login(partner, make_user("partner"))
    assert partner.get(f"/campaigns/{campaign.id}/steps/{step.id}/results").status_code == 403


def test_a_poll_without_answers_says_so(app, make_user, login, make_contact):
    db.session.add(Segment(name="Todos", filters={}))
    db.session.commit()
    campaign = _campaign(make_user("officer"), languages=["es", "en", "fr", "ht", "nl"], steps=[POLL])
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(client, make_user("evaluator"))
    page = client.get(f"/campaigns/{campaign.id}/steps/{campaign.steps[0].id}/results").get_data(as_text=True)
    assert "No answers yet." in page
