"""The officers' inbox: conversations by contact with unread counts and filters, scoping by role and
country, reading marks read, the audited number reveal, manual replies through the outbox (SMS; WhatsApp
only inside the 24-hour window), and "mark as handled". Messages arrive as signed Twilio webhooks."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from test_inbound import sms, twilio_post, whatsapp

from whp_c4d.audience.models import ContactChannel
from whp_c4d.auth.models import AuditEvent
from whp_c4d.core.models import utcnow
from whp_c4d.extensions import db
from whp_c4d.inbound import inbox_services as inbox
from whp_c4d.inbound.models import InboundMessage
from whp_c4d.messaging.models import OutboundMessage

GT1, GT2, HN1 = "+50255500201", "+50255500202", "+50495500203"


@pytest.fixture(autouse=True)
def _english(client):
    """The pages' words are checked in English (the app's default language is Spanish)."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


@pytest.fixture
def officer_client(app, make_user, login):
    officer = make_user("officer")
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(client, officer)
    return officer, client


def _write(client, app, number: str, body: str, *, channel: str = "sms"):
    form = whatsapp(number, body) if channel == "whatsapp" else sms(number, body)
    if number.startswith("+504"):
        form["FromCountry"] = "HN"
    assert twilio_post(client, app, form).status_code == 200


def _inbound(contact_id: int) -> list[InboundMessage]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(InboundMessage).where(InboundMessage.contact_id == contact_id)
                                   .order_by(InboundMessage.id)))


def _manual_replies(contact_id: int) -> list[OutboundMessage]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(OutboundMessage).where(
        OutboundMessage.contact_id == contact_id, OutboundMessage.occurrence.like("manual:%"))))


