"""``X-Twilio-Signature`` as Twilio computes it, for the webhooks the simulator sends.

Twilio's algorithm (shared/guides/twilio.md): the full URL it calls, then for each POST parameter name
in sorted order the name followed by each of its values (sorted); HMAC-SHA1 keyed with the account's
auth token; base64. The app checks it with ``twilio.request_validator`` (in ``inbound/``, the only
place that imports it); the tests check this module against that validator and Twilio's own vector.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping

from ..messaging.channels import auth_token


def _pairs(params: Mapping[str, object] | Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    items = params.items() if isinstance(params, Mapping) else params
    grouped: dict[str, list[str]] = {}
    for name, value in items:
        values = value if isinstance(value, (list, tuple)) else [value]
        grouped.setdefault(str(name), []).extend("" if v is None else str(v) for v in values)
    return grouped


def compute_signature(auth_token: str, url: str,
                      params: Mapping[str, object] | Iterable[tuple[str, str]] = ()) -> str:
    """The signature Twilio puts in ``X-Twilio-Signature`` when it POSTs ``params`` to ``url``.

    ``params`` is a mapping (a value may be a list for a repeated field) or a list of (name, value)
    pairs, exactly what is sent as the form body. Like Twilio's validator, repeated equal values count
    once."""
    text = url
    grouped = _pairs(params)
    for name in sorted(grouped):
        for value in sorted(set(grouped[name])):
            text += name + value
    digest = hmac.new(auth_token.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signing_token(config: Mapping) -> str:
    """The token the simulator signs with: the real account's when one is configured (the app validates
    webhooks with it), else the simulator's own (the one ``TwilioChannel.from_config`` sends)."""
    return auth_token(config)
