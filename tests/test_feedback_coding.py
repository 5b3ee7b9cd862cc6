"""The feedback queue: replies understood as feedback are filed with the codebook's suggestions; evaluators
code them one by one or in bulk; sensitive items stay with administrators and the assigned person; the
codebook is administered; erasure removes a person's items."""

from __future__ import annotations

import itertools
import re

import sqlalchemy as sa
from test_inbound import sms, twilio_post

from whp_c4d.auth.models import AuditEvent
from whp_c4d.extensions import db
from whp_c4d.feedback import services as fb
from whp_c4d.feedback.models import CodingRule, FeedbackItem, FeedbackTopic
from whp_c4d.inbound.models import InboundMessage

NUMBER = "+50255550142"  # fictional (Guatemala, 5555 01xx)
_sids = itertools.count(1)


def _topic(code: str) -> int:
    return db.session.scalar(sa.select(FeedbackTopic.id).where(FeedbackTopic.code == code))


def _items() -> list[FeedbackItem]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(FeedbackItem).order_by(FeedbackItem.id)))


def _file(texts, *, country="GT", language="es", channel="sms") -> list[FeedbackItem]:
    """Items as the inbound service files them: a stored message understood as feedback."""
    from whp_c4d.audience.models import Contact

    contact = db.session.scalar(sa.select(Contact).limit(1))
    out = []
    for text in texts:
        message = InboundMessage(provider_sid=f"SMf{next(_sids):031x}", contact_id=contact.id, channel=channel, body=text,
                                 country=country, language=language, status="processed", kind="feedback")
        db.session.add(message)
        db.session.flush()
        out.append(fb.file_inbound(message))
    db.session.commit()
    return out


def test_a_question_sent_by_sms_is_filed_with_the_suggested_type_and_topic(app, client, make_contact):
    contact = make_contact(phone=NUMBER)
    r = twilio_post(client, app, sms(NUMBER, "¿Dónde puedo sacar el pasaporte para mi hija? Llámenme al "
                                             "+502 5555 0142"))
    assert r.status_code == 200
    [item] = _items()
    assert item.source == "message" and item.contact_id == contact.id and item.country == "GT"
    assert item.language == "es" and item.channel == "sms" and item.status == "new" and item.type is None
    assert item.suggested_type == "question"
    assert item.suggested_topic_id == _topic("documents")  # pasaporte (documents) over hija (family): first rule
    assert not item.sensitive
    assert fb.mask_numbers(item.text).endswith("Llámenme al […]")


def test_a_report_of_abuse_is_sensitive_from_the_moment_it_arrives(app, make_contact, make_user, login):
    make_contact(phone=NUMBER)
    [item] = _file(["En la ruta nos amenazaron y hubo abuso"])
    assert item.suggested_type == "concern" and item.suggested_sensitive and item.sensitive
    evaluator = make_user("evaluator")
    client = app.test_client()
    login(client, evaluator)
    assert "amenazaron" not in client.get("/feedback").get_data(as_text=True)
    assert client.get(f"/feedback/{item.id}").status_code == 404
    admin = make_user("admin")
    login(client, admin)
    assert "amenazaron" in client.get("/feedback").get_data(as_text=True)
    assert client.get(f"/feedback/{item.id}").status_code == 200


def test_an_evaluator_codes_fifty_items_in_bulk(app, make_contact, make_user, login):
    make_contact(phone=NUMBER)
    items = _file([f"Me ofrecieron un trabajo en otro país, ¿es confiable? ({i})" for i in range(50)]
                  + ["Gracias por la información"])
    evaluator = make_user("evaluator")
    client = app.test_client()
    login(client, evaluator)
    page = client.get("/feedback?per_page=100&type=uncoded").get_data(as_text=True)
    assert page.count('name="ids"') == 51
    ids = [str(i.id) for i in items[:50]]
    r = client.post("/feedback/bulk", data={"ids": ids, "type": "question", "topic": str(_topic("work_offers")),
                                            "criticality": "action", "next": "/feedback?type=uncoded"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/feedback?type=uncoded")
    coded = [i for i in _items() if i.type == "question"]
    assert len(coded) == 50
    assert {(i.topic_id, i.criticality, i.status, i.coded_by_id) for i in coded} == {
        (_topic("work_offers"), "action", "under_review", evaluator.id)}
    [rest] = [i for i in _items() if i.type is None]
    assert rest.suggested_type == "praise"
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "feedback.coded"))
    assert event.details["count"] == 50 and event.actor_id == evaluator.id
    assert "trabajo" not in str(event.details)  # ids and field names only, never the words
    page = client.get("/feedback?type=uncoded").get_data(as_text=True)
    assert page.count('name="ids"') == 1


