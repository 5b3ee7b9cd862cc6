"""`c4d campaigns …`: content files and the approval workflow, by the same rules as the web UI."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from ..auth.models import User
from ..auth.services import normalise_email
from ..core.errors import ServiceError
from ..extensions import db


@click.group("campaigns")
def campaigns_group():
    """Campaign content files and workflow."""


def _user(email: str | None) -> User | None:
    if email is None:
        return None
    user = db.session.scalar(sa.select(User).where(User.email == normalise_email(email)))
    if user is None or not user.active:
        raise click.ClickException(f"no active user {email}")
    return user


def _campaign(ident: str):
    from .models import Campaign

    campaign = (db.session.get(Campaign, int(ident)) if ident.isdigit()
                else db.session.scalar(sa.select(Campaign).where(Campaign.key == ident)))
    if campaign is None:
        raise click.ClickException(f"no campaign {ident}")
    return campaign


@campaigns_group.command("load")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--user", "email", default=None, help="Record the changes as this user (default: the system).")
@with_appcontext
def load_command(path: Path, email: str | None):
    """Load campaign YAML files (a file or a folder). Idempotent: unchanged files change nothing.
    If any file has errors, nothing is saved and every error is listed."""
    from .files import load_path

    results = load_path(path, _user(email))
    failed = [r for r in results if r.problems]
    for r in results:
        if r.problems:
            for p in r.problems:
                click.echo(str(p), err=True)
        else:
            click.echo(f"{r.file}: {r.key} {r.outcome} (campaign {r.campaign_id})")
    if failed:
        db.session.rollback()
        click.echo(f"{len(failed)} file(s) with errors: nothing saved", err=True)
        sys.exit(1)
    db.session.commit()


@campaigns_group.command("export")
@click.argument("ident")
@with_appcontext
def export_command(ident: str):
    """Print a campaign (id or key) as YAML, in the shape `load` reads."""
    from .files import dump_yaml

    click.echo(dump_yaml(_campaign(ident)), nl=False)


def _transition(ident: str, action: str, email: str) -> None:
    from ..core.permissions import can
    from . import services
    from .checks import blocking_problems

    campaign = _campaign(ident)
    user = _user(email)
    if not can(user.role, services.transition_permission(action)):
        raise click.ClickException(f"the {user.role} role may not {action} campaigns")
    try:
        services.transition(campaign, action, user)
    except ServiceError as exc:
        db.session.rollback()
        services.audit_refusal(campaign, user, exc)
        db.session.commit()
        if exc.code == "campaign_has_problems":
            for p in blocking_problems(campaign):
                click.echo(f"- {p.message}", err=True)
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"campaign {campaign.id} is now {campaign.status}")


# command -> (workflow action, what it does); every one follows the rules of the web page.
_WORKFLOW_COMMANDS = {
    "submit": ("submit", "Submit a draft for review (refused while blocking problems remain)."),
    "approve": ("approve", "Approve a campaign in review: another officer or an administrator than its last editor."),
    "launch": ("activate", "Launch an approved campaign: the scheduler starts planning and sending its steps."),
    "pause": ("pause", "Pause: messages that have not left yet are held at once."),
    "resume": ("resume", "Resume a paused campaign (the approved version): held messages go out again."),
    "cancel": ("complete", "End the campaign: messages that have not left are cancelled."),
}


def _workflow_command(name: str, action: str, help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @click.argument("ident")
    @click.option("--user", "email", required=True, help="Who does it (audited; the same permissions as the UI).")
    @with_appcontext
    def command(ident: str, email: str):
        _transition(ident, action, email)

    return command


for _name, (_action, _help) in _WORKFLOW_COMMANDS.items():
    campaigns_group.add_command(_workflow_command(_name, _action, _help))
