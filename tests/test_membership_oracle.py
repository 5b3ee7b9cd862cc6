"""No membership oracle (issue 13, finding 3): a partner registering a number that is new, that another
organisation registered, or that was erased at the person's request gets the same answer, on the API
and on the form; their consent is recorded where appropriate and an erasure is never revealed. Before,
the API answered 409 ``phone_taken`` and ``phone_suppressed``."""

from __future__ import annotations

import re

import sqlalchemy as sa

from whp_c4d.audience.erasure import erase_contact
from whp_c4d.audience.models import ConsentEvent, Contact, PartnerRegistration, PhoneNumber
from whp_c4d.audience.services import find_by_number, is_suppressed, record_consent
from whp_c4d.extensions import db

NEW, KNOWN, ERASED = "+50255510901", "+50255510902", "+50255510903"


def _body(number: str, channels=("sms",)) -> dict:
    return {"phone": number, "country": "GT", "language": "es", "channels": list(channels),
            "consent": {"source": "partner_registration", "date": "2026-12-01"}}


def _setup(make_user, make_partner, make_contact):
    mine, theirs = make_partner(name="Mine", country="GT"), make_partner(name="Theirs", country="GT")
    known = make_contact(phone=KNOWN, partner=theirs)
    erased = make_contact(phone=ERASED)
    erase_contact(erased, None)
    db.session.commit()
    return make_user("partner", partner=mine), known


def test_new_known_and_erased_numbers_get_the_same_answer_from_the_api(app, client, make_user, make_partner,
                                                                        make_contact, api_token):
    partner, known = _setup(make_user, make_partner, make_contact)
    headers = api_token(partner)
    answers = [client.post("/api/v1/contacts", json=_body(n), headers=headers) for n in (NEW, KNOWN, ERASED)]
    assert [a.status_code for a in answers] == [202, 202, 202]
    shapes = [{k: v for k, v in a.get_json().items() if k not in ("reference", "created_at")} for a in answers]
    assert shapes[0] == shapes[1] == shapes[2] == {"status": "received", "country": "GT", "language": "es",
                                                   "channels": ["sms"]}
    assert {a.headers.get("Location") for a in answers} == {None}
    assert len({a.get_json()["reference"] for a in answers}) == 3
    # What happened behind the receipt: a new contact; the known one kept; the erased one not brought back.
    new = find_by_number(NEW)
    assert new is not None and new.registered_by_partner_id == partner.partner_id
    assert find_by_number(KNOWN).id == known.id and find_by_number(ERASED) is None and is_suppressed(ERASED)
    links = dict(db.session.execute(sa.select(PartnerRegistration.reference, PartnerRegistration.contact_id)).all())
    assert sorted(links.values(), key=str) == sorted([new.id, known.id, None], key=str)
    # The partner lists their three receipts, and opens no contact (a contact's history would tell).
    listed = client.get("/api/v1/registrations", headers=headers).get_json()["data"]
    assert len(listed) == 3 and all(r["status"] == "received" for r in listed)
    assert client.get("/api/v1/contacts", headers=headers).get_json()["data"] == []
    assert client.get(f"/api/v1/contacts/{new.id}", headers=headers).status_code == 404


def test_the_form_answers_the_same_too(app, make_user, make_partner, make_contact, login):
    partner, _known = _setup(make_user, make_partner, make_contact)
    client = app.test_client()
    login(client, partner)
    pages = []
    for number in (NEW, KNOWN, ERASED):
        r = client.post("/contacts/new", data={"phone": number, "country": "GT", "language": "es",
                                               "channels": ["sms"], "consent_date": "2026-12-01"},
                        headers={"Accept-Language": "en"}, follow_redirects=True)
        assert r.status_code == 200
        page = r.get_data(as_text=True)
        pages.append(re.sub(r"R-[0-9A-Z]{8}", "R-…", re.search(r'<div class="flash[^"]*"[^>]*>(.*?)</div>',
                                                                  page, re.S).group(1)))
        assert "already" not in pages[-1].lower() and "erased" not in pages[-1].lower()
    assert pages[0] == pages[1] == pages[2] and "received" in pages[0]
    listing = client.get("/contacts").get_data(as_text=True)
    assert listing.count("R-") >= 3 and "C-" not in listing  # receipts, never pseudonyms
    dashboard = client.get("/").get_data(as_text=True)
    assert re.search(r'<span class="value">3</span>', dashboard)  # three registrations, whatever they were


def test_consent_is_added_where_appropriate_and_a_stop_stands(app, client, make_user, make_partner, make_contact,
                                                              api_token):
    partner, known = _setup(make_user, make_partner, make_contact)
    record_consent(known, "sms", granted=False, source="keyword", actor=None)  # the person texted STOP
    db.session.commit()
    headers = api_token(partner)
    answer = client.post("/api/v1/contacts", json=_body(KNOWN, ("sms", "whatsapp")), headers=headers)
    assert answer.status_code == 202
    db.session.expire_all()
    known = db.session.get(Contact, known.id)
    assert known.channel("sms").opted_out_at is not None and not known.channel("sms").campaigns
    assert known.channel("whatsapp").campaigns  # the partner's consent, on the channel the person never refused
    sources = set(db.session.scalars(sa.select(ConsentEvent.source).where(ConsentEvent.contact_id == known.id,
                                                                          ConsentEvent.channel == "whatsapp")))
    assert sources == {"partner_registration"}


def test_staff_still_hear_that_a_number_is_known_or_erased(app, client, make_user, make_partner, make_contact,
                                                            api_token):
    _partner, _known = _setup(make_user, make_partner, make_contact)
    headers = api_token(make_user("officer"))
    assert client.post("/api/v1/contacts", json=_body(KNOWN), headers=headers).get_json()["error"] == "phone_taken"
    assert client.post("/api/v1/contacts", json=_body(ERASED), headers=headers).get_json()["error"] == \
        "phone_suppressed"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PhoneNumber)) == 1


def test_bad_input_is_refused_the_same_for_every_number(app, client, make_user, make_partner, make_contact,
                                                        api_token):
    partner, _known = _setup(make_user, make_partner, make_contact)
    headers = api_token(partner)
    answers = [client.post("/api/v1/contacts", json={**_body(n), "language": "xx"}, headers=headers).get_json()
               for n in (NEW, KNOWN, ERASED)]
    assert answers[0] == answers[1] == answers[2]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PartnerRegistration)) == 0
