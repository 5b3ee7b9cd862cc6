"""Test send: one step, as a recipient would get it, to the officer's own phone (the simulator by default)."""

from __future__ import annotations

from collections.abc import Mapping

from ..auth.models import User
from ..auth.services import audit
from ..core.errors import ServiceError
from ..messaging.channels import SendError, SendResult, channel_from_config
from ..messaging.services import sending_address
from .models import Step
from .planning import content_for, render, variable_values


def send_test(step: Step, user: User, *, language: str | None, channel: str | None, country: str | None,
              config: Mapping) -> SendResult:
    campaign = step.campaign
    if not user.test_phone:
        raise ServiceError("no_test_phone")
    language = language if language in campaign.languages else campaign.base_language
    channel = channel if channel in ("sms", "whatsapp") else "sms"
    country = country if country in campaign.countries else (campaign.countries[0] if campaign.countries else "")
    found = content_for(step, language or "")
    if found is None:
        raise ServiceError("test_send_failed", reason="no content")
    _used, content = found
    values = variable_values(country)
    to = ("whatsapp:" if channel == "whatsapp" else "") + user.test_phone
    address = sending_address(channel, country, config)
    if address is None:
        raise ServiceError("test_send_failed", reason="no sender")
    fields: dict = {"to": to, **address.api_fields}
    if channel == "whatsapp" and content.template_sid:
        fields["content_sid"] = content.template_sid
        fields["content_variables"] = {k: render(v, values) for k, v in (content.template_variables or {}).items()}
    elif channel == "whatsapp":
        fields["body"] = render(content.whatsapp_body, values)
        if content.media_url:
            fields["media_url"] = [content.media_url]
    else:
        fields["body"] = render(content.sms_text, values)
    provider = channel_from_config(config)
    try:
        result = provider.send(**fields)
    except SendError as exc:
        audit("campaign.test_send_failed", user, target_type="campaign", target_id=campaign.id, step=step.key,
              language=language, channel=channel, kind=exc.kind, code=exc.code)
        raise ServiceError("test_send_failed", reason=f"{exc.kind}, {exc.code or exc.http_status}") from None
    finally:
        provider.close()
    audit("campaign.test_sent", user, target_type="campaign", target_id=campaign.id, step=step.key,
          language=language, channel=channel, sid=result.sid)
    return result
