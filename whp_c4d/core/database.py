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
    # Deleted content is overwritten, not left in free pages: an erased person must not stay readable in
    # the database file (some SQLite builds have this on by default, others not).
    cur.execute("PRAGMA secure_delete=ON")
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


# Bounds of what the databases store and compare: a number from a URL beyond them would not be "not
# found" but an error from the driver (SQLite's 64-bit integers, PostgreSQL's 32-bit ``integer``).
_MAX_BIGINT = 2**63 - 1
_MAX_INTEGER = 2**31 - 1
MAX_PAGE = 100_000  # pages of a list: far beyond any real one, and an offset every database takes


def id_arg(raw: str) -> int:
    """``type=`` for an id or a number in a request: an int the database can compare, else ValueError
    (so ``args.get(name, type=id_arg)`` gives the default, as for any other malformed value)."""
    n = int(raw)
    if not -_MAX_BIGINT <= n <= _MAX_BIGINT:
        raise ValueError(raw)
    return n


def int_arg(raw: str) -> int:
    """``type=`` for a number a form stores in an ``integer`` column."""
    n = int(raw)
    if not -_MAX_INTEGER <= n <= _MAX_INTEGER:
        raise ValueError(raw)
    return n


def page_arg(args) -> int:
    """The page number of a list, from 1 to ``MAX_PAGE``, from ``args["page"]``."""
    return min(max(args.get("page", 1, type=id_arg), 1), MAX_PAGE)