def test_bulk_accepting_the_suggestions_codes_each_item_its_own_way(app, make_contact, make_user, login):
    make_contact(phone=NUMBER)
    items = _file(["Mil gracias", "Dicen que en la frontera regalan visas", "Necesito un albergue"])
    evaluator = make_user("evaluator")
    client = app.test_client()
    login(client, evaluator)
    client.post("/feedback/bulk", data={"ids": [str(i.id) for i in items], "use_suggestion": "1"})
    got = {i.text: (i.type, i.topic_id) for i in _items()}
    assert got == {"Mil gracias": ("praise", None),
                   "Dicen que en la frontera regalan visas": ("observation", _topic("regular_pathways")),
                   "Necesito un albergue": ("request", _topic("shelter"))}


def test_coding_an_item_as_a_concern_keeps_it_with_the_coder_only(app, make_contact, make_user, login):
    make_contact(phone=NUMBER)
    [item] = _file(["Un hombre nos quitó los papeles en la terminal"])
    coder, colleague = make_user("evaluator"), make_user("evaluator")
    client = app.test_client()
    login(client, coder)
    r = client.post(f"/feedback/{item.id}", data={"type": "concern", "topic": str(_topic("route_safety")),
                                                  "criticality": "urgent", "status": "referred",
                                                  "loop_action": "Referido al equipo de protección"})
    assert r.status_code == 302
    [item] = _items()
    assert item.sensitive and item.assigned_to_id == coder.id and item.loop_action.startswith("Referido")
    assert client.get(f"/feedback/{item.id}").status_code == 200
    login(client, colleague)
    assert client.get(f"/feedback/{item.id}").status_code == 404
    r = client.post("/feedback/bulk", data={"ids": [str(item.id)], "status": "closed"}, follow_redirects=True)
    assert r.status_code == 200 and _items()[0].status == "referred"  # not visible to them: nothing changed


def test_bad_coding_input_is_refused_with_a_message_and_changes_nothing(app, make_contact, make_user, login):
    make_contact(phone=NUMBER)
    items = _file(["uno", "dos"])
    client = app.test_client()
    login(client, make_user("evaluator"))
    for data in ({"ids": [str(items[0].id)], "type": "rumour"},
                 {"ids": [str(items[0].id)], "topic": "not-a-number"},
                 {"ids": [str(items[0].id)], "assigned_to": "999999"},
                 {"ids": [], "type": "question"},
                 {"ids": [str(items[0].id), "abc"], "type": "question"},
                 {"ids": [str(items[0].id), str(items[1].id + 1000)], "type": "question"},
                 {"ids": [str(items[0].id)]}):
        r = client.post("/feedback/bulk", data=data, follow_redirects=True)
        assert r.status_code == 200, data
        assert 'class="flash error"' in r.get_data(as_text=True), data
    assert all(i.type is None and i.coded_at is None for i in _items())
    r = client.post(f"/feedback/{items[0].id}", data={"type": "question", "status": "bogus"})
    assert r.status_code == 400 and 'class="flash error"' in r.get_data(as_text=True)


def test_partners_neither_see_nor_code_the_queue(app, make_contact, make_user, login):
    make_contact(phone=NUMBER)
    [item] = _file(["Hola"])
    client = app.test_client()
    login(client, make_user("partner"))
    assert client.get("/feedback").status_code == 403
    assert client.get(f"/feedback/{item.id}").status_code == 403
    assert client.post("/feedback/bulk", data={"ids": [str(item.id)], "type": "praise"}).status_code == 403


