"""REST API v1 for two-way messaging: conversations (pseudonyms and counts, no text), one conversation's
messages (texts, officers and administrators only), poll results (small cells for evaluators). Messages
arrive through Twilio's signed webhook."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from test_inbound import sms, twilio_post, whatsapp
from test_inbound_admin import _poll

from whp_c4d.audience.models import Contact, Segment
from whp_c4d.core.models import utcnow
from whp_c4d.extensions import db
from whp_c4d.inbound.models import InboundMessage
from whp_c4d.messaging.models import OutboundMessage

CONVERSATION_KEYS = {"contact_id", "pseudonym", "country", "language", "last_message_at", "messages", "unread",
                     "kinds", "flagged"}
NUMBERS = {"ana": "+50255500401", "bea": "+50255500402", "ciro": "+50255500403", "dora": "+50495512401",
           "eli": "+50255500404", "new": "+50255500499"}


def _no_numbers(response) -> None:
    """No phone number of anybody in the response, whole or without its country code."""
    text = response.get_data(as_text=True)
    for number in NUMBERS.values():
        assert number not in text and number[4:] not in text and number[1:] not in text, number


@pytest.fixture
def talk(app, client, make_user, make_contact):
    """Ana (GT, es) and Bea (GT, fr) answer a poll; Ciro (GT, es) writes, then says BAJA; Dora (HN, es)
    writes a sentence with "parar" in it (flagged); Eli (GT, es) writes on WhatsApp; an unknown number
    writes in English. Every step in time order."""
    db.session.add(Segment(name="Todos", filters={}))
    db.session.commit()
    people = {"ana": make_contact(phone=NUMBERS["ana"], language="es"),
              "bea": make_contact(phone=NUMBERS["bea"], language="fr"),
              "dora": make_contact(phone=NUMBERS["dora"], language="es", country="HN")}  # HN: not asked
    campaign = _poll(make_user("officer"), countries=("GT",))
    people["ciro"] = make_contact(phone=NUMBERS["ciro"])  # after the poll: not asked
    people["eli"] = make_contact(phone=NUMBERS["eli"], channels=("whatsapp",))
    posts = [("ana", sms, "2"), ("bea", sms, "oui"), ("ciro", sms, "Hola, ¿me pueden ayudar con mis papeles?"),
             ("dora", sms, "No entiendo por qué debo parar mi trámite"), ("ciro", sms, "BAJA"),
             ("eli", whatsapp, "¿Dónde queda el albergue?"), ("new", sms, "Hello, I need information please")]
    for who, kind, text in posts:
        assert twilio_post(client, app, kind(NUMBERS[who], text)).status_code == 200
    new = db.session.scalar(sa.select(Contact).where(Contact.status == "inbound_only"))
    people["new"] = new
    return SimpleNamespace(campaign=campaign, step=campaign.steps[0], people=people)


def _get(client, url, headers):
    r = client.get(url, headers=headers)
    _no_numbers(r)
    return r


def test_every_endpoint_needs_a_token(app, client, talk):
    ana = talk.people["ana"]
    for url in ("/api/v1/conversations", f"/api/v1/conversations/{ana.pseudonym}/messages",
                f"/api/v1/polls/{talk.step.id}/results"):
        assert client.get(url).status_code == 401
        assert client.get(url, headers={"Authorization": "Bearer c4d_nope"}).status_code == 401


def test_conversations_list_one_row_per_person_with_counts_and_no_text(app, client, talk, make_user, api_token):
    headers = api_token(make_user("officer"))
    r = _get(client, "/api/v1/conversations", headers)
    assert r.status_code == 200
    body = r.get_json()
    rows = body["data"]
    assert body["next"] is None
    p = talk.people
    assert [row["pseudonym"] for row in rows] == [p[k].pseudonym for k in ("new", "eli", "ciro", "dora", "bea", "ana")]
    assert all(set(row) == CONVERSATION_KEYS for row in rows)
    by = {row["pseudonym"]: row for row in rows}
    ciro = by[p["ciro"].pseudonym]
    assert (ciro["messages"], ciro["unread"], ciro["kinds"], ciro["flagged"]) == (2, 2, ["feedback", "keyword"], False)
    assert (ciro["country"], ciro["language"], ciro["contact_id"]) == ("GT", "es", p["ciro"].id)
    assert ciro["last_message_at"].endswith("Z")
    assert by[p["dora"].pseudonym]["flagged"] is True and by[p["dora"].pseudonym]["country"] == "HN"
    assert by[p["ana"].pseudonym]["kinds"] == ["answer"]
    assert by[p["new"].pseudonym]["language"] == "en"
    texts = json.dumps(body)
    for text in ("papeles", "parar", "albergue", "information", "BAJA"):
        assert text not in texts
    # Opening a message in the inbox makes it read; handling the flag clears it.
    db.session.execute(sa.update(InboundMessage).where(InboundMessage.contact_id == p["dora"].id)
                       .values(read_at=utcnow(), handled_at=utcnow()))
    db.session.commit()
    dora = next(row for row in _get(client, "/api/v1/conversations", headers).get_json()["data"]
                if row["contact_id"] == p["dora"].id)
    assert (dora["unread"], dora["flagged"]) == (0, False)


@pytest.mark.parametrize(("query", "who"), [
    ("country=HN", ["dora"]), ("country=gt&language=fr", ["bea"]), ("language=en", ["new"]),
    ("kind=answer", ["bea", "ana"]), ("kind=keyword", ["ciro"]), ("campaign={campaign}", ["bea", "ana"]),
    ("campaign=999999", []), ("since={future}", []), ("since={past}", ["new", "eli", "ciro", "dora", "bea", "ana"]),
    ("since=2020-01-01&kind=feedback", ["new", "eli", "ciro", "dora"]),
])
def test_conversations_filters(app, client, talk, make_user, api_token, query, who):
    headers = api_token(make_user("admin"))
    query = query.format(campaign=talk.campaign.id, future=(utcnow() + timedelta(hours=1)).date().isoformat() + "T23:59:59Z",
                         past=(utcnow() - timedelta(hours=1)).isoformat().replace("+00:00", "Z"))
    rows = _get(client, "/api/v1/conversations?" + query, headers).get_json()["data"]
    assert [row["contact_id"] for row in rows] == [talk.people[k].id for k in who]


@pytest.mark.parametrize(("query", "field"), [
    ("kind=shouting", "kind"), ("since=yesterday", "since"), ("country=ZZ", "country"), ("campaign=abc", "campaign"),
    ("after=not-a-cursor", "after"),
])
def test_conversations_invalid_filters_get_400_naming_the_parameter(app, client, talk, make_user, api_token,
                                                                    query, field):
    headers = api_token(make_user("officer"))
    r = client.get("/api/v1/conversations?" + query, headers=headers)
    assert r.status_code == 400 and r.get_json()["error"] == "validation"
    assert set(r.get_json()["fields"]) == {field}


def test_conversations_paging_walks_every_conversation_once_keeping_filters(app, client, talk, make_user, api_token):
    headers = api_token(make_user("officer"))
    seen, url, pages = [], "/api/v1/conversations?limit=2&country=GT", 0
    while url:
        body = _get(client, url, headers).get_json()
        seen += [row["contact_id"] for row in body["data"]]
        url = body["next"]
        assert url is None or "country=GT" in url
        pages += 1
    p = talk.people
    assert seen == [p[k].id for k in ("new", "eli", "ciro", "bea", "ana")] and pages == 3


def test_evaluators_list_conversations_but_read_no_messages_partners_neither(app, client, talk, make_user, api_token):
    evaluator = api_token(make_user("evaluator"))
    rows = _get(client, "/api/v1/conversations", evaluator).get_json()["data"]
    assert len(rows) == 6 and all(set(row) == CONVERSATION_KEYS for row in rows)
    ana = talk.people["ana"]
    assert client.get(f"/api/v1/conversations/{ana.pseudonym}/messages", headers=evaluator).status_code == 403
    partner = api_token(make_user("partner"))
    assert client.get("/api/v1/conversations", headers=partner).status_code == 403
    assert client.get(f"/api/v1/conversations/{ana.pseudonym}/messages", headers=partner).status_code == 403


def test_officers_limited_to_countries_see_only_those_conversations(app, client, talk, make_user, api_token):
    headers = api_token(make_user("officer", countries=["HN"]))
    rows = _get(client, "/api/v1/conversations", headers).get_json()["data"]
    assert [row["contact_id"] for row in rows] == [talk.people["dora"].id]
    ana = talk.people["ana"]
    assert client.get(f"/api/v1/conversations/{ana.pseudonym}/messages", headers=headers).status_code == 404
    assert client.get(f"/api/v1/conversations/{talk.people['dora'].id}/messages", headers=headers).status_code == 200


def test_a_conversation_s_messages_both_ways_with_texts_for_officers(app, client, talk, make_user, api_token):
    headers = api_token(make_user("officer"))
    ana = talk.people["ana"]
    db.session.execute(sa.update(OutboundMessage).where(OutboundMessage.purpose == "reply").values(
        sent_at=utcnow(), status="delivered"))  # the thanks left
    db.session.commit()
    body = _get(client, f"/api/v1/conversations/{ana.pseudonym}/messages", headers).get_json()
    assert body["contact"] == {"id": ana.id, "pseudonym": ana.pseudonym, "country": "GT", "language": "es"}
    assert [(m["direction"], m["text"]) for m in body["data"]] == [
        ("out", "Gracias."), ("in", "2"), ("out", "¿Conoces el albergue más cercano? 1 Sí 2 No")]
    answer = body["data"][1]
    assert (answer["kind"], answer["action"], answer["campaign_id"], answer["step_id"], answer["channel"]) == (
        "answer", "poll", talk.campaign.id, talk.step.id, "sms")
    assert answer["read"] is False and answer["handled"] is False
    assert body["data"][2]["purpose"] == "polls" and body["data"][0]["purpose"] == "reply"
    by_id = _get(client, f"/api/v1/conversations/{ana.id}/messages", headers).get_json()
    assert by_id == body
    lower = _get(client, f"/api/v1/conversations/{ana.pseudonym.lower()}/messages", headers).get_json()
    assert lower == body
    # Reading through the API marks nothing read.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(InboundMessage).where(
        InboundMessage.read_at.is_not(None))) == 0
    for ref in ("C-ZZZZZZ", "abc", "999999", "-1"):
        assert client.get(f"/api/v1/conversations/{ref}/messages", headers=headers).status_code == 404


def test_a_conversation_s_messages_page_backwards_once_each(app, client, talk, make_user, api_token):
    headers = api_token(make_user("admin"))
    ciro = talk.people["ciro"]
    db.session.execute(sa.update(OutboundMessage).where(OutboundMessage.purpose == "reply").values(
        sent_at=utcnow()))
    db.session.commit()
    full = _get(client, f"/api/v1/conversations/{ciro.pseudonym}/messages", headers).get_json()["data"]
    # Both answers (acknowledgement, opt-out confirmation) left at the same instant: pages must not lose one.
    assert [m["direction"] for m in full] == ["out", "out", "in", "in"] and full[0]["at"] == full[1]["at"]
    seen, url = [], f"/api/v1/conversations/{ciro.pseudonym}/messages?limit=1"
    while url:
        body = _get(client, url, headers).get_json()
        seen += body["data"]
        url = body["next"]
    assert seen == full
    assert client.get(f"/api/v1/conversations/{ciro.pseudonym}/messages?before=xyz",
                      headers=headers).status_code == 400


def test_poll_results_exact_for_officers_small_cells_for_evaluators(app, client, talk, make_user, api_token):
    url = f"/api/v1/polls/{talk.step.id}/results"
    exact = _get(client, url, api_token(make_user("officer"))).get_json()
    assert exact["small_cells_suppressed"] is False and exact["total"] == 2 and exact["answered"] == 2
    assert [(c["number"], c["label"], c["count"]) for c in exact["choices"]] == [(1, "Sí", 1), (2, "No", 1)]
    assert exact["choices"][0]["by_language"] == {"es": 0, "fr": 1}
    assert exact["choices"][1]["by_country"] == {"GT": 1} and exact["choices"][1]["by_channel"] == {"sms": 1}
    assert exact["not_understood"]["count"] == 0
    assert exact["question"].startswith("¿Conoces") and exact["base_language"] == "es"
    assert exact["campaign_id"] == talk.campaign.id and exact["occurrences"] == ["drip"]
    hidden = _get(client, url, api_token(make_user("evaluator"))).get_json()
    assert hidden["small_cells_suppressed"] is True and hidden["total"] == "<5"
    assert [c["count"] for c in hidden["choices"]] == ["<5", "<5"]
    assert hidden["choices"][0]["by_language"] == {"es": 0, "fr": "<5"}
    assert hidden["not_understood"]["count"] == 0
    assert _get(client, url + "?occurrence=2031-01-01", api_token(make_user("admin"))).get_json()["total"] == 0


def test_poll_results_of_something_that_is_not_a_poll_are_404(app, client, talk, make_user, api_token):
    from test_outbox import _campaign

    headers = api_token(make_user("officer"))
    message_step = _campaign(make_user("officer"), key="mensaje").steps[0]
    assert client.get(f"/api/v1/polls/{message_step.id}/results", headers=headers).status_code == 404
    assert client.get("/api/v1/polls/999999/results", headers=headers).status_code == 404
    assert client.get(f"/api/v1/polls/{talk.step.id}/results", headers=api_token(make_user("partner"))).status_code == 403


def test_openapi_document_describes_conversations_and_poll_results(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert {"/api/v1/conversations", "/api/v1/conversations/{ref}/messages",
            "/api/v1/polls/{step_id}/results"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert {"Conversation", "ConversationMessage", "PollResults"} <= set(schemas)
    assert set(schemas["Conversation"]["properties"]) == CONVERSATION_KEYS
    assert "text" not in schemas["Conversation"]["properties"]
    params = {p["name"] for p in spec["paths"]["/api/v1/conversations"]["get"]["parameters"]}
    assert params == {"limit", "after", "country", "language", "campaign", "kind", "since"}
