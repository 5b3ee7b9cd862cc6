"""Inbound messages: the signed webhook, who wrote, keywords in five languages, polls and menus, the
loop guard, erasure by SMS, and the WhatsApp 24-hour window. Requests are signed with the official
``twilio.request_validator.RequestValidator``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import gettext as _
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from test_outbox import _campaign, _due_now
from twilio.request_validator import RequestValidator

from whp_c4d.audience.models import Contact, ContactChannel, Segment
from whp_c4d.core.models import utcnow
from whp_c4d.extensions import db
from whp_c4d.inbound import keywords as kw
from whp_c4d.inbound import services
from whp_c4d.inbound.models import InboundMessage, Keyword, PollResponse
from whp_c4d.messaging.models import OutboundMessage

ACCOUNT = "AC" + "0" * 32
_sids = itertools.count(1)


def sid() -> str:
    return f"SM{next(_sids):032x}"


def twilio_post(client, app, form: dict, *, path="/twilio/messages", token=None, forge=False, url=None,
                signature: str | None = "sign"):
    """POST ``form`` as Twilio would: signed over C4D_PUBLIC_URL + path with the account's token."""
    full = url or app.config["C4D_PUBLIC_URL"].rstrip("/") + path
    token = token or app.config.get("TWILIO_AUTH_TOKEN") or app.config["C4D_SIMULATOR_AUTH_TOKEN"]
    headers = {}
    if signature == "sign":
        headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(full, form)
        if forge:
            headers["X-Twilio-Signature"] = base64.b64encode(
                hmac.new(b"wrong", full.encode(), hashlib.sha1).digest()).decode()
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    return client.post(path, data=form, headers=headers)


def sms(number: str, body: str, **extra) -> dict:
    form = {"MessageSid": sid(), "SmsSid": "", "AccountSid": ACCOUNT, "From": number, "To": "+15550100",
            "Body": body, "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
            "ApiVersion": "2010-04-01", "FromCountry": "GT", "FromCity": "GUATEMALA"}
    form["SmsSid"] = form["SmsMessageSid"] = form["MessageSid"]
    form.update(extra)
    return form


def whatsapp(number: str, body: str, **extra) -> dict:
    form = sms("whatsapp:" + number, body, To="whatsapp:+15550100", ProfileName="Ana Pérez",
               WaId=number.lstrip("+"), MessageType="text", Latitude="14.6", Longitude="-90.5")
    form.update(extra)
    return form


def replies(contact_id: int) -> list[OutboundMessage]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(OutboundMessage).where(
        OutboundMessage.contact_id == contact_id, OutboundMessage.purpose == "reply").order_by(OutboundMessage.id)))


def in_language(language: str, text: str, **values) -> str:
    with force_locale(language):
        return _(text, **values)


def entries() -> list[kw.KeywordEntry]:
    return services.keyword_entries()


# --- the webhook --------------------------------------------------------------------------------------

def test_a_signed_sms_is_stored_once_encrypted_and_answered_with_twiml(app, client, make_contact):
    from helpers import all_database_text

    contact = make_contact(phone="+50255500101")
    form = sms("+50255500101", "¿Dónde puedo informarme sobre visas de trabajo?")
    first = twilio_post(client, app, form)
    assert first.status_code == 200 and first.mimetype == "text/xml"
    assert first.get_data(as_text=True).startswith("<?xml") and "<Response" in first.get_data(as_text=True)
    again = twilio_post(client, app, form)  # Twilio retries: same MessageSid
    assert again.status_code == 200
    rows = db.session.scalars(sa.select(InboundMessage)).all()
    assert len(rows) == 1
    row = rows[0]
    assert row.contact_id == contact.id and row.channel == "sms" and row.kind == "feedback"
    assert row.body.startswith("¿Dónde")
    dump = all_database_text()
    assert "visas de trabajo" not in dump and "+50255500101" not in dump  # encrypted at rest


