"""WHP C4D: the application factory. It never starts the scheduler (see `c4d worker` / `c4d serve`)."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from .config import load_config


def create_app(test_config: dict | None = None) -> Flask:
    instance = Path(os.environ.get("C4D_INSTANCE_PATH") or Path.cwd() / "instance").resolve()
    app = Flask(__name__, instance_path=str(instance), instance_relative_config=False)
    app.config.update(load_config(instance, test_config))

    from .core import web as core_web

    core_web.configure_logging(app)
    core_web.configure_url_converters(app)
    core_web.configure_proxies(app)
    register_extensions(app)
    register_blueprints(app)
    core_web.register_request_hooks(app)
    core_web.register_error_handlers(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    from .core import database
    from .core.crypto import DataKeys
    from .core.i18n import select_locale
    from .extensions import babel, csrf, db, login_manager, migrate

    app.extensions["c4d_keys"] = DataKeys(app.config["C4D_DATA_KEY"])
    db.init_app(app)
    database.configure(app)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"),
                     render_as_batch=True, compare_type=True)
    babel.init_app(app, locale_selector=select_locale)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = None  # server-side sessions do this job (auth.services)

    from .auth import services as auth_services

    @login_manager.user_loader
    def _load(token: str):
        return auth_services.load_session(token)

    # Models of every domain must be imported before Alembic or create_all look at the metadata.
    from . import models  # noqa: F401


def register_blueprints(app: Flask) -> None:
    from .api.views import bp as api_bp
    from .audience.views import bp as audience_bp
    from .auth.views import bp as auth_bp
    from .campaigns import settings_views  # noqa: F401  (adds the admin pages to the campaigns blueprint)
    from .campaigns.views import bp as campaigns_bp
    from .core.web import bp as core_bp
    from .extensions import csrf
    from .messaging.views import bp as messaging_bp
    from .reports.views import bp as reports_bp

    app.register_blueprint(core_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(audience_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    csrf.exempt(api_bp)  # bearer tokens, never cookies: no ambient authority to forge
    app.register_blueprint(messaging_bp)
    app.register_blueprint(campaigns_bp)
    from .inbound.views import bp as inbound_bp

    app.register_blueprint(inbound_bp)
    csrf.exempt(inbound_bp)  # Twilio signs its requests; there is no session to forge
    from .inbound.admin_views import bp as keywords_bp
    from .inbound.results_views import bp as polls_bp

    app.register_blueprint(keywords_bp)  # keyword administration; CSRF as every form
    app.register_blueprint(polls_bp)  # poll results pages
    from .inbound.inbox import bp as inbox_bp

    app.register_blueprint(inbox_bp)  # the officers' inbox: pages and forms, CSRF as usual
    from .feedback.views import bp as partner_reports_bp

    app.register_blueprint(partner_reports_bp)  # partner activity reports and protection notices
    from .feedback.coding_views import bp as feedback_bp

    app.register_blueprint(feedback_bp)  # the feedback queue and the codebook; CSRF as usual
    if app.config.get("C4D_SIMULATOR"):
        from .simulator.pages import bp as simulator_ui_bp
        from .simulator.views import bp as simulator_bp

        app.register_blueprint(simulator_bp, url_prefix="/simulator")
        csrf.exempt(simulator_bp)  # HTTP Basic auth like Twilio's API, never cookies
        app.register_blueprint(simulator_ui_bp, url_prefix="/simulator")  # phone screen, settings: CSRF as usual


def register_commands(app: Flask) -> None:
    from .cli import register

    register(app)
