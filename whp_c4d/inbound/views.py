"""Twilio's webhooks: ``POST /twilio/messages`` (what people send us) and ``POST /twilio/status``
(status callbacks, logged append-only, applied by rank). Both check the signature against
C4D_PUBLIC_URL + path + query; a forged or missing one gets 403 and nothing is stored."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request

from ..core.database import id_arg, int_arg
from ..core.permissions import public
from ..extensions import db
from ..messaging import outbox
from . import services
from .models import InboundMessage
from .signature import is_valid

bp = Blueprint("inbound", __name__)
log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def _signed() -> bool:
    return is_valid(current_app.config, request.path, request.query_string, request.form,
                    request.headers.get("X-Twilio-Signature"))


@bp.post("/twilio/messages")
@public  # Twilio has no session: the signature is the authentication
def inbound_message():
    """Store the message (once per MessageSid) and answer Twilio; understand it after the answer has
    left (``call_on_close``), so Twilio waits only for the insert. Answers to the person go through
    the outbox, so the TwiML is empty. A crash after the answer leaves the message ``received``; the
    worker finishes it."""
    if not _signed():
        log.warning("inbound message refused: bad or missing signature")
        return "", 403
    try:
        received = services.receive(request.form)
        db.session.commit()
    except services.MalformedInbound as exc:
        db.session.rollback()
        return Response(f"malformed inbound message: {exc}", 400, mimetype="text/plain")
    response = Response(EMPTY_TWIML, 200, mimetype="text/xml")
    if not received.duplicate:
        app, message_id = current_app._get_current_object(), received.message.id
        response.call_on_close(lambda: _understand(app, message_id))
    return response


def _understand(app, message_id: int) -> None:
    with app.app_context():
        try:
            message = db.session.get(InboundMessage, message_id)
            direct = services.process(message) if message is not None else []
            db.session.commit()
            services.send_direct(direct, app.config)
        except Exception:  # noqa: BLE001 - the message is stored; the worker finishes it
            db.session.rollback()
            log.exception("inbound %s stored but not processed; the worker will retry", message_id)
        finally:
            db.session.remove()


@bp.post("/twilio/status")
@public  # Twilio has no session: the signature is the authentication
def status_callback():
    if not _signed():
        log.warning("status callback refused: bad or missing signature")
        return "", 403
    message_id = request.args.get("m", type=id_arg)
    status = (request.form.get("MessageStatus") or request.form.get("SmsStatus") or "").strip()
    sid = request.form.get("MessageSid") or request.form.get("SmsSid") or ""
    if not message_id or not status:
        return "missing m or MessageStatus", 400
    error = request.form.get("ErrorCode", type=int_arg)
    outcome = outbox.record_callback(db.session, message_id, status, error, sid)
    if outcome == "mismatch":
        db.session.rollback()
        log.warning("status callback for message %s carries another SID", message_id)
        return "SID does not match", 400
    db.session.commit()  # "unknown": erased or purged since; nothing to record, and Twilio must not retry
    return "", 204
