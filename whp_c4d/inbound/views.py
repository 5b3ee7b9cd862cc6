"""POST /twilio/status: Twilio's status callbacks, signature-checked, logged append-only, applied by rank."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, request

from ..core.permissions import public
from ..extensions import db
from ..messaging.models import OutboundMessage
from ..messaging.status import apply_status
from .signature import is_valid

bp = Blueprint("inbound", __name__)
log = logging.getLogger(__name__)


@bp.post("/twilio/status")
@public  # Twilio has no session: the signature is the authentication
def status_callback():
    if not is_valid(current_app.config, request.path, request.query_string, request.form,
                    request.headers.get("X-Twilio-Signature")):
        log.warning("status callback refused: bad or missing signature")
        return "", 403
    message_id = request.args.get("m", type=int)
    status = (request.form.get("MessageStatus") or request.form.get("SmsStatus") or "").strip()
    sid = request.form.get("MessageSid") or request.form.get("SmsSid") or ""
    if not message_id or not status:
        return "missing m or MessageStatus", 400
    msg = db.session.get(OutboundMessage, message_id)
    if msg is None:
        return "", 204  # erased or purged since: nothing to record, and Twilio must not retry
    if msg.provider_sid and sid and sid != msg.provider_sid:
        log.warning("status callback for message %s carries another SID", message_id)
        return "SID does not match", 400
    if not msg.provider_sid and sid.startswith(("SM", "MM")):
        msg.provider_sid = sid[:34]
    error = request.form.get("ErrorCode", type=int)
    apply_status(db.session, msg, status, error, source="callback")
    db.session.commit()
    return "", 204