def test_the_queue_filters_come_from_the_url(app, make_contact, make_user, login):
    make_contact(phone=NUMBER)
    _file(["Gracias"], country="GT")
    _file(["Merci beaucoup"], country="HT", language="fr")
    client = app.test_client()
    login(client, make_user("evaluator"))
    page = client.get("/feedback?country=HT").get_data(as_text=True)
    assert "Merci beaucoup" in page and "Gracias" not in page
    page = client.get("/feedback?country=ZZ&type=nonsense&per_page=7&topic=x").get_data(as_text=True)
    assert "Merci beaucoup" not in page  # an unknown country matches nothing; other bad values are ignored


def test_no_number_reaches_the_queue_even_written_inside_a_message(app, make_contact, make_user, login):
    make_contact(phone=NUMBER)
    [item] = _file(["Mi número es 5555-0142, también +502 5555 0142"])
    client = app.test_client()
    login(client, make_user("evaluator"))
    for url in ("/feedback", f"/feedback/{item.id}"):
        page = client.get(url).get_data(as_text=True)
        assert "5555" not in page and "0142" not in page, url


def test_a_new_rule_updates_the_suggestions_of_items_nobody_coded(app, make_contact, make_user, login):
    make_contact(phone=NUMBER)
    items = _file(["Quiero saber de la cita en CBP One", "Necesito ayuda con la cita"])
    fb.code_items(make_user("evaluator"), [items[1].id], fb.Coding(type="request"))
    db.session.commit()
    admin = make_user("admin")
    client = app.test_client()
    login(client, admin)
    r = client.post("/admin/codebook/rules", data={"words": "Cita, CBP one", "type": "question",
                                                   "topic": str(_topic("documents"))})
    assert r.status_code == 302
    rule = db.session.scalar(sa.select(CodingRule).where(CodingRule.built_in.is_(False)))
    assert rule.words == "cita, cbp one"
    first, second = _items()
    assert first.suggested_topic_id == _topic("documents")
    assert second.type == "request"  # what a person coded is never overwritten by a rule
    r = client.post("/admin/codebook/rules", data={"words": " , ", "type": ""})
    assert r.status_code == 400 and 'class="flash error"' in r.get_data(as_text=True)
    built_in = db.session.scalar(sa.select(CodingRule).where(CodingRule.built_in.is_(True)).limit(1))
    assert client.post(f"/admin/codebook/rules/{built_in.id}/delete").status_code == 400
    client.post(f"/admin/codebook/rules/{built_in.id}", data={"only": "active", "active": "0"})
    db.session.expire_all()
    assert db.session.get(CodingRule, built_in.id).active is False
    assert client.post(f"/admin/codebook/rules/{rule.id}/delete").status_code == 302
    assert db.session.get(CodingRule, rule.id) is None


def test_administrators_add_and_rename_topics(app, make_user, login):
    client = app.test_client()
    login(client, make_user("admin"))
    r = client.post("/admin/codebook/topics", data={"code": "cash_assistance", "label_es": "Asistencia en efectivo",
                                                    "label_en": "Cash assistance"})
    assert r.status_code == 302
    topic = db.session.scalar(sa.select(FeedbackTopic).where(FeedbackTopic.code == "cash_assistance"))
    assert topic.labels == {"es": "Asistencia en efectivo", "en": "Cash assistance"}
    assert client.post("/admin/codebook/topics", data={"code": "cash_assistance", "label_en": "x"}).status_code == 400
    assert client.post("/admin/codebook/topics", data={"code": "Bad Code!", "label_en": "x"}).status_code == 400
    client.post(f"/admin/codebook/topics/{topic.id}", data={"label_en": "Cash", "position": "5"})
    db.session.expire_all()
    topic = db.session.get(FeedbackTopic, topic.id)
    assert topic.labels == {"en": "Cash"} and topic.position == 5 and topic.active is False
    page = client.get("/admin/codebook").get_data(as_text=True)
    assert "cash_assistance" in page
    login(client, make_user("evaluator"))
    assert client.get("/admin/codebook").status_code == 403