@pytest.mark.parametrize("how", ["forged", "missing", "wrong_url", "wrong_token"])
def test_forged_missing_or_misdirected_signatures_get_403_and_nothing_is_stored(app, client, make_contact, how):
    make_contact(phone="+50255500102")
    form = sms("+50255500102", "BAJA")
    kwargs = {"forged": {"forge": True}, "missing": {"signature": None},
              "wrong_url": {"url": "https://elsewhere.example.org/twilio/messages"},
              "wrong_token": {"token": "not-the-token"}}[how]
    assert twilio_post(client, app, form, **kwargs).status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(InboundMessage)) == 0
    assert db.session.scalar(sa.select(ContactChannel)).opted_out_at is None


def test_behind_a_tls_terminating_proxy_the_public_https_url_is_what_is_signed(app, client, make_contact):
    make_contact(phone="+50255500103")
    old = app.config["C4D_PUBLIC_URL"]
    app.config["C4D_PUBLIC_URL"] = "https://c4d.example.org"
    try:  # the test client speaks http://localhost: the app must check the public https URL
        assert twilio_post(client, app, sms("+50255500103", "hola")).status_code == 200
    finally:
        app.config["C4D_PUBLIC_URL"] = old
    assert db.session.scalar(sa.select(sa.func.count()).select_from(InboundMessage)) == 1


def test_whatsapp_text_button_reply_and_media_keep_only_what_the_product_needs(app, client, make_contact):
    from helpers import all_database_text

    contact = make_contact(phone="+50255500104", channels=("whatsapp",))
    assert twilio_post(client, app, whatsapp("+50255500104", "hola")).status_code == 200
    assert twilio_post(client, app, whatsapp("+50255500104", "Sí", MessageType="button", ButtonText="Sí",
                                             ButtonPayload="poll-yes")).status_code == 200
    media = whatsapp("+50255500104", "", NumMedia="1", MessageType="image",
                     MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
                     MediaContentType0="image/jpeg")
    assert twilio_post(client, app, media).status_code == 200
    rows = db.session.scalars(sa.select(InboundMessage).order_by(InboundMessage.id)).all()
    assert [r.channel for r in rows] == ["whatsapp"] * 3
    assert rows[1].button_payload == "poll-yes"
    assert rows[2].num_media == 1 and "image/jpeg" in rows[2].media
    dump = all_database_text()
    assert "Ana Pérez" not in dump and "14.6" not in dump and "-90.5" not in dump  # no profile name, no location
    state = db.session.get(ContactChannel, (contact.id, "whatsapp"))
    assert state.last_inbound_at is not None  # the 24-hour window is open


@pytest.mark.parametrize("form", [
    {"From": "+50255500105", "Body": "hola"},  # no MessageSid
    {"MessageSid": "SM" + "1" * 32, "Body": "hola"},  # no From
    {"MessageSid": "not-a-sid", "From": "+50255500105", "Body": "hola"},
    {"MessageSid": "SM" + "3" * 32, "From": "+50255500105", "Body": "hola", "NumMedia": "lots"},
])
def test_a_malformed_request_gets_400_with_a_reason(app, client, form):
    response = twilio_post(client, app, form)
    assert response.status_code == 400
    assert "malformed" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(InboundMessage)) == 0


@pytest.mark.parametrize(("sender", "country"), [
    ("+50299999999", "GT"),   # a range libphonenumber does not know yet, in a known country
    ("+99912345678", "ZZ"),   # a calling code it does not know at all
    ("whatsapp:+50299999998", "GT"),
])
def test_a_signed_message_is_stored_and_understood_whatever_its_number(app, client, sender, country):
    """Issue 13, finding 8: a signed message whose From libphonenumber rejected was answered 400, which
    Twilio does not retry: a STOP from a newly allocated number range was lost. It is stored with the
    number as Twilio gave it, and understood like any other."""
    form = sms(sender, "STOP", FromCountry="")
    if sender.startswith("whatsapp:"):
        form["To"] = "whatsapp:+15550100"
    assert twilio_post(client, app, form).status_code == 200
    db.session.rollback()  # read after the webhook's own work, not from a snapshot taken during it
    message = db.session.scalar(sa.select(InboundMessage))
    assert message.kind == "keyword" and message.action == "opt_out"
    contact = db.session.get(Contact, message.contact_id)
    assert contact.country == country and contact.current_number.e164 == sender.removeprefix("whatsapp:")
    [confirmation] = replies(contact.id)
    assert confirmation.occurrence.endswith(":opt_out")


