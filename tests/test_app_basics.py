"""The application starts, reports its health, and its schema is exactly what the migrations build."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from whp_c4d.extensions import db


def test_healthz_reports_database_state_as_json(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["database"]["revision"]


def test_models_and_migrations_agree(app):
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, db.metadata)
    assert diff == []


def test_sqlite_runs_with_wal_foreign_keys_and_busy_timeout(app):
    if db.engine.dialect.name != "sqlite":
        return
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar().lower() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_secrets_are_generated_into_the_instance_folder_on_first_run(tmp_path, monkeypatch):
    from whp_c4d.config import load_config

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("C4D_DATA_KEY", raising=False)
    first = load_config(tmp_path)
    second = load_config(tmp_path)
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and len(first["SECRET_KEY"]) >= 32
    assert first["C4D_DATA_KEY"] == second["C4D_DATA_KEY"] and first["C4D_DATA_KEY"] != first["SECRET_KEY"]
    assert (tmp_path / "data_key").stat().st_mode & 0o077 == 0


def test_https_public_url_turns_on_secure_cookies_and_hsts(tmp_path, monkeypatch):
    from whp_c4d.config import load_config

    monkeypatch.setenv("C4D_PUBLIC_URL", "https://c4d.example.org")
    cfg = load_config(tmp_path)
    assert cfg["SESSION_COOKIE_SECURE"] is True and cfg["C4D_HTTPS"] is True


def test_under_https_the_session_cookie_is_host_only(tmp_path, monkeypatch):
    """Issue 13, finding 6: the session cookie had no __Host- prefix under https, so a sibling subdomain
    (or a man in the middle on plain http) could plant one. With the prefix browsers accept it only if
    Secure, for path / and without a Domain."""
    from whp_c4d import create_app

    monkeypatch.setenv("C4D_PUBLIC_URL", "https://c4d.example.org")
    monkeypatch.setenv("C4D_INSTANCE_PATH", str(tmp_path))
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/c4d.db", "TESTING": True,
                      "SECRET_KEY": "test-secret-key-not-for-production", "C4D_DATA_KEY": "test-data-key-0123456789"})
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-c4d_session"
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(directory=app.extensions["migrate"].directory)
    client = app.test_client()
    r = client.get("/login", base_url="https://c4d.example.org")
    [cookie] = [v for k, v in r.headers.items() if k == "Set-Cookie" and v.startswith("__Host-c4d_session=")]
    attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
    assert "secure" in attributes and "path=/" in attributes and not any(a.startswith("domain") for a in attributes)


def test_security_headers_on_every_response(client):
    for path in ("/login", "/healthz", "/does-not-exist"):
        h = client.get(path).headers
        csp = h["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"]


def test_unknown_page_is_a_translated_404_not_a_500(client):
    r = client.get("/nope", headers={"Accept-Language": "es"})
    assert r.status_code == 404
    assert b"<html lang=\"es\">" in r.data


def test_numbers_too_large_for_the_database_are_not_found_or_ignored_never_a_500(app, make_user, login,
                                                                                 api_token):
    """A URL or a filter with 2**63 (and more) in it: 404 for a record, the filter ignored for a list."""
    huge = str(2**63)
    client = app.test_client()
    admin = make_user("admin")
    login(client, admin)
    for url in (f"/feedback/{huge}", f"/activity-reports/{huge}", f"/contacts/{huge}", f"/inbox/{huge}",
                f"/campaigns/{huge}", f"/reports/campaigns/{huge}"):
        assert client.get(url).status_code == 404, url
    for url in (f"/feedback?page={huge}", f"/feedback?campaign={huge}&topic={huge}", f"/activity-reports?partner={huge}",
                f"/inbox?campaign={huge}&page={huge}", f"/contacts?page={huge}", f"/admin/audit?page={huge}"):
        assert client.get(url).status_code == 200, url
    headers = api_token(admin)
    for url in (f"/api/v1/contacts?after={huge}&limit={huge}", f"/api/v1/conversations?campaign={huge}",
                f"/api/v1/contacts/{huge}"):
        assert client.get(url, headers=headers).status_code in (200, 400, 404), url
    r = client.post("/admin/codebook/topics", data={"code": "huge_order", "label_en": "Huge", "position": huge})
    assert r.status_code == 302  # the order, too large to store, is ignored (the default order is kept)


def test_a_nul_character_anywhere_in_a_request_is_a_400_never_a_500(app, make_user, login, api_token):
    """PostgreSQL refuses NUL in text; no query, form or JSON may carry one that far."""
    client = app.test_client()
    evaluator = make_user("evaluator")
    login(client, evaluator)
    for url in ("/feedback", "/reports", "/activity-reports", "/reports/feedback", "/contacts"):
        for name in ("country", "language", "type", "campaign", "by"):
            assert client.get(url, query_string=[(name, "GT"), (name, "a\x00b")]).status_code == 400, (url, name)
    headers = api_token(evaluator)
    r = client.get("/api/v1/reports/funnel", query_string={"country": "\x00"}, headers=headers)
    assert r.status_code == 400 and r.get_json()["fields"] == {"country": r.get_json()["message"]}
    partner = make_user("partner")
    r = client.post("/api/v1/partner-reports", json={"country": "HT", "locality": "Delmas\x00"},
                    headers=api_token(partner))
    assert r.status_code == 400
    login(client, partner)
    r = client.post("/activity-reports/new", data={"locality": "a\x00"})
    assert r.status_code == 400
    assert client.get("/feedback", query_string={"country": "GT"}).status_code == 403  # no NUL: the usual path


def test_the_lock_pins_every_dependency_the_project_declares():
    """Issue 13: installs are reproducible. requirements.lock (pip-compile of pyproject.toml, with the test
    extra) pins every package to one version; CI installs with it as constraints and checks that what is
    installed is exactly the lock. Refresh: README, "Dependencies"."""
    import re
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]

    def name(requirement: str) -> str:
        return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")

    pins = [line for line in (root / "requirements.lock").read_text().splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", p) for p in pins), pins
    locked = {name(p) for p in pins}
    assert {name(r) for r in declared} <= locked
