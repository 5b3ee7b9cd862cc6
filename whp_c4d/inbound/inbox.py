"""The officers' inbox: conversations by contact (pseudonyms; a number only on an audited click), unread
counts, filters, the thread of one person, a manual reply through the outbox, and "mark as handled".

Pages only; the queries and rules are in ``inbox_services``. Every lookup by id goes through
``visible_contacts``, so another country's conversation is a 404.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, TextAreaField
from wtforms.validators import DataRequired, Length

from ..audience import services as audience
from ..auth.forms import EmptyForm
from ..core.database import page_arg
from ..core.errors import ServiceError
from ..core.i18n import all_countries
from ..core.permissions import can, requires
from ..extensions import db
from ..messaging.segments import analyse
from . import inbox_services as inbox
from .models import ACTION_LABELS, InboundMessage

bp = Blueprint("inbox", __name__, template_folder="templates")
log = logging.getLogger(__name__)

KIND_CHOICES = [("keyword", _l("Keywords")), ("feedback", _l("Feedback")), ("answer", _l("Poll answers")),
                ("menu", _l("Menu choices"))]
KIND_LABELS = {"keyword": _l("keyword"), "feedback": _l("feedback"), "answer": _l("poll answer"),
               "menu": _l("menu choice"), "ignored": _l("not answered (repeated message)")}
FLAG_LABELS = {"possible_opt_out": _l("possible opt-out")}
OUT_STATUS_LABELS = {
    "pending": _l("waiting"), "held": _l("held"), "claimed": _l("sending"), "sending": _l("sending"),
    "uncertain": _l("being checked"), "accepted": _l("accepted"), "queued": _l("queued"), "sent": _l("sent"),
    "delivered": _l("delivered"), "read": _l("read"), "undelivered": _l("not delivered"), "failed": _l("failed"),
    "skipped": _l("not sent"), "cancelled": _l("cancelled"), "missed": _l("missed"),
}


class ReplyForm(FlaskForm):
    channel = RadioField(_l("Channel"), choices=[], validators=[DataRequired()])
    body = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=inbox.MAX_REPLY_LENGTH)])
    handled = BooleanField(_l("Mark the conversation as handled"), default=True)


@bp.app_context_processor
def _inbox_globals():
    def inbox_unread() -> int | None:
        """The navigation's unread count: one COUNT, only when a page shows the Inbox link."""
        user = g.get("user") or current_user
        if not getattr(user, "is_authenticated", False) or not can(user.role, "inbox.view"):
            return None
        try:
            return inbox.unread_count(user)
        except sa.exc.SQLAlchemyError:  # an error page while the database is away must still render
            db.session.rollback()
            log.warning("inbox unread count unavailable")
            return None

    return {"inbox_unread": inbox_unread}


# --- the list ------------------------------------------------------------------------------------------

@bp.get("/inbox")
@requires("inbox.view")
def inbox_list():
    filters = inbox.InboxFilters.from_args(request.args)
    page = page_arg(request.args)
    rows, total, more = inbox.conversations(g.user, filters, page)
    countries = all_countries()
    if g.user.role == "officer" and g.user.countries:
        countries = [(code, name) for code, name in countries if code in g.user.countries]
    from ..core.i18n import language_name

    languages = [(c, language_name(c)) for c in audience.enabled_languages()]
    return render_template("inbound/inbox.html", rows=rows, total=total, page=page, more=more, filters=filters,
                           campaigns=inbox.campaign_choices(), countries=countries, languages=languages,
                           kinds=KIND_CHOICES, flag_labels=FLAG_LABELS)


# --- one conversation ----------------------------------------------------------------------------------

def _reply_form(options, *, blank: bool = False) -> ReplyForm:
    """Every channel the person uses is a valid choice, so that a refused one is answered with its reason;
    the page offers only the allowed ones."""
    form = ReplyForm(formdata=None) if blank else ReplyForm()
    form.channel.choices = [(o.channel, o.label) for o in options]
    if blank:
        allowed = [o.channel for o in options if o.allowed]
        form.channel.data = allowed[0] if allowed else None
    return form