# --- who wrote ------------------------------------------------------------------------------------------

def test_an_unknown_number_becomes_an_inbound_only_contact_welcomed_in_its_guessed_language(app, client):
    assert twilio_post(client, app, sms("+50937500177", "Bonjou, mwen bezwen enfòmasyon sou travay",
                                        FromCountry="HT")).status_code == 200
    contact = db.session.scalar(sa.select(Contact))
    assert contact.status == "inbound_only" and contact.language == "ht" and contact.country == "HT"
    assert contact.channel("sms").campaigns is False
    [welcome] = replies(contact.id)
    assert welcome.body == in_language("ht", "Hello, this is the information service of the Regional Migration "
                                             "Programme. To receive our messages, reply %(join)s. To stop, "
                                             "reply %(stop)s.", join="KOMANSE", stop="SISPANN")
    # A second free text is feedback with no second welcome: an acknowledgement at most once a day.
    twilio_post(client, app, sms("+50937500177", "Mèsi", FromCountry="HT"))
    twilio_post(client, app, sms("+50937500177", "Ki lè?", FromCountry="HT"))
    assert [r.occurrence.split(":")[1] for r in replies(contact.id)] == ["welcome", "ack"]
    # They join: consent from the keyword, and campaigns may reach them now.
    twilio_post(client, app, sms("+50937500177", "kòmanse", FromCountry="HT"))
    db.session.expire_all()
    contact = db.session.get(Contact, contact.id)
    assert contact.status == "active" and contact.channel("sms").campaigns is True


def test_a_known_contact_is_found_by_any_of_their_numbers(app, client, make_contact):
    from whp_c4d.audience import services as audience

    contact = make_contact(phone="+50255500106")
    audience.add_number(contact, "+50255500107", "GT", None)
    db.session.commit()
    twilio_post(client, app, sms("+50255500106", "hola"))  # the old, retired number
    twilio_post(client, app, sms("+50255500107", "hola"))
    assert {r.contact_id for r in db.session.scalars(sa.select(InboundMessage))} == {contact.id}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 1


# --- keywords -------------------------------------------------------------------------------------------

def _variants(word: str) -> list[str]:
    """How people type a keyword: as shipped, lower case, no accents, with punctuation and spaces, and
    (five letters or more) with one typo."""
    import unicodedata

    plain = "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))
    out = [word, word.lower(), plain, plain.lower(), f"  {word.lower()}!! ", f"¡{plain}."]
    if len(word.replace(" ", "")) >= kw.FUZZY_MIN:
        i = len(plain) // 2
        out.append(plain[:i] + plain[i + 1:])  # a letter missing
        out.append(plain[:i] + plain[i + 1] + plain[i] + plain[i + 2:])  # two letters swapped
    return out


