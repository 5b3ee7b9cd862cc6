"""The simulator's pages for people: the phone screen (fake handsets, their conversations, replies that
reach the app as signed webhooks) and the fault-injection settings. A blueprint of its own,
``simulator_ui``, so CSRF protects these forms (the Twilio API blueprint is exempt: it uses Basic auth).
Handsets are addressed by the number's blind index, never by the number."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..core.database import page_arg
from ..core.permissions import requires
from ..extensions import db
from . import services
from . import settings as sim_settings
from .forms import NewPhoneForm, ReplyForm, SettingsForm

bp = Blueprint("simulator_ui", __name__, template_folder="templates")

STATUS_LABELS = {
    "accepted": _l("accepted"), "scheduled": _l("scheduled"), "queued": _l("queued"), "sending": _l("sending"),
    "sent": _l("sent"), "delivered": _l("delivered"), "undelivered": _l("not delivered"), "failed": _l("failed"),
    "read": _l("read"), "canceled": _l("canceled"), "received": _l("received"),
}

SETTING_ERRORS = {
    "latency_ms": _l("Write milliseconds such as 100, or a range such as 50-300 (at most 60000)."),
    "callback_delays": _l("Write three increasing numbers of seconds separated by commas, such as 0.5,1.5,4."),
    "timeout_seconds": _l("Write a number of seconds above 0 and at most 600."),
}
RATE_ERROR = _l("Write a share from 0 to 1, such as 0.05 (five in a hundred).")
SUM_ERROR = _l("The shares of 429 answers, server errors, timeouts and accepted-then-lost answers add up to "
               "more than 1.")


def _channel_label(address: str) -> str:
    return "WhatsApp" if address.startswith("whatsapp:") else "SMS"


def _target_choices(targets: list[str]) -> list[tuple[str, str]]:
    return [(t, f"{_channel_label(t)} · {t.removeprefix('whatsapp:')}") for t in targets]


def _flash_webhook(status: int | None) -> None:
    if status is not None and 200 <= status < 300:
        flash(_("Delivered to the app (HTTP %(status)s).", status=status), "success")
    elif status is not None:
        flash(_("Stored in the simulator, but the app answered HTTP %(status)s.", status=status), "error")
    else:
        flash(_("Stored in the simulator, but the app could not be reached at %(url)s.",
                url=services.inbound_webhook_url()), "error")


def _send(number: str, to: str, body: str) -> tuple[str | None, int | None]:
    """Store the handset's message, commit, post the webhook; (handset id, HTTP status) or (None, None)."""
    try:
        message = services.record_inbound(number, to, body)
    except ValueError as exc:
        db.session.rollback()
        flash(_("That phone number is not valid: write it with + and the country code.") if str(exc) == "number"
              else _("The message could not be sent from this phone."), "error")
        return None, None
    handset_id = message.from_index
    db.session.commit()  # stored before the app is called: nothing held open while it answers
    status = services.post_inbound(message)
    db.session.commit()
    return handset_id, status


@bp.get("/phones")
@requires("simulator.phone")
def phones():
    page = page_arg(request.args)
    handsets, more = services.list_handsets(page)
    form = NewPhoneForm()
    form.to.choices = _target_choices(services.new_phone_targets())
    return render_template("simulator/phones.html", handsets=handsets, page=page, more=more, form=form)


@bp.post("/phones/new")
@requires("simulator.phone")
def phone_new():
    form = NewPhoneForm()
    form.to.choices = _target_choices(services.new_phone_targets())
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(error, "error")
        return redirect(url_for("simulator_ui.phones"))
    handset_id, status = _send(form.number.data, form.to.data, form.body.data)
    if handset_id is None:
        return redirect(url_for("simulator_ui.phones"))
    _flash_webhook(status)
    return redirect(url_for("simulator_ui.phone", handset_id=handset_id))


def _handset_or_404(handset_id: str) -> services.Handset:
    handset = services.get_handset(handset_id)
    if handset is None:
        abort(404)
    return handset


@bp.get("/phones/<handset_id>")
@requires("simulator.phone")
def phone(handset_id: str):
    handset = _handset_or_404(handset_id)
    messages = services.conversation(handset)
    db.session.commit()  # statuses that fell due since the last look
    form = ReplyForm()
    form.to.choices = _target_choices(services.reply_targets(handset))
    return render_template("simulator/phone.html", handset=handset, messages=messages, form=form,
                           status_labels=STATUS_LABELS, webhook_url=services.inbound_webhook_url())


@bp.post("/phones/<handset_id>/reply")
@requires("simulator.phone")
def phone_reply(handset_id: str):
    handset = _handset_or_404(handset_id)
    form = ReplyForm()
    form.to.choices = _target_choices(services.reply_targets(handset))
    if form.validate_on_submit():
        sent_id, status = _send(handset.number, form.to.data, form.body.data)
        if sent_id is not None:
            _flash_webhook(status)
    else:
        for errors in form.errors.values():
            for error in errors:
                flash(error, "error")
    return redirect(url_for("simulator_ui.phone", handset_id=handset.id, _anchor="reply"))


# --- fault injection ---------------------------------------------------------------------------------

@bp.route("/settings", methods=["GET", "POST"])
@requires("simulator.manage")
def settings_page():
    current = sim_settings.current()
    defaults = sim_settings.defaults(current_app.config)
    form = SettingsForm(data=current.as_form() if request.method == "GET" else None)
    if form.validate_on_submit():
        values = {}
        for name in sim_settings.CONFIG_KEYS:
            raw = (form[name].data or "").strip()
            if not raw:
                continue
            values[name] = raw if name in ("latency_ms", "callback_delays") else raw.replace(",", ".")
        try:
            sim_settings.save(values)
        except sim_settings.SettingsError as exc:
            db.session.rollback()
            if exc.field == "rates_total":
                form.rate_429.errors = [*form.rate_429.errors, SUM_ERROR]
            else:
                form[exc.field].errors = [*form[exc.field].errors, SETTING_ERRORS.get(exc.field, RATE_ERROR)]
        else:
            db.session.commit()
            flash(_("Simulator settings saved. They apply at once, in every process."), "success")
            return redirect(url_for("simulator_ui.settings_page"))
    return render_template("simulator/settings.html", form=form, defaults=defaults.as_form(),
                           keys=sim_settings.CONFIG_KEYS)


@bp.post("/settings/reset")
@requires("simulator.manage")
def settings_reset():
    sim_settings.reset()
    db.session.commit()
    flash(_("Simulator settings back to the defaults of the environment."), "success")
    return redirect(url_for("simulator_ui.settings_page"))