def _render_thread(contact, *, form: ReplyForm | None = None, number: str | None = None, revealed: bool = False,
                   new_ids: frozenset[int] = frozenset(), status: int = 200):
    items, older = inbox.thread(contact)
    written = any(i.inbound is not None for i in items) or inbox.has_written(contact)
    options = inbox.reply_options(contact, written=written)
    form = form or _reply_form(options, blank=True)
    unhandled = sum(1 for i in items if i.inbound is not None and i.inbound.handled_at is None)
    return render_template(
        "inbound/thread.html", contact=contact, items=items, older=older, written=written, options=options,
        allowed=[o for o in options if o.allowed], form=form, number=number, revealed=revealed, new_ids=new_ids,
        masked=audience.number_for_display(contact, g.user), unhandled=unhandled, action_form=EmptyForm(),
        campaigns=inbox.campaign_names(items), handlers=inbox.handlers(items), segment_info=analyse(
            form.body.data or ""), kind_labels=KIND_LABELS, action_labels=ACTION_LABELS, flag_labels=FLAG_LABELS,
        status_labels=OUT_STATUS_LABELS, never_wrote=inbox.ReplyRefused("never_wrote").message,
    ), status


@bp.get("/inbox/<int:contact_id>")
@requires("inbox.view")
def conversation(contact_id: int):
    contact = audience.get_visible_contact(g.user, contact_id)
    m = InboundMessage
    new_ids = frozenset(db.session.scalars(sa.select(m.id).where(m.contact_id == contact.id, m.read_at.is_(None))))
    if new_ids:
        inbox.mark_read(contact)
        db.session.commit()
    return _render_thread(contact, new_ids=new_ids)


@bp.post("/inbox/<int:contact_id>/reveal")
@requires("contacts.reveal")
def reveal(contact_id: int):
    """Show the number on this answer only; audited by ``reveal_number``."""
    if not can(g.user.role, "inbox.view"):
        abort(403)
    contact = audience.get_visible_contact(g.user, contact_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    number = audience.reveal_number(contact, g.user, request.remote_addr)
    db.session.commit()
    return _render_thread(contact, number=number, revealed=True)


@bp.post("/inbox/<int:contact_id>/handled")
@requires("inbox.reply")
def handled(contact_id: int):
    contact = audience.get_visible_contact(g.user, contact_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    count = inbox.mark_handled(contact, g.user)
    db.session.commit()
    if count:
        flash(ngettext("%(pseudonym)s: %(num)s message marked as handled.",
                       "%(pseudonym)s: %(num)s messages marked as handled.", count, pseudonym=contact.pseudonym),
              "success")
    else:
        flash(_("%(pseudonym)s: nothing was waiting to be handled.", pseudonym=contact.pseudonym), "success")
    return redirect(url_for("inbox.inbox_list"))


@bp.post("/inbox/<int:contact_id>/reply")
@requires("inbox.reply")
def reply(contact_id: int):
    contact = audience.get_visible_contact(g.user, contact_id)
    options = inbox.reply_options(contact)
    form = _reply_form(options)
    if form.validate_on_submit():
        try:
            inbox.queue_manual_reply(contact, form.channel.data, form.body.data, g.user, ip=request.remote_addr)
            if form.handled.data:
                inbox.mark_handled(contact, g.user)
        except ServiceError as exc:
            db.session.rollback()
            form.channel.errors = [*form.channel.errors, exc.message]
        else:
            db.session.commit()
            label = inbox.CHANNEL_LABELS.get(form.channel.data, form.channel.data)
            flash(_("Reply queued by %(channel)s: it goes out within a minute.", channel=label), "success")
            return redirect(url_for("inbox.conversation", contact_id=contact.id) + "#reply")
    return _render_thread(contact, form=form, status=400)