def _shipped() -> list[tuple[str, str, str | None, str]]:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "migrations" / "versions" / "0007_inbound.py"
    spec = importlib.util.spec_from_file_location("_m0007", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [(action, language, value, word) for action, language, value, words in module.KEYWORDS for word in words]


def test_every_shipped_keyword_matches_in_every_way_people_type_it(app):
    known = entries()
    problems = []
    for action, _language, value, word in _shipped():
        for typed in _variants(word):
            found = kw.match_keyword(typed, known)
            if found is None or found.action != action or (value and found.value != value):
                problems.append((word, typed, found and found.action))
    assert not problems


def test_the_issue_keywords_are_all_shipped(app):
    known = entries()
    for word, action in [("STOP", "opt_out"), ("STOPALL", "opt_out"), ("UNSUBSCRIBE", "opt_out"),
                         ("CANCEL", "opt_out"), ("END", "opt_out"), ("QUIT", "opt_out"), ("BAJA", "opt_out"),
                         ("ALTO", "opt_out"), ("PARAR", "opt_out"), ("DETENER", "opt_out"),
                         ("CANCELAR", "opt_out"), ("ARRET", "opt_out"), ("ARRÊT", "opt_out"),
                         ("SISPANN", "opt_out"), ("KANPE", "opt_out"), ("STOPPEN", "opt_out"),
                         ("START", "opt_in"), ("UNSTOP", "opt_in"), ("YES", "opt_in"), ("SI", "opt_in"),
                         ("SÍ", "opt_in"), ("ALTA", "opt_in"), ("UNIRME", "opt_in"), ("COMMENCER", "opt_in"),
                         ("KÒMANSE", "opt_in"), ("AANMELDEN", "opt_in"), ("HELP", "help"), ("AYUDA", "help"),
                         ("AIDE", "help"), ("ÈD", "help"), ("HULP", "help"), ("ES", "language"),
                         ("ESPAÑOL", "language"), ("EN", "language"), ("ENGLISH", "language"),
                         ("FR", "language"), ("FRANÇAIS", "language"), ("KREYOL", "language"),
                         ("KREYÒL", "language"), ("HT", "language"), ("NL", "language"),
                         ("NEDERLANDS", "language"), ("BORRAR", "erase"), ("DELETE", "erase"),
                         ("EFASE", "erase"), ("SUPPRIMER", "erase"), ("VERWIJDEREN", "erase"),
                         ("ES REAL", "real"), ("IS THIS REAL", "real"), ("C'EST VRAI", "real"),
                         ("SE VRE", "real")]:
        found = kw.match_keyword(word, known)
        assert found is not None and found.action == action, word


def test_stop_inside_a_sentence_is_feedback_flagged_for_review(app, client, make_contact):
    contact = make_contact(phone="+50255500108")
    twilio_post(client, app, sms("+50255500108", "No entiendo por qué debo parar mi trámite"))
    row = db.session.scalar(sa.select(InboundMessage))
    assert row.kind == "feedback" and row.flag == "possible_opt_out"
    assert db.session.get(ContactChannel, (contact.id, "sms")).opted_out_at is None


def test_baja_opts_out_every_channel_with_a_spanish_confirmation_and_start_brings_sends_back(
        app, client, make_contact, make_user):
    contact = make_contact(phone="+50255500109", channels=("sms", "whatsapp"))
    db.session.add(Segment(name="Todos", filters={}))
    db.session.commit()
    twilio_post(client, app, sms("+50255500109", "Baja."))
    db.session.expire_all()
    states = db.session.scalars(sa.select(ContactChannel).where(ContactChannel.contact_id == contact.id)).all()
    assert all(s.opted_out_at is not None and not s.campaigns for s in states) and len(states) == 2
    [confirmation] = replies(contact.id)
    assert confirmation.channel == "sms" and confirmation.language == "es"
    assert confirmation.body == in_language(
        "es", "You will receive no more messages from us. To join again, reply %(join)s.", join="ALTA")
    # A campaign now: nobody to send to.
    campaign = _campaign(make_user("officer"))
    assert _due_now(campaign) == 0
    twilio_post(client, app, sms("+50255500109", "ALTA"))
    db.session.expire_all()
    assert db.session.get(ContactChannel, (contact.id, "sms")).campaigns is True
    from whp_c4d.campaigns.expansion import expand_step

    assert expand_step(campaign.steps[0]) == 1


def test_stop_after_a_campaign_was_queued_means_nothing_goes_out(app, client, live_app, audience):
    from whp_c4d.messaging.dispatcher import Dispatcher
    from whp_c4d.messaging.services import save_sender

    author, contacts = audience
    save_sender(None, name="GT", channel="sms", from_address="+15550199", countries=["GT"], cap_per_second=50)
    db.session.commit()
    _due_now(_campaign(author))
    target = contacts[0]
    twilio_post(client, app, sms(target.current_number.e164, "STOP"))
    dispatcher = Dispatcher(app, pool_size=4)
    dispatcher.start()
    try:
        dispatcher.tick(utcnow())
    finally:
        dispatcher.stop()
    db.session.expire_all()
    theirs = db.session.scalars(sa.select(OutboundMessage).where(
        OutboundMessage.contact_id == target.id, OutboundMessage.purpose == "campaigns")).all()
    # Cancelled with the STOP, in the same transaction: it never reached the dispatcher.
    assert [(m.status, m.reason) for m in theirs] == [("cancelled", "opted_out")] and theirs[0].provider_sid is None
    # ...but the confirmation of their STOP did go, and everybody else got the campaign.
    [confirmation] = replies(target.id)
    assert confirmation.provider_sid is not None
    others = db.session.scalars(sa.select(OutboundMessage).where(
        OutboundMessage.contact_id != target.id, OutboundMessage.purpose == "campaigns")).all()
    assert others and all(m.provider_sid for m in others)


def test_language_keyword_switches_and_confirms_in_the_new_language(app, client, make_contact):
    contact = make_contact(phone="+50255500110")
    twilio_post(client, app, sms("+50255500110", "kreyol"))
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).language == "ht"
    [reply] = replies(contact.id)
    assert reply.language == "ht"
    assert reply.body == in_language("ht", "From now on we will write to you in English.") == \
        "Apati kounye a n ap ekri w an kreyòl."


