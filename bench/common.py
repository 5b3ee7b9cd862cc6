"""What every benchmark needs: a migrated app on a fresh database, and the tests' bulk helpers
(fictional contacts inserted in bulk; the in-memory fake Twilio in its own process)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_twilio import running as fake_twilio  # noqa: E402,F401  (re-exported)
from helpers import bulk_contacts  # noqa: E402,F401  (re-exported)

BENCH_CONFIG = {"SECRET_KEY": "bench", "C4D_DATA_KEY": "bench-key-0123456789"}


def bench_app(database_url: str | None, **config):
    """A migrated app on ``database_url`` (default: SQLite in a new temporary folder, which is also
    the instance folder, removed when the process ends). Returns the app and the folder."""
    from flask_migrate import upgrade

    from whp_c4d import create_app

    tmp = tempfile.mkdtemp(prefix="c4d-bench-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # a run leaves no database of fictional people
    os.environ["C4D_INSTANCE_PATH"] = tmp
    app = create_app({"DATABASE_URL": database_url or f"sqlite:///{tmp}/bench.db", **BENCH_CONFIG, **config})
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
    return app, tmp