def test_feedback_filed_before_the_queue_existed_is_collected_once(app, make_contact):
    contact = make_contact(phone=NUMBER)
    db.session.add(InboundMessage(provider_sid="SM" + "a" * 32, contact_id=contact.id, channel="sms",
                                  body="Hola, ¿cómo me inscribo?", country="GT", language="es",
                                  status="processed", kind="feedback"))
    db.session.commit()
    assert fb.collect_inbound() == 1
    db.session.commit()
    assert fb.collect_inbound() == 0
    [item] = _items()
    assert item.suggested_type == "question"


def test_erasing_a_person_removes_their_feedback_items(app, make_contact, make_user):
    from whp_c4d.audience.erasure import erase_contact

    contact = make_contact(phone=NUMBER)
    _file(["Gracias", "¿Dónde está el albergue?"])
    erase_contact(contact, make_user("admin"))
    db.session.commit()
    assert _items() == []


def test_suggestions_ignore_case_accents_and_punctuation_and_need_whole_words():
    rules = [(("pasaporte",), None, None, 1, False), (("dicen que",), None, "observation", None, False),
             (("secuestro",), "es", "concern", 2, True)]
    s = fb.suggest("¡PASAPORTÉ!", "es", rules)
    assert (s.type, s.topic_id, s.sensitive, s.words) == (None, 1, False, ("pasaporte",))
    assert fb.suggest("pasaportes", "es", rules).topic_id == 1  # plurals too
    assert fb.suggest("pasaportero", "es", rules).topic_id is None
    assert fb.suggest("Dicen, que...", "es", rules).type == "observation"
    assert fb.suggest("secuestro", "en", rules).sensitive is False  # a rule for Spanish only
    assert fb.suggest("secuestro", "es", rules).sensitive is True
    assert fb.suggest("¿Cuándo?", None, []).type == "question"
    assert re.fullmatch(r"\[…\]", fb.mask_numbers("+1 (555) 010-0199"))


def test_the_worker_files_late_feedback_from_its_own_job(app, make_contact):
    from whp_c4d.scheduler import jobs
    from whp_c4d.scheduler.worker import build_scheduler

    assert "feedback" in {job.id for job in build_scheduler(app).get_jobs()}
    contact = make_contact(phone=NUMBER)
    db.session.add(InboundMessage(provider_sid="SM" + "b" * 32, contact_id=contact.id, channel="whatsapp",
                                  body="Merci", country="HT", language="fr", status="processed", kind="feedback"))
    db.session.commit()
    jobs.feedback(app)
    [item] = _items()
    assert (item.channel, item.country, item.suggested_type) == ("whatsapp", "HT", "praise")


def test_officers_can_answer_the_person_from_the_item_and_evaluators_cannot(app, make_contact, make_user, login):
    contact = make_contact(phone=NUMBER)
    [item] = _file(["¿Cuándo abren las citas?"])
    client = app.test_client()
    login(client, make_user("officer"))
    assert f"/inbox/{contact.id}" in client.get(f"/feedback/{item.id}").get_data(as_text=True)
    login(client, make_user("evaluator"))
    assert f"/inbox/{contact.id}" not in client.get(f"/feedback/{item.id}").get_data(as_text=True)


def test_the_queues_counts_under_five_are_hidden_from_evaluators(app, make_contact, make_user, login):
    make_contact(phone=NUMBER)
    _file(["uno", "dos", "tres"])
    client = app.test_client()
    login(client, make_user("evaluator"))
    page = client.get("/feedback").get_data(as_text=True)
    assert "(&lt;5)" in page and page.count(": &lt;5</a>") == 1  # in the title, and three uncoded
    assert not re.search(r"\([1-4]\)|: [1-4]</a>", page)
    login(client, make_user("officer"))
    assert "(3)" in client.get("/feedback").get_data(as_text=True)