def test_help_and_is_this_real_answer_with_the_country_s_values(app, client, make_contact):
    from whp_c4d.campaigns import settings
    from whp_c4d.campaigns.models import ContentVariable

    admin = None
    settings.set_variable_values(db.session.get(ContentVariable, "hotline"), {"GT": "1500 (demo)"}, admin)
    db.session.commit()
    contact = make_contact(phone="+50255500111")
    twilio_post(client, app, sms("+50255500111", "ayuda"))
    twilio_post(client, app, sms("+50255500111", "¿Es real?"))
    help_reply, real_reply = replies(contact.id)
    assert "1500 (demo)" in help_reply.body and "BAJA" in help_reply.body
    assert real_reply.body.startswith("Nuestros mensajes solo llegan desde este número")


def test_erasure_by_sms_asks_then_erases_everything_and_confirms(app, client, live_app, make_contact):
    from helpers import all_database_text

    from whp_c4d.messaging.services import save_sender
    from whp_c4d.simulator.models import SimulatorMessage

    save_sender(None, name="GT", channel="sms", from_address="+15550199", countries=["GT"], cap_per_second=50)
    contact_id = make_contact(phone="+50255500112").id
    db.session.commit()
    twilio_post(client, live_app, sms("+50255500112", "Mi hija se llama Rosa, vivimos en Tapachula"))
    twilio_post(client, live_app, sms("+50255500112", "BORRAR"))
    ask = replies(contact_id)[-1]
    assert "SI" in ask.body and ask.occurrence.endswith("erase_ask")
    twilio_post(client, live_app, sms("+50255500112", "Sí"))
    db.session.expire_all()
    assert db.session.get(Contact, contact_id) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(InboundMessage)) == 0
    dump = all_database_text()
    assert "Tapachula" not in dump and "Rosa" not in dump
    # The confirmation went straight to the simulator, from memory, after the erasure.
    sent = db.session.scalars(sa.select(SimulatorMessage).where(SimulatorMessage.direction == "outbound-api")).all()
    assert [m.body for m in sent] == [in_language("es", "Your data has been deleted. You will receive no more "
                                                        "messages from us.")]


def test_an_erasure_request_not_confirmed_is_dropped(app, client, make_contact):
    contact = make_contact(phone="+50255500113")
    twilio_post(client, app, sms("+50255500113", "borrar"))
    twilio_post(client, app, sms("+50255500113", "no, perdón"))
    assert db.session.get(Contact, contact.id) is not None
    twilio_post(client, app, sms("+50255500113", "si"))  # too late: now it is an opt-in, not an erasure
    assert db.session.get(Contact, contact.id) is not None


