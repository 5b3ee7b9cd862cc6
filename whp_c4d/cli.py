"""The `c4d` console script: every Flask command plus the project's own (serve, users, contacts, privacy)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from .extensions import db


def _create_app():
    from . import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True, add_version_option=False)
def main():
    """WHP C4D: multilingual SMS and WhatsApp campaigns for the Regional Migration Programme."""


def upgrade_database() -> None:
    from flask_migrate import upgrade

    upgrade(directory=current_app.extensions["migrate"].directory)


def register(app) -> None:
    from . import demo

    app.cli.add_command(serve_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(users_group)
    app.cli.add_command(partners_group)
    app.cli.add_command(api_token_group)
    app.cli.add_command(contacts_group)
    app.cli.add_command(privacy_group)
    app.cli.add_command(demo.demo_command)
    from .campaigns.cli import campaigns_group
    app.cli.add_command(campaigns_group)
    from .translate_cli import translate_group
    app.cli.add_command(translate_group)
    from .simulator.cli import simulator_command
    app.cli.add_command(simulator_command)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--demo", "with_demo", is_flag=True, help="Seed one user per role and fictional contacts.")
@click.option("--worker/--no-worker", "with_worker", default=True, show_default=True,
              help="Run the scheduler and a dispatcher in this process (the embedded default).")
@with_appcontext
def serve_command(host: str, port: int, with_demo: bool, with_worker: bool):
    """Migrate, make sure an administrator can get in, and serve the app (embedded default)."""
    from werkzeug.serving import run_simple

    from .auth import services as auth

    click.echo("Preparing the database (applying migrations)…")
    upgrade_database()
    if with_demo:
        from .demo import seed_demo

        seed_demo(echo=click.echo)
    if not auth.has_admin():
        token = auth.create_setup_token()
        db.session.commit()
        base = current_app.config["C4D_PUBLIC_URL"]
        click.secho(f"\nNo administrator yet. Open this one-time link to create one (valid 24 h):\n"
                    f"  {base}/setup/{token}\n", fg="yellow")
    click.echo(f"WHP C4D on http://{host}:{port}/  (database: {db.engine.url.render_as_string(hide_password=True)})")
    announce_twilio(current_app.config)
    app = current_app._get_current_object()
    worker = None
    if with_worker:  # the scheduler and a dispatcher in this process (never started by create_app)
        from .scheduler.worker import Worker

        worker = Worker(app)
        try:
            worker.start()
        except RuntimeError as exc:  # another dispatcher already runs on this SQLite database
            raise click.ClickException(str(exc)) from None
    pump = None
    if app.config.get("C4D_SIMULATOR"):  # the simulator's status callbacks (never started by create_app)
        from .simulator.services import start_callback_pump

        pump = start_callback_pump(app)
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        if pump is not None:
            pump.stop()
        if worker is not None:
            worker.stop()


def announce_twilio(config) -> None:
    """Say where messages go: people's phones through Twilio, or the built-in simulator (nothing leaves
    the machine), so that nobody mistakes one for the other."""
    sid = config.get("TWILIO_ACCOUNT_SID")
    if sid:
        click.echo(f"Messages go to Twilio account {sid[:2]}…{sid[-4:]} ({config.get('TWILIO_API_BASE')}); "
                   + ("the simulator is also served at /simulator (C4D_SIMULATOR=on)." if config.get("C4D_SIMULATOR")
                      else "the simulator is off."))
    elif config.get("C4D_SIMULATOR"):
        click.echo("No Twilio account (TWILIO_ACCOUNT_SID): messages go to the built-in simulator, nothing leaves "
                   "this machine. Its phone screen is at /simulator/phones (officers and administrators).")


@click.command("worker")
@click.option("--no-scheduler", is_flag=True, help="Only dispatch (another worker leads the scheduler).")
@click.option("--no-dispatch", is_flag=True, help="Only run the scheduler when this worker leads.")
@click.option("--pool", default=16, show_default=True, help="Concurrent sends per dispatcher.")
@with_appcontext
def worker_command(no_scheduler: bool, no_dispatch: bool, pool: int):
    """Run the scheduler (when this worker leads) and a dispatcher until stopped (SIGTERM or Ctrl+C)."""
    import signal

    from .scheduler.worker import Worker

    upgrade_database()
    announce_twilio(current_app.config)
    worker = Worker(current_app._get_current_object(), dispatch=not no_dispatch, schedule=not no_scheduler,
                    pool_size=pool)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop_event.set())
    try:
        worker.run_forever()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        worker.stop()


# --- users -----------------------------------------------------------------------------------

@click.group("users")
def users_group():
    """Manage user accounts."""


@users_group.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["admin", "officer", "evaluator", "partner"]))
@click.option("--name", default="", help="Display name (default: the e-mail).")
@click.option("--partner", "partner_name", default=None, help="Partner organisation name (partner role).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def users_create(email: str, role: str, name: str, partner_name: str | None, password_stdin: bool):
    """Create a user; the password is asked for (or read from stdin), never passed as an argument."""
    import sqlalchemy as sa

    from .auth import services as auth
    from .auth.models import PartnerOrganisation
    from .core.errors import ServiceError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    partner_id = None
    if role == "partner":
        if not partner_name:
            raise click.UsageError("--partner NAME is required for the partner role")
        org = db.session.scalar(sa.select(PartnerOrganisation).where(PartnerOrganisation.name == partner_name))
        if org is None:
            raise click.UsageError(f"no partner organisation named {partner_name!r}")
        partner_id = org.id
    try:
        user = auth.create_user(email, name or email, role, password=password, partner_id=partner_id)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"created user {user.id} <{user.email}> with role {role}")


@users_group.command("reset-mfa")
@click.argument("email")
@with_appcontext
def users_reset_mfa(email: str):
    """Turn a user's two-step login off (a lost phone, no recovery code left): their sessions end, and they
    set it up again at their next login if their role requires it. Audited."""
    import sqlalchemy as sa

    from .auth import mfa
    from .auth.models import User
    from .auth.services import normalise_email

    user = db.session.scalar(sa.select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise click.ClickException(f"no user with the e-mail {email!r}")
    mfa.reset(user, None)
    db.session.commit()
    click.echo(f"two-step login reset for user {user.id} <{user.email}>; they set it up again at their next login"
               if mfa.required(user) else f"two-step login turned off for user {user.id} <{user.email}>")


@click.group("partners")
def partners_group():
    """Partner organisations."""


@partners_group.command("create")
@click.argument("name")
@click.option("--country", required=True, help="ISO 3166 code of the country the organisation works in (e.g. HT).")
@with_appcontext
def partners_create(name: str, country: str):
    """Create a partner organisation (its users are added with `c4d users create --partner NAME`)."""
    from .auth import services as auth
    from .core import phones
    from .core.errors import ServiceError

    code = country.strip().upper()
    if not phones.is_country(code):
        raise click.UsageError(f"unknown country code {country!r}: use ISO 3166 alpha-2, e.g. HT")
    try:
        org = auth.save_partner(None, name=name, country=code, active=True, actor=None)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"created partner organisation {org.id} {org.name!r} ({org.country})")


@click.group("api-token")
def api_token_group():
    """API tokens."""


@api_token_group.command("create")
@click.argument("email")
@click.option("--name", default="cli", show_default=True)
@with_appcontext
def api_token_create(email: str, name: str):
    """Print a new API token for the user (shown once; stored hashed)."""
    import sqlalchemy as sa

    from .auth import services as auth
    from .auth.models import User

    user = db.session.scalar(sa.select(User).where(User.email == auth.normalise_email(email)))
    if user is None or not user.active:
        raise click.ClickException(f"no active user {email}")
    _row, secret = auth.create_api_token(user, name)
    db.session.commit()
    click.echo(secret)


# --- contacts and privacy ----------------------------------------------------------------------

@click.group("contacts")
def contacts_group():
    """Contacts."""


@contacts_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--all-or-nothing", is_flag=True, help="Import nothing if any row is rejected.")
@with_appcontext
def contacts_import(path: Path, all_or_nothing: bool):
    """Import contacts from a CSV file (same rules and report as the web page)."""
    from .audience.importer import import_contacts

    limit = current_app.config["C4D_IMPORT_MAX_BYTES"]
    with path.open("rb") as fh:
        data = fh.read(limit + 1)
    report = import_contacts(data, None, all_or_nothing=all_or_nothing)
    if report.fatal:
        db.session.rollback()
        raise click.ClickException(report.fatal)
    for w in report.warnings:
        click.echo(f"warning: {w}")
    for p in report.rejected:
        click.echo(f"row {p.row}: {p.field}: {p.message}")
    if report.committed:
        db.session.commit()
        click.echo(f"{report.rows} rows: {report.created} created, {report.merged} merged, "
                   f"{len(report.rejected_rows)} rejected")
    else:
        db.session.rollback()
        click.echo(f"nothing imported: {len(report.rejected_rows)} rows rejected (all or nothing)")
        sys.exit(1)


@click.group("privacy")
def privacy_group():
    """Retention and erasure."""


@privacy_group.command("purge")
@with_appcontext
def privacy_purge():
    """Delete what is past its retention period (run daily by the scheduler)."""
    from .auth.services import audit
    from .core import retention

    result = retention.purge()
    audit("privacy.purged", None, removed=result)
    db.session.commit()
    for kind, n in sorted(result.items()):
        click.echo(f"{kind}: {n} removed")


@privacy_group.command("erase")
@click.argument("pseudonym")
@with_appcontext
def privacy_erase(pseudonym: str):
    """Erase one contact everywhere, by pseudonym."""
    import sqlalchemy as sa

    from .audience.erasure import erase_contact
    from .audience.models import Contact

    contact = db.session.scalar(sa.select(Contact).where(Contact.pseudonym == pseudonym.strip().upper()))
    if contact is None:
        raise click.ClickException("no contact with that pseudonym")
    erase_contact(contact, None)
    db.session.commit()
    click.echo("erased")
