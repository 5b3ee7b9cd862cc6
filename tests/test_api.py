"""REST API v1: bearer tokens stored hashed, the same permission map and scoping as the UI."""

from __future__ import annotations

import sqlalchemy as sa

from whp_c4d.auth.models import ApiToken
from whp_c4d.extensions import db


def test_api_needs_a_valid_token(app, client, make_user, api_token):
    assert client.get("/api/v1/contacts").status_code == 401
    assert client.get("/api/v1/contacts", headers={"Authorization": "Bearer c4d_nope"}).status_code == 401
    headers = api_token(make_user("officer"))
    assert client.get("/api/v1/contacts", headers=headers).status_code == 200
    secret = headers["Authorization"].split()[1]
    assert secret not in " ".join(t.token_hash for t in db.session.scalars(sa.select(ApiToken)))


def test_revoked_tokens_and_disabled_users_are_refused(app, client, make_user, api_token):
    user = make_user("officer")
    headers = api_token(user)
    user.active = False
    db.session.commit()
    assert client.get("/api/v1/contacts", headers=headers).status_code == 401


def test_officer_creates_a_contact_and_reads_it_back_masked(app, client, make_user, api_token):
    headers = api_token(make_user("officer"))
    body = {"phone": "+50255510999", "language": "es", "channels": ["sms", "whatsapp"], "tags": ["feria"],
            "consent": {"source": "form", "date": "2026-11-01", "notice_version": "2026-1"}}
    r = client.post("/api/v1/contacts", json=body, headers=headers)
    assert r.status_code == 201, r.get_json()
    created = r.get_json()
    assert created["country"] == "GT" and created["timezone"] == "America/Guatemala"
    assert created["number_masked"] == "+502 •••• ••99" and "+50255510999" not in r.get_data(as_text=True)
    got = client.get(r.headers["Location"], headers=headers).get_json()
    assert got["pseudonym"] == created["pseudonym"]
    assert client.post("/api/v1/contacts", json=body, headers=headers).status_code == 409


def test_evaluator_sees_pseudonyms_only_and_cannot_create(app, client, make_user, make_contact, api_token):
    make_contact()
    headers = api_token(make_user("evaluator"))
    data = client.get("/api/v1/contacts", headers=headers).get_json()["data"]
    assert len(data) == 1 and "number_masked" not in data[0] and data[0]["pseudonym"].startswith("C-")
    assert client.post("/api/v1/contacts", json={}, headers=headers).status_code == 403


def test_invalid_bodies_get_400_naming_each_field(app, client, make_user, api_token):
    headers = api_token(make_user("officer"))
    r = client.post("/api/v1/contacts", json={"phone": "12", "country": "GT", "language": "xx",
                                              "channels": ["fax"], "consent": {"source": "rumour"}},
                    headers={**headers, "Accept-Language": "en"})
    assert r.status_code == 400
    fields = r.get_json()["fields"]
    assert {"phone", "language", "channels", "consent.source"} <= set(fields)
    for payload in (None, "text", [], {"phone": None}, {"consent": "yes"}, {"channels": "sms"}):
        r = client.post("/api/v1/contacts", json=payload, headers=headers)
        assert r.status_code == 400, payload


def test_paging_walks_every_contact_once(app, client, make_user, make_contact, api_token):
    made = {make_contact().id for _ in range(7)}
    headers = api_token(make_user("admin"))
    seen, url = [], "/api/v1/contacts?limit=3"
    while url:
        body = client.get(url, headers=headers).get_json()
        seen += [c["id"] for c in body["data"]]
        url = body["next"]
    assert sorted(seen) == sorted(made)


def test_openapi_document_describes_the_contacts_endpoints(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert {"/api/v1/contacts", "/api/v1/contacts/{contact_id}"} <= set(spec["paths"])
    assert "ContactOut" in spec["components"]["schemas"]