def test_the_loop_guard_stops_answering_identical_texts(app, client, make_contact):
    contact = make_contact(phone="+50255500114")
    for _i in range(25):
        assert twilio_post(client, app, sms("+50255500114", "AYUDA")).status_code == 200
    rows = db.session.scalars(sa.select(InboundMessage).order_by(InboundMessage.id)).all()
    assert len(rows) == 25  # every message is kept
    assert len(replies(contact.id)) == services.LOOP_LIMIT
    assert [r.answered for r in rows[services.LOOP_LIMIT:]] == [False] * 5


# --- polls and menus ------------------------------------------------------------------------------------

POLL = {"key": "encuesta", "kind": "poll", "timing": {"type": "drip", "day": 0, "time": "10:00"},
        "answer_window_hours": 48,
        "content": {lang: {"sms": text, "thanks": thanks, "options": [
            {"number": 1, "label": yes, "words": [yes]}, {"number": 2, "label": no, "words": [no]}]}
            for lang, text, thanks, yes, no in [
                ("es", "¿Conoces el albergue más cercano? 1 Sí 2 No", "Gracias.", "Sí", "No"),
                ("en", "Do you know the nearest shelter? 1 Yes 2 No", "Thank you.", "Yes", "No"),
                ("fr", "Connaissez-vous l'abri le plus proche ? 1 Oui 2 Non", "Merci.", "Oui", "Non"),
                ("ht", "Ou konnen abri ki pi pre a? 1 Wi 2 Non", "Mèsi.", "Wi", "Non"),
                ("nl", "Ken je de dichtstbijzijnde schuilplaats? 1 Ja 2 Nee", "Dank je.", "Ja", "Nee")]}}
MENU = {"key": "menu", "kind": "menu", "timing": {"type": "drip", "day": 0, "time": "10:00"},
        "content": {"es": {"sms": "Responde 1 o 2", "options": [
            {"number": 1, "label": "Vías", "reply": "Vías regulares: {official_info_url}"},
            {"number": 2, "label": "Fraude", "reply": "Nunca pagues por adelantado."}]}}}


def _sent_step(author, step, contacts, languages=("es", "en", "fr", "ht", "nl")):
    """A campaign with one poll or menu step to everybody (the segment "Todos"), expanded and marked as
    delivered."""
    if not db.session.scalar(sa.select(Segment.id).where(Segment.name == "Todos")):
        db.session.add(Segment(name="Todos", filters={}))
        db.session.commit()
    campaign = _campaign(author, languages=list(languages), steps=[step])
    _due_now(campaign)
    db.session.execute(sa.update(OutboundMessage).values(status="delivered", sent_at=utcnow() - timedelta(minutes=5),
                                                         provider_sid=None))
    db.session.commit()
    return campaign


def test_a_poll_answered_2_dos_deux_de_twee_records_choice_2(app, client, make_user, make_contact):
    people = [make_contact(phone=f"+50255500{120 + i}", language=lang)
              for i, lang in enumerate(("es", "es", "fr", "ht", "nl"))]
    _sent_step(make_user("officer"), POLL, people)
    for person, answer in zip(people, ["2", "dos", "deux", "de", "twee"], strict=True):
        assert twilio_post(client, app, sms(person.current_number.e164, answer)).status_code == 200
    responses = db.session.scalars(sa.select(PollResponse)).all()
    assert sorted(r.contact_id for r in responses) == sorted(p.id for p in people)
    assert {r.choice for r in responses} == {2}
    assert {r.language for r in responses} == {"es", "fr", "ht", "nl"}
    thanks = {r.language: r.body for p in people for r in replies(p.id)}
    assert thanks == {"es": "Gracias.", "fr": "Merci.", "ht": "Mèsi.", "nl": "Dank je."}


def test_an_answer_word_in_another_campaign_language_with_a_typo_still_counts(app, client, make_user, make_contact):
    person = make_contact(phone="+50255500130")
    _sent_step(make_user("officer"), POLL, [person])
    twilio_post(client, app, sms("+50255500130", "oui"))
    assert db.session.scalar(sa.select(PollResponse.choice)) == 1


