"""Engine settings per database: SQLite gets WAL, a busy timeout and foreign keys."""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from flask import Flask

from ..extensions import db


def configure(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    if not isinstance(dbapi_conn, sqlite3.Connection):
        return
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def database_state() -> dict:
    """For /healthz: reachable, dialect and migration revision."""
    try:
        revision = db.session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        return {"ok": True, "dialect": db.engine.dialect.name, "revision": revision}
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy", reported as such
        db.session.rollback()
        return {"ok": False, "dialect": db.engine.dialect.name, "error": type(exc).__name__}


def dialect_insert(table):
    """``INSERT`` for the database in use (PostgreSQL or SQLite), which has ``on_conflict_do_nothing``:
    the one way several processes create a row only once."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert)(table)
