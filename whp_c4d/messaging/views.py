"""Administration pages for senders: the numbers and Messaging Services messages go out from."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..core.errors import ServiceError
from ..core.i18n import all_countries
from ..core.permissions import requires
from ..extensions import db
from . import services
from .forms import SenderForm
from .models import Sender

bp = Blueprint("messaging", __name__, template_folder="templates")


@bp.get("/admin/senders")
@requires("senders.manage")
def senders():
    return render_template("messaging/senders.html", senders=services.list_senders())


def _sender_form(sender: Sender | None = None) -> SenderForm:
    form = SenderForm(obj=sender) if sender is not None and request.method == "GET" else SenderForm()
    form.countries.choices = all_countries()
    return form


def _save(sender: Sender | None, form: SenderForm) -> Sender:
    return services.save_sender(
        sender, name=form.name.data, channel=form.channel.data, from_address=form.from_address.data,
        messaging_service_sid=form.messaging_service_sid.data, countries=form.countries.data,
        cap_per_second=form.cap_per_second.data, is_default=form.is_default.data, active=form.active.data,
        actor=g.user)


@bp.route("/admin/senders/new", methods=["GET", "POST"])
@requires("senders.manage")
def sender_new():
    return _sender_page(None)


@bp.route("/admin/senders/<int:sender_id>", methods=["GET", "POST"])
@requires("senders.manage")
def sender_edit(sender_id: int):
    return _sender_page(db.session.get(Sender, sender_id) or abort(404))


def _sender_page(sender: Sender | None):
    form = _sender_form(sender)
    if form.validate_on_submit():
        try:
            _save(sender, form)
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("Sender saved."), "success")
            return redirect(url_for("messaging.senders"))
    return render_template("messaging/sender_form.html", form=form, sender=sender)
