"""The dashboard: who we can reach, by country, language and channel, with small cells suppressed."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, g, render_template

from ..audience.models import ContactChannel
from ..audience.services import visible_contacts
from ..core.permissions import requires
from ..extensions import db
from .suppression import cell

bp = Blueprint("reports", __name__, template_folder="templates")


def _grouped(column) -> list[tuple[str, str]]:
    scoped = visible_contacts(g.user).subquery()
    rows = db.session.execute(
        sa.select(scoped.c[column], sa.func.count()).group_by(scoped.c[column]).order_by(sa.func.count().desc())
    ).all()
    return [(key, cell(n)) for key, n in rows]


@bp.get("/")
@requires("dashboard.view")
def dashboard():
    scoped = visible_contacts(g.user).subquery()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(scoped))
    reach = db.session.execute(
        sa.select(ContactChannel.channel,
                  sa.func.count().filter(ContactChannel.campaigns.is_(True), ContactChannel.opted_out_at.is_(None)),
                  sa.func.count().filter(ContactChannel.opted_out_at.is_not(None)))
        .where(ContactChannel.contact_id.in_(sa.select(scoped.c.id)))
        .group_by(ContactChannel.channel).order_by(ContactChannel.channel)
    ).all()
    inbound_only = db.session.scalar(
        sa.select(sa.func.count()).select_from(scoped).where(scoped.c.status == "inbound_only"))
    return render_template(
        "reports/dashboard.html", total=cell(total), inbound_only=cell(inbound_only),
        by_country=_grouped("country"), by_language=_grouped("language"),
        reach=[(ch, cell(ok), cell(out)) for ch, ok, out in reach],
    )


