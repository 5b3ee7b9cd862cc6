"""Administrators manage senders (a number or a Messaging Service, countries, a rate, one default per
channel); messages to a country go out from the sender that lists it, else from the default."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from whp_c4d.auth.models import AuditEvent
from whp_c4d.core.errors import ServiceError
from whp_c4d.demo import fictional_numbers
from whp_c4d.extensions import db
from whp_c4d.messaging.models import Sender
from whp_c4d.messaging.services import list_senders, save_sender, sender_for

GT_NUMBER, GT_OTHER = fictional_numbers("GT", 2, start=500)
HN_NUMBER = fictional_numbers("HN", 1, start=500)[0]
SERVICE = "MG" + "0123456789abcdef" * 2


def _form(**over) -> dict:
    form = {"name": "SMS Guatemala", "channel": "sms", "from_address": GT_NUMBER, "messaging_service_sid": "",
            "countries": ["GT"], "cap_per_second": "", "active": "y"}
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


@pytest.fixture
def admin_client(app, make_user, login):
    client = app.test_client()
    admin = make_user("admin")
    login(client, admin)
    client.admin = admin
    return client


def test_admin_creates_a_sender_with_default_rate_and_it_is_audited(admin_client):
    assert admin_client.get("/admin/senders").status_code == 200
    assert admin_client.get("/admin/senders/new").status_code == 200
    r = admin_client.post("/admin/senders/new", data=_form())
    assert r.status_code == 302 and r.headers["Location"] == "/admin/senders"
    sender = db.session.scalar(sa.select(Sender))
    assert (sender.name, sender.channel, sender.from_address, sender.countries) == (
        "SMS Guatemala", "sms", GT_NUMBER, ["GT"])
    assert sender.cap_per_second == 10 and sender.active and not sender.is_default
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "sender.created"))
    assert event.actor_id == admin_client.admin.id and event.target_id == sender.id
    assert GT_NUMBER not in str(event.details)
    page = admin_client.get("/admin/senders").get_data(as_text=True)
    assert "SMS Guatemala" in page and GT_NUMBER in page


def test_admin_edits_a_sender(admin_client):
    sender = save_sender(None, name="WhatsApp", channel="whatsapp", from_address=GT_NUMBER)
    db.session.commit()
    assert sender.from_address == f"whatsapp:{GT_NUMBER}" and sender.cap_per_second == 80
    page = admin_client.get(f"/admin/senders/{sender.id}").get_data(as_text=True)
    assert f'value="whatsapp:{GT_NUMBER}"' in page
    r = admin_client.post(f"/admin/senders/{sender.id}", data=_form(
        name="WhatsApp regional", channel="whatsapp", from_address="", messaging_service_sid=SERVICE,
        countries=["GT", "HN"], cap_per_second="25", is_default="y"))
    assert r.status_code == 302
    db.session.expire_all()
    sender = db.session.get(Sender, sender.id)
    assert (sender.name, sender.from_address, sender.messaging_service_sid) == ("WhatsApp regional", None, SERVICE)
    assert sender.countries == ["GT", "HN"] and sender.cap_per_second == 25 and sender.is_default
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "sender.updated"))
    assert {"name", "messaging_service_sid", "countries", "is_default"} <= set(event.details["fields"])
    assert admin_client.get("/admin/senders/999999").status_code == 404


@pytest.mark.parametrize(("over", "english", "spanish"), [
    ({"messaging_service_sid": SERVICE}, "not both", "no ambos"),
    ({"from_address": ""}, "not both", "no ambos"),
    ({"from_address": "12345"}, "is not a valid sender number", "no es un número de remitente válido"),
    ({"from_address": "", "messaging_service_sid": "MG123"}, "is not a Messaging Service SID",
     "no es un SID de Messaging Service"),
    ({"from_address": f"whatsapp:{GT_NUMBER}"}, "can only be used by a WhatsApp sender",
     "solo puede usarlo un remitente de WhatsApp"),
    ({"cap_per_second": "0"}, "from 1 to 10000", "de 1 a 10000"),
    ({"is_default": "y", "active": None}, "cannot be the default", "no puede ser el remitente predeterminado"),
])
def test_invalid_senders_are_refused_with_a_translated_reason(admin_client, over, english, spanish):
    for language, expected in (("en", english), ("es", spanish)):
        r = admin_client.post("/admin/senders/new", data=_form(**over), headers={"Accept-Language": language})
        assert r.status_code == 200
        assert expected in r.get_data(as_text=True), language
    assert db.session.scalar(sa.select(sa.func.count(Sender.id))) == 0


def test_sender_names_are_unique_regardless_of_case(admin_client):
    save_sender(None, name="SMS Guatemala", channel="sms", from_address=GT_NUMBER)
    db.session.commit()
    r = admin_client.post("/admin/senders/new", data=_form(name="sms guatemala", from_address=GT_OTHER),
                          headers={"Accept-Language": "en"})
    assert "already exists" in r.get_data(as_text=True)
    with pytest.raises(ServiceError) as info:
        save_sender(None, name="x", channel="sms", from_address=GT_OTHER, countries=["XX"])
    assert info.value.code == "unknown_country"


def test_a_new_default_takes_over_from_the_old_one_on_its_channel_only(app):
    first = save_sender(None, name="A", channel="sms", from_address=GT_NUMBER, is_default=True)
    whatsapp = save_sender(None, name="W", channel="whatsapp", from_address=GT_NUMBER, is_default=True)
    second = save_sender(None, name="B", channel="sms", from_address=GT_OTHER, is_default=True)
    db.session.commit()
    db.session.expire_all()
    assert (first.is_default, second.is_default, whatsapp.is_default) == (False, True, True)
    save_sender(first, name="A", channel="sms", from_address=GT_NUMBER, is_default=True)
    db.session.commit()
    db.session.expire_all()
    assert [s.name for s in list_senders() if s.is_default] == ["A", "W"]


def test_the_database_refuses_two_defaults_on_a_channel(app):
    from sqlalchemy.exc import IntegrityError

    db.session.add_all([Sender(name=n, channel="sms", from_address=GT_NUMBER, cap_per_second=1, is_default=True)
                        for n in ("A", "B")])
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_sender_for_prefers_the_country_then_the_default(app):
    assert sender_for("sms", "GT") is None
    default = save_sender(None, name="Default SMS", channel="sms", messaging_service_sid=SERVICE, is_default=True)
    guatemala = save_sender(None, name="Guatemala", channel="sms", from_address=GT_NUMBER, countries=["GT"])
    honduras = save_sender(None, name="Honduras", channel="sms", from_address=HN_NUMBER, countries=["HN"],
                           active=False)
    whatsapp = save_sender(None, name="WhatsApp", channel="whatsapp", from_address=GT_NUMBER, countries=["GT"])
    db.session.commit()
    assert sender_for("sms", "GT") == guatemala
    assert sender_for("sms", "gt") == guatemala
    assert sender_for("sms", "HN") == default  # Honduras' own sender is inactive
    assert sender_for("sms", "MX") == default and sender_for("sms", None) == default
    assert sender_for("whatsapp", "GT") == whatsapp
    assert sender_for("whatsapp", "HN") is None  # no WhatsApp default
    assert honduras.id is not None


@pytest.mark.parametrize("role", ["officer", "evaluator", "partner"])
def test_only_administrators_manage_senders(app, make_user, login, role):
    client = app.test_client()
    login(client, make_user(role))
    assert client.get("/admin/senders").status_code == 403
    assert client.post("/admin/senders/new", data=_form()).status_code == 403
    assert db.session.scalar(sa.select(sa.func.count(Sender.id))) == 0


def test_administration_menu_links_to_senders(admin_client):
    assert 'href="/admin/senders"' in admin_client.get("/").get_data(as_text=True)