def test_an_invalid_answer_is_asked_again_once_then_kept_as_feedback(app, client, make_user, make_contact):
    person = make_contact(phone="+50255500131")
    _sent_step(make_user("officer"), POLL, [person])
    twilio_post(client, app, sms("+50255500131", "tal vez"))
    twilio_post(client, app, sms("+50255500131", "no sé dónde queda, está lejos"))
    first, second = db.session.scalars(sa.select(InboundMessage).order_by(InboundMessage.id)).all()
    assert first.kind == "answer" and second.kind == "feedback" and second.step_id is not None
    assert [r.occurrence.split(":")[1] for r in replies(person.id)] == ["reask", "ack"]
    response = db.session.scalar(sa.select(PollResponse))
    assert response.choice is None and response.inbound_message_id == second.id
    twilio_post(client, app, sms("+50255500131", "2"))  # a valid answer later replaces it
    db.session.expire_all()
    assert db.session.scalar(sa.select(PollResponse.choice)) == 2


def test_a_sentence_while_a_poll_is_open_is_feedback_at_once(app, client, make_user, make_contact):
    person = make_contact(phone="+50255500134")
    _sent_step(make_user("officer"), POLL, [person])
    twilio_post(client, app, sms("+50255500134", "¿Esto es de verdad? Me piden dinero por una visa"))
    row = db.session.scalar(sa.select(InboundMessage))
    assert row.kind == "feedback" and row.step_id is not None
    assert [r.occurrence.split(":")[1] for r in replies(person.id)] == ["ack"]


def test_stop_wins_over_an_open_poll(app, client, make_user, make_contact):
    person = make_contact(phone="+50255500132")
    _sent_step(make_user("officer"), POLL, [person])
    twilio_post(client, app, sms("+50255500132", "stop"))
    assert db.session.get(ContactChannel, (person.id, "sms")).opted_out_at is not None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PollResponse)) == 0


def test_a_menu_number_sends_that_option_with_the_country_s_values(app, client, make_user, make_contact):
    from whp_c4d.campaigns import settings
    from whp_c4d.campaigns.models import ContentVariable

    settings.set_variable_values(db.session.get(ContentVariable, "official_info_url"),
                                 {"GT": "https://example.org/gt"}, None)
    person = make_contact(phone="+50255500133")
    _sent_step(make_user("officer"), MENU, [person], languages=("es",))
    twilio_post(client, app, sms("+50255500133", "1"))
    [reply] = replies(person.id)
    assert reply.body == "Vías regulares: https://example.org/gt"
    assert db.session.scalar(sa.select(InboundMessage.kind)) == "menu"


# --- the WhatsApp window ----------------------------------------------------------------------------

def test_whatsapp_inbound_opens_the_window_so_campaign_text_goes_as_free_text(app, client, make_user, make_contact):
    from whp_c4d.messaging.dispatcher import Dispatcher

    db.session.add(Segment(name="Todos", filters={}))
    db.session.commit()
    inside = make_contact(phone="+50255500140", channels=("whatsapp",))
    outside = make_contact(phone="+50255500141", channels=("whatsapp",))
    twilio_post(client, app, whatsapp("+50255500140", "hola"))
    campaign = _campaign(make_user("officer"), channels=["whatsapp"], steps=[{
        "key": "hola", "timing": {"type": "drip", "day": 0, "time": "10:00"},
        "content": {"es": {"sms": "Hola SMS", "whatsapp": "Hola WhatsApp",
                           "template": {"sid": "HX" + "a" * 32, "variables": {}}}}}])
    _due_now(campaign)
    dispatcher = Dispatcher(app, pool_size=1)
    rows = {r.contact_id: r for r in db.session.scalars(sa.select(OutboundMessage).where(
        OutboundMessage.purpose == "campaigns"))}
    contacts = {c.id: c for c in db.session.scalars(sa.select(Contact))}
    now = utcnow()
    channel, fields, _units = dispatcher._decide(rows[inside.id], contacts[inside.id], now)
    assert channel == "whatsapp" and fields["body"] == "Hola WhatsApp" and "content_sid" not in fields
    channel, fields, _units = dispatcher._decide(rows[outside.id], contacts[outside.id], now)
    assert fields["content_sid"] == "HX" + "a" * 32 and "body" not in fields
    # 24 hours later the window has closed again.
    assert "content_sid" in dispatcher._decide(rows[inside.id], contacts[inside.id], now + timedelta(hours=25))[1]
    dispatcher.stop()


