"""Administrators' page for the keywords people send (STOP, HELP, a language…): list them by action, add
words, switch built-in ones off, delete the ones added here. The rules live in ``services``
(save_keyword, set_keyword_active, delete_keyword); matching itself is ``keywords.match_keyword``."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import NotFound

from ..audience import services as audience
from ..auth.forms import EmptyForm
from ..core.errors import ServiceError
from ..core.permissions import requires
from ..extensions import db
from . import keywords as kw
from . import services
from .models import ACTION_LABELS, ACTIONS, Keyword

bp = Blueprint("keywords", __name__, template_folder="templates")

ACTION_HINTS = {
    "opt_out": _l("Stops every message on every channel. Always understood first, even while a poll is open."),
    "opt_in": _l("Joins our messages, after an opt-out or for the first time."),
    "help": _l("Answers who we are, that we never ask for money, how to stop, and the help line."),
    "language": _l("Switches the language we write in to the target language."),
    "erase": _l("Asks for a confirmation, then deletes the person's number and messages."),
    "real": _l("Explains how to recognise our messages, with the official information link."),
}


def _page(errors: dict[str, str] | None = None, values: dict[str, str] | None = None, status: int = 200):
    rows = db.session.scalars(sa.select(Keyword).order_by(Keyword.language, Keyword.word)).all()
    groups = {action: [r for r in rows if r.action == action] for action in ACTIONS}
    return render_template("inbound/keywords.html", groups=groups, labels=ACTION_LABELS, hints=ACTION_HINTS,
                           actions=ACTIONS, languages=audience.enabled_languages(), form=EmptyForm(),
                           errors=errors or {}, values=values or {}, fuzzy_min=kw.FUZZY_MIN), status


def _back():
    return redirect(url_for("keywords.keywords"))


def _keyword(keyword_id: int) -> Keyword:
    row = db.session.get(Keyword, keyword_id)
    if row is None:
        raise NotFound()
    return row


def _last_stop_word(row: Keyword) -> bool:
    """Whether ``row`` is the last active opt-out word of its language: people must always be able to stop."""
    if row.action != "opt_out" or not row.active:
        return False
    others = db.session.scalar(sa.select(sa.func.count()).select_from(Keyword).where(
        Keyword.action == "opt_out", Keyword.language == row.language, Keyword.active.is_(True),
        Keyword.id != row.id))
    return not others


@bp.get("/admin/keywords")
@requires("keywords.manage")
def keywords():
    return _page()


@bp.post("/admin/keywords")
@requires("keywords.manage")
def keyword_add():
    values = {k: (request.form.get(k) or "").strip() for k in ("word", "action", "language", "value")}
    if values["action"] not in ACTIONS:
        return _page({"action": _("Choose what the keyword does.")}, values, 400)
    value = values["value"] or (values["language"] if values["action"] == "language" else None)
    try:
        row = services.save_keyword(values["word"], values["action"], values["language"], value, g.user)
    except ServiceError as exc:
        db.session.rollback()
        message = exc.message
        if exc.code == "unknown_language":
            field = "language" if exc.params.get("value") == values["language"].lower() else "value"
        else:
            field = "word"
        if exc.code == "keyword_taken":
            existing = db.session.scalar(sa.select(Keyword).where(Keyword.word == exc.params.get("value")))
            if existing is not None:
                label = ACTION_LABELS.get(existing.action, existing.action)
                message += " " + (_("It already means “%(action)s”.", action=label) if existing.active else
                                  _("It already means “%(action)s” (switched off).", action=label))
        return _page({field: message}, values, 400)
    db.session.commit()
    flash(_("Keyword “%(word)s” added.", word=row.word), "success")
    for other in db.session.scalars(sa.select(Keyword).where(Keyword.id != row.id)):
        if (other.action, other.value) != (row.action, row.value) and (
                kw.close_enough(row.word, other.word) or kw.close_enough(other.word, row.word)):
            flash(_("“%(word)s” is one typo away from “%(other)s”, which does something else: a misspelling "
                    "close to both will not be understood.", word=row.word, other=other.word), "warning")
            break
    return _back()


@bp.post("/admin/keywords/<int:keyword_id>/active")
@requires("keywords.manage")
def keyword_active(keyword_id: int):
    row = _keyword(keyword_id)
    active = request.form.get("active") == "y"
    if not active and _last_stop_word(row):
        flash(_("“%(word)s” is the last stop word in its language that is on: people must always be able to "
                "opt out.", word=row.word), "error")
        return _back()
    if row.active != active:
        services.set_keyword_active(row, active, g.user)
        db.session.commit()
    flash(_("“%(word)s” is on.", word=row.word) if active else
          _("“%(word)s” is off: messages saying it are no longer understood as a keyword.", word=row.word),
          "success")
    return _back()


@bp.post("/admin/keywords/<int:keyword_id>/delete")
@requires("keywords.manage")
def keyword_delete(keyword_id: int):
    row = _keyword(keyword_id)
    if row.built_in:
        flash(_("Built-in keywords cannot be deleted; switch them off instead."), "error")
        return _back()
    if _last_stop_word(row):
        flash(_("“%(word)s” is the last stop word in its language that is on: people must always be able to "
                "opt out.", word=row.word), "error")
        return _back()
    word = row.word
    services.delete_keyword(row, g.user)
    db.session.commit()
    flash(_("Keyword “%(word)s” deleted.", word=word), "success")
    return _back()
