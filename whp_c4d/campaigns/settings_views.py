"""Administrator pages for what authors rely on: objectives, content variables, prices, official domains."""

from __future__ import annotations

import sqlalchemy as sa
from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import NotFound

from ..auth.forms import EmptyForm
from ..core import phones
from ..core.errors import ServiceError
from ..core.permissions import requires
from ..extensions import db
from . import settings as service
from .models import CampaignObjective, ContentVariable, OfficialDomain, SegmentPrice
from .views import bp

LABEL_LOCALES = ("es", "en", "fr")


def _back():
    return redirect(url_for("campaigns.settings"))


def _run(fn, *args, ok: str):
    try:
        fn(*args, g.user)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(ok, "success")
    return _back()


@bp.get("/admin/campaign-settings")
@requires("settings.manage")
def settings():
    variables = db.session.scalars(sa.select(ContentVariable).order_by(ContentVariable.name)).all()
    return render_template(
        "campaigns/settings_admin.html", form=EmptyForm(), label_locales=LABEL_LOCALES,
        objectives=db.session.scalars(sa.select(CampaignObjective).order_by(CampaignObjective.position)).all(),
        variables=variables, countries=phones.PROGRAMME_COUNTRIES,
        prices=db.session.scalars(sa.select(SegmentPrice).order_by(SegmentPrice.country, SegmentPrice.channel)).all(),
        domains=db.session.scalars(sa.select(OfficialDomain).order_by(OfficialDomain.domain)).all())


@bp.post("/admin/campaign-settings/objectives")
@requires("settings.manage")
def settings_objective():
    labels = {loc: request.form.get(f"label_{loc}", "") for loc in LABEL_LOCALES}
    active = request.form.get("active", "y") == "y"
    return _run(lambda actor: service.save_objective(request.form.get("code", ""), labels, actor, active),
                ok=_("Objective saved."))


@bp.post("/admin/campaign-settings/variables")
@requires("settings.manage")
def settings_variable():
    return _run(lambda actor: service.save_variable(request.form.get("name", ""), request.form.get("description", ""),
                                                    actor), ok=_("Variable saved."))


@bp.post("/admin/campaign-settings/variables/<name>/values")
@requires("settings.manage")
def settings_variable_values(name: str):
    variable = db.session.get(ContentVariable, name)
    if variable is None:
        raise NotFound()
    values = {k.removeprefix("value_"): v for k, v in request.form.items() if k.startswith("value_")}
    return _run(lambda actor: service.set_variable_values(variable, values, actor),
                ok=_("Values of {%(name)s} saved.", name=name))


@bp.post("/admin/campaign-settings/variables/<name>/delete")
@requires("settings.manage")
def settings_variable_delete(name: str):
    variable = db.session.get(ContentVariable, name)
    if variable is None:
        raise NotFound()
    return _run(lambda actor: service.delete_variable(variable, actor), ok=_("Variable deleted."))


@bp.post("/admin/campaign-settings/prices")
@requires("settings.manage")
def settings_price():
    f = request.form
    if f.get("delete"):
        country, _sep, channel = f["delete"].partition(":")
        return _run(lambda actor: service.delete_price(country, channel, actor), ok=_("Price deleted."))
    return _run(lambda actor: service.save_price(f.get("country", ""), f.get("channel", ""), f.get("price", ""),
                                                 f.get("currency", "USD"), actor), ok=_("Price saved."))


@bp.post("/admin/campaign-settings/domains")
@requires("settings.manage")
def settings_domain():
    f = request.form
    if f.get("remove"):
        return _run(lambda actor: service.remove_domain(f["remove"], actor), ok=_("Domain removed."))
    return _run(lambda actor: service.add_domain(f.get("domain", ""), actor), ok=_("Domain added."))