# --- never a 500 --------------------------------------------------------------------------------------

def test_the_keyword_parser_never_raises():
    known = [kw.KeywordEntry("stop", "opt_out", "en"), kw.KeywordEntry("es real", "real", "es"),
             kw.KeywordEntry("sispann", "opt_out", "ht")]
    choices = [kw.Choice(1, ("Sí", "si")), kw.Choice(2, ("No",))]

    @given(st.text(max_size=300))
    @hsettings(max_examples=400, deadline=None)
    def check(text):
        kw.match_keyword(text, known)
        kw.mentions(text, known, "opt_out")
        kw.parse_choice(text, choices)
        kw.guess_language(text, "es", ["es", "en", "fr", "ht", "nl"], known)
        kw.is_confirmation(text)
        assert kw.normalise(kw.normalise(text)) == kw.normalise(text)

    check()


FIELDS = ["MessageSid", "SmsSid", "AccountSid", "From", "To", "Body", "NumMedia", "NumSegments", "MediaUrl0",
          "MediaContentType0", "FromCountry", "ButtonPayload", "ButtonText", "WaId", "ProfileName", "MessageType"]


@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(min_size=1, max_size=12),
                       st.text(max_size=60) | st.sampled_from(["+50255500150", "whatsapp:+50255500150",
                                                               "SM" + "f" * 32, "3", "-1", ""]),
                       max_size=10))
@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_signed_payloads_never_produce_a_500(app, client, form):
    response = twilio_post(client, app, form)
    assert response.status_code in (200, 400), response.status_code
    db.session.rollback()


def test_keywords_are_admin_data(app):
    rows = db.session.scalars(sa.select(Keyword).where(Keyword.built_in.is_(True))).all()
    assert len(rows) > 60 and {r.action for r in rows} == {"opt_out", "opt_in", "help", "language", "erase", "real"}


def test_a_message_stored_but_not_processed_is_finished_by_the_worker_job(app, client, make_contact, monkeypatch):
    from whp_c4d.scheduler import jobs

    contact = make_contact(phone="+50255500160")

    def crash(*_args, **_kwargs):
        raise RuntimeError("processing crashed")

    monkeypatch.setattr(services, "process", crash)
    assert twilio_post(client, app, sms("+50255500160", "BAJA")).status_code == 200  # Twilio still gets its 200
    monkeypatch.undo()
    row = db.session.scalar(sa.select(InboundMessage))
    assert row.status == "received"
    row.received_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    jobs.inbound(app)
    db.session.expire_all()
    assert db.session.scalar(sa.select(InboundMessage.status)) == "processed"
    assert db.session.get(ContactChannel, (contact.id, "sms")).opted_out_at is not None


def test_everyday_words_one_letter_from_a_keyword_do_not_flag_a_sentence(app, client, make_contact):
    make_contact(phone="+50255500161")
    twilio_post(client, app, sms("+50255500161", "Gracias por la información, es muy útil para mi familia"))
    assert db.session.scalar(sa.select(InboundMessage.flag)) is None


def test_a_message_with_a_nul_character_is_kept_without_it(app, client, make_contact):
    """PostgreSQL refuses NUL in text; the person's message must not be lost for it."""
    contact = make_contact(phone="+50255500133")
    r = twilio_post(client, app, sms("+50255500133", "Hola\x00, ¿dónde está el albergue?"))
    assert r.status_code == 200
    db.session.expire_all()
    [message] = db.session.scalars(sa.select(InboundMessage).where(InboundMessage.contact_id == contact.id)).all()
    assert message.body == "Hola, ¿dónde está el albergue?" and message.kind == "feedback"
