"""`c4d simulator`: the Twilio simulator on its own port, with the thread that posts status callbacks.

It serves the simulator's Twilio API (``/simulator/2010-04-01/…``) and ``/healthz`` of an app built
with ``C4D_SIMULATOR`` on, on the same database as the web app (so the settings page and the phone
screen, which need a login and stay in the web app, see its messages). Point the app at it with
``TWILIO_API_BASE=http://HOST:PORT/simulator``.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

API_PREFIX = "/simulator/2010-04-01/"


class ApiOnly:
    """WSGI filter: only the Twilio API routes and the health check; everything else is a 404."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(API_PREFIX) or path == "/healthz":
            return self.app(environ, start_response)
        body = b'{"code": 20404, "message": "Not found", "status": 404}'
        start_response("404 NOT FOUND", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


@click.command("simulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5001, show_default=True, type=int)
@click.option("--interval", default=0.25, show_default=True, type=float,
              help="Seconds between two looks for due status callbacks.")
@with_appcontext
def simulator_command(host: str, port: int, interval: float):
    """Run the Twilio simulator alone (its API and status callbacks), on the app's database."""
    from werkzeug.serving import run_simple

    from .. import create_app
    from ..cli import upgrade_database
    from .services import start_callback_pump

    upgrade_database()
    app = current_app._get_current_object()
    if not app.config.get("C4D_SIMULATOR"):  # e.g. a Twilio account is configured for the web app
        app = create_app({"C4D_SIMULATOR": True})
    pump = start_callback_pump(app, interval)
    click.echo(f"Twilio simulator on http://{host}:{port}/simulator  "
               f"(set TWILIO_API_BASE=http://{host}:{port}/simulator in the app)")
    try:
        run_simple(host, port, ApiOnly(app), threaded=True, use_reloader=False)
    finally:
        pump.stop()