def _audits(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


# --- the list -------------------------------------------------------------------------------------------

def test_the_list_shows_one_row_per_person_with_unread_counts_excerpts_and_never_a_number(
        app, client, make_contact, officer_client):
    _officer, web = officer_client
    ana = make_contact(phone=GT1)
    ben = make_contact(phone=GT2, language="en")
    _write(client, app, GT1, "Hola, ¿cuándo abre la oficina de Tapachula?")
    _write(client, app, GT1, "¿Y qué documentos necesito llevar?")
    _write(client, app, GT2, "Hello, is this service free?")
    page = web.get("/inbox")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert ana.pseudonym in html and ben.pseudonym in html
    assert "¿Y qué documentos necesito llevar?" in html  # Ana's last message is the excerpt
    assert "Tapachula" not in html  # ...not her first one
    assert html.index(ben.pseudonym) < html.index(ana.pseudonym)  # newest conversation first
    assert 'title="Unread messages">2<' in html and 'title="Unread messages">1<' in html
    for number in (GT1, GT2, GT1[4:], GT2[4:], "5550 0201", "55500201"):
        assert number not in html
    # The navigation counts unread messages: three.
    assert '<span class="nav-count" title="Unread messages">3</span>' in html


def test_grouping_and_counts_come_from_one_grouped_query(app, client, make_user, make_contact):
    for i in range(3):
        make_contact(phone=f"+5025550030{i}")
        for text in ("uno", "dos"):
            _write(client, app, f"+5025550030{i}", f"{text} {i}")
    rows, total, more = inbox.conversations(make_user("officer"), inbox.InboxFilters(), page=1, page_size=2)
    assert total == 3 and more is True and len(rows) == 2
    assert all(r.total == 2 and r.unread == 2 and r.unhandled == 2 and r.channels == ["sms"] for r in rows)
    assert [r.excerpt for r in rows] == ["dos 2", "dos 1"]
    rows, _total, more = inbox.conversations(make_user("officer"), inbox.InboxFilters(), page=2, page_size=2)
    assert [r.excerpt for r in rows] == ["dos 0"] and more is False


def test_filters_by_country_language_kind_flag_campaign_and_unhandled(app, client, make_contact, officer_client):
    _officer, web = officer_client
    gt = make_contact(phone=GT1)
    en = make_contact(phone=GT2, language="en")
    hn = make_contact(phone=HN1, country="HN")
    _write(client, app, GT1, "BAJA")  # a keyword
    _write(client, app, GT2, "Please stop sending me these messages, I will stop reading")  # feedback, flagged
    _write(client, app, HN1, "Gracias por la información")  # feedback
    db.session.execute(sa.update(InboundMessage).where(InboundMessage.contact_id == hn.id).values(campaign_id=4242))
    db.session.commit()

    def shown(query: str) -> set[str]:
        html = web.get("/inbox?" + query).get_data(as_text=True)
        return {c.pseudonym for c in (gt, en, hn) if c.pseudonym in html}

    assert shown("") == {gt.pseudonym, en.pseudonym, hn.pseudonym}
    assert shown("country=HN") == {hn.pseudonym}
    assert shown("language=en") == {en.pseudonym}
    assert shown("kind=keyword") == {gt.pseudonym}
    assert shown("kind=feedback") == {en.pseudonym, hn.pseudonym}
    assert shown("flagged=1") == {en.pseudonym}
    assert shown("campaign=4242") == {hn.pseudonym}
    assert shown("kind=feedback&country=GT") == {en.pseudonym}
    assert shown("kind=nonsense") == {gt.pseudonym, en.pseudonym, hn.pseudonym}  # unknown values are ignored
    web.post(f"/inbox/{gt.id}/handled")
    assert gt.pseudonym in web.get("/inbox").get_data(as_text=True)  # the flash names it, once
    assert shown("unhandled=1") == {en.pseudonym, hn.pseudonym}
    assert "No conversation matches these filters." in web.get("/inbox?country=MX").get_data(as_text=True)


# --- who may see what -----------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["evaluator", "partner"])
def test_evaluators_and_partners_are_refused_everywhere_in_the_inbox(app, client, make_user, make_contact, login,
                                                                    role):
    contact = make_contact(phone=GT1)
    _write(client, app, GT1, "Hola")
    web = app.test_client()
    web.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(web, make_user(role))
    assert web.get("/inbox").status_code == 403
    assert web.get(f"/inbox/{contact.id}").status_code == 403
    for action in ("reveal", "handled", "reply"):
        assert web.post(f"/inbox/{contact.id}/{action}", data={"channel": "sms", "body": "x"}).status_code == 403
    assert 'href="/inbox"' not in web.get("/").get_data(as_text=True)
    assert _manual_replies(contact.id) == [] and all(m.read_at is None for m in _inbound(contact.id))


def test_an_officer_limited_to_a_country_sees_and_opens_only_its_conversations(
        app, client, make_user, make_contact, login):
    gt = make_contact(phone=GT1)
    hn = make_contact(phone=HN1, country="HN")
    _write(client, app, GT1, "Hola desde Guatemala")
    _write(client, app, HN1, "Hola desde Honduras")
    web = app.test_client()
    web.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(web, make_user("officer", countries=["HN"]))
    html = web.get("/inbox").get_data(as_text=True)
    assert hn.pseudonym in html and gt.pseudonym not in html and "Guatemala" not in html.split("<table")[1]
    assert '<span class="nav-count" title="Unread messages">1</span>' in html
    assert web.get(f"/inbox/{gt.id}").status_code == 404
    for action in ("reveal", "handled", "reply"):
        assert web.post(f"/inbox/{gt.id}/{action}", data={"channel": "sms", "body": "x"}).status_code == 404
    assert web.get(f"/inbox/{hn.id}").status_code == 200
    assert all(m.read_at is None and m.handled_at is None for m in _inbound(gt.id))


# --- one conversation -----------------------------------------------------------------------------------

def test_opening_a_conversation_shows_both_directions_and_marks_it_read(app, client, make_contact, officer_client):
    _officer, web = officer_client
    contact = make_contact(phone=GT1)
    _write(client, app, GT1, "¿Esto es real?")
    _write(client, app, GT1, "Necesito ayuda con mi permiso")
    assert all(m.read_at is None for m in _inbound(contact.id))
    html = web.get(f"/inbox/{contact.id}").get_data(as_text=True)
    assert "Necesito ayuda con mi permiso" in html
    assert "Automatic reply" in html  # our answers are in the thread too, with their status
    assert html.count('class="badge new"') == 2
    assert all(m.read_at is not None for m in _inbound(contact.id))
    again = web.get(f"/inbox/{contact.id}").get_data(as_text=True)
    assert 'class="badge new"' not in again
    assert 'class="badge unread-count"' not in web.get("/inbox").get_data(as_text=True)


def test_the_number_appears_only_after_an_audited_reveal(app, client, make_contact, officer_client):
    officer, web = officer_client
    contact = make_contact(phone=GT1)
    _write(client, app, GT1, "Hola")
    assert GT1 not in web.get(f"/inbox/{contact.id}").get_data(as_text=True)
    assert _audits("contact.number_revealed") == []
    revealed = web.post(f"/inbox/{contact.id}/reveal")
    assert revealed.status_code == 200 and GT1 in revealed.get_data(as_text=True)
    [event] = _audits("contact.number_revealed")
    assert event.actor_id == officer.id and event.target_id == contact.id and GT1 not in str(event.details)
    assert GT1 not in web.get(f"/inbox/{contact.id}").get_data(as_text=True)


def test_mark_as_handled_records_who_and_when_and_is_audited_without_text(app, client, make_contact, officer_client):
    officer, web = officer_client
    contact = make_contact(phone=GT1)
    _write(client, app, GT1, "Quiero información sobre el programa")
    response = web.post(f"/inbox/{contact.id}/handled")
    assert response.status_code == 302 and response.headers["Location"].endswith("/inbox")
    [message] = _inbound(contact.id)
    assert message.handled_at is not None and message.handled_by_id == officer.id and message.read_at is not None
    [event] = _audits("inbox.handled")
    assert event.target_id == contact.id and event.details == {"messages": 1}
    assert "handled" in web.get("/inbox").get_data(as_text=True)
    web.post(f"/inbox/{contact.id}/handled")  # nothing left: no second audit event
    assert len(_audits("inbox.handled")) == 1


# --- manual replies -------------------------------------------------------------------------------------

def test_a_reply_by_sms_is_queued_in_the_outbox_as_a_reply_and_audited_without_text(
        app, client, make_contact, officer_client):
    officer, web = officer_client
    contact = make_contact(phone=GT1)
    _write(client, app, GT1, "¿Dónde queda la oficina?")
    text = "Hola, la oficina está en la 6a avenida, zona 1. Abre de 8 a 16 h."
    response = web.post(f"/inbox/{contact.id}/reply", data={"channel": "sms", "body": text, "handled": "y"})
    assert response.status_code == 302
    [row] = _manual_replies(contact.id)
    [last] = _inbound(contact.id)
    assert (row.purpose, row.channel, row.status, row.step_id, row.body) == ("reply", "sms", "pending", None, text)
    assert row.occurrence == f"manual:{last.id}" and row.language == "es" and row.country == "GT"
    assert row.segments == 1 and row.expires_at - row.earliest_at == timedelta(hours=1)
    assert last.handled_by_id == officer.id  # "mark as handled" was ticked
    [event] = _audits("inbox.replied")
    assert event.actor_id == officer.id and event.target_id == contact.id
    assert event.details["channel"] == "sms" and text not in str(event.details) and GT1 not in str(event.details)
    # A double click queues nothing more.
    web.post(f"/inbox/{contact.id}/reply", data={"channel": "sms", "body": text})
    assert len(_manual_replies(contact.id)) == 1
    assert "Reply by an officer" in web.get(f"/inbox/{contact.id}").get_data(as_text=True)


def test_the_dispatcher_sends_a_manual_reply_without_campaign_consent(app, client, officer_client):
    from whp_c4d.audience.models import Contact
    from whp_c4d.messaging.dispatcher import Dispatcher

    _officer, web = officer_client
    _write(client, app, GT1, "Hola, ¿quiénes son ustedes?")  # an unknown number: inbound only, no consent
    contact = db.session.scalar(sa.select(Contact))
    assert contact.status == "inbound_only"
    web.post(f"/inbox/{contact.id}/reply", data={"channel": "sms", "body": "Somos el programa regional."})
    [row] = _manual_replies(contact.id)
    dispatcher = Dispatcher(app, pool_size=1)
    try:
        channel, fields, units = dispatcher._decide(row, contact, utcnow())
    finally:
        dispatcher.stop()
    assert channel == "sms" and fields["body"] == "Somos el programa regional." and units == 1


def test_whatsapp_free_text_goes_inside_the_window_and_is_refused_with_the_reason_outside(
        app, client, make_contact, officer_client):
    _officer, web = officer_client
    contact = make_contact(phone=GT1, channels=("sms", "whatsapp"))
    _write(client, app, GT1, "Hola por WhatsApp", channel="whatsapp")
    page = web.get(f"/inbox/{contact.id}").get_data(as_text=True)
    assert 'name="channel" value="whatsapp"' in page and "free text until" in page
    assert web.post(f"/inbox/{contact.id}/reply", data={"channel": "whatsapp", "body": "Hola 👋"}).status_code == 302
    [row] = _manual_replies(contact.id)
    assert row.channel == "whatsapp" and row.purpose == "reply" and row.segments == 1

    # 25 hours later the window has closed.
    state = db.session.get(ContactChannel, (contact.id, "whatsapp"))
    state.last_inbound_at = utcnow() - timedelta(hours=25)
    db.session.commit()
    page = web.get(f"/inbox/{contact.id}").get_data(as_text=True)
    assert 'name="channel" value="whatsapp"' not in page and 'name="channel" value="sms"' in page
    assert "The 24-hour WhatsApp window closed at" in page and "You can answer by SMS instead." in page
    refused = web.post(f"/inbox/{contact.id}/reply", data={"channel": "whatsapp", "body": "¿Sigue ahí?"})
    assert refused.status_code == 400 and "The 24-hour WhatsApp window closed at" in refused.get_data(as_text=True)
    assert len(_manual_replies(contact.id)) == 1
    assert web.post(f"/inbox/{contact.id}/reply", data={"channel": "sms", "body": "¿Sigue ahí?"}).status_code == 302
    assert sorted(r.channel for r in _manual_replies(contact.id)) == ["sms", "whatsapp"]


def test_a_whatsapp_only_person_outside_the_window_gets_no_reply_form(app, client, make_contact, officer_client):
    _officer, web = officer_client
    contact = make_contact(phone=GT1, channels=("whatsapp",))
    _write(client, app, GT1, "Hola", channel="whatsapp")
    db.session.get(ContactChannel, (contact.id, "whatsapp")).last_inbound_at = utcnow() - timedelta(days=2)
    db.session.commit()
    page = web.get(f"/inbox/{contact.id}").get_data(as_text=True)
    assert "The 24-hour WhatsApp window closed at" in page and "Send reply" not in page


def test_nobody_is_answered_who_never_wrote_to_us(app, make_contact, officer_client):
    _officer, web = officer_client
    contact = make_contact(phone=GT1)
    page = web.get(f"/inbox/{contact.id}")
    assert page.status_code == 200 and "This person has never written to us." in page.get_data(as_text=True)
    refused = web.post(f"/inbox/{contact.id}/reply", data={"channel": "sms", "body": "Hola"})
    assert refused.status_code == 400 and "This person has never written to us." in refused.get_data(as_text=True)
    assert _manual_replies(contact.id) == [] and _audits("inbox.replied") == []


def test_no_reply_on_a_channel_the_person_left_after_their_last_message(app, client, make_contact, officer_client):
    _officer, web = officer_client
    contact = make_contact(phone=GT1)
    _write(client, app, GT1, "BAJA")
    refused = web.post(f"/inbox/{contact.id}/reply", data={"channel": "sms", "body": "¿Por qué?"})
    assert refused.status_code == 400 and "opted out of SMS" in refused.get_data(as_text=True)
    _write(client, app, GT1, "Perdón, tengo una pregunta sobre mi trámite")  # they wrote again: we may answer
    assert web.post(f"/inbox/{contact.id}/reply", data={"channel": "sms", "body": "Claro, díganos."}).status_code == 302
    assert len(_manual_replies(contact.id)) == 1


def test_an_empty_or_unknown_channel_reply_is_refused(app, client, make_contact, officer_client):
    _officer, web = officer_client
    contact = make_contact(phone=GT1)
    _write(client, app, GT1, "Hola")
    assert web.post(f"/inbox/{contact.id}/reply", data={"channel": "sms", "body": "  "}).status_code == 400
    assert web.post(f"/inbox/{contact.id}/reply", data={"channel": "whatsapp", "body": "Hola"}).status_code == 400
    assert web.post(f"/inbox/{contact.id}/reply", data={"channel": "sms", "body": "x" * 1601}).status_code == 400
    assert _manual_replies(contact.id) == []
