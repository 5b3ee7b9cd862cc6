"""Twilio's request signature, checked against the public URL Twilio called (never request.url, which
behind a TLS-terminating proxy reads http://)."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator

from ..messaging.channels import auth_token


def public_url(config: Mapping, path: str, query: bytes | str) -> str:
    query = query.decode("latin-1") if isinstance(query, bytes) else query
    base = config["C4D_PUBLIC_URL"].rstrip("/")
    return base + path + (f"?{query}" if query else "")


def is_valid(config: Mapping, path: str, query: bytes | str, form: Mapping, signature: str | None) -> bool:
    if not signature:
        return False
    # Every field, repeated ones included (the validator reads MultiDict.getlist): Twilio adds fields
    # without notice and signs them all.
    return RequestValidator(auth_token(config)).validate(public_url(config, path, query), form, signature)
