"""Marshmallow helpers: translated default messages, and errors flattened for people to read."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields

_MESSAGES = {
    "required": _l("This field is required."),
    "null": _l("This field may not be empty."),
    "invalid": _l("Not a valid value."),
}


def msgs(**extra) -> dict[str, Any]:
    return {**_MESSAGES, **extra}


class BaseSchema(Schema):
    class Meta:
        ordered = True


def Str(**kw) -> fields.String:  # noqa: N802 - reads like a field class
    return fields.String(error_messages=msgs(invalid=_l("Not valid text.")), **kw)


def Date(**kw) -> fields.Date:  # noqa: N802
    kw.setdefault("error_messages", msgs(invalid=_l("Not a valid date: use YYYY-MM-DD.")))
    return fields.Date(**kw)


def flatten_errors(errors: dict | list | str, prefix: str = "") -> list[tuple[str, str]]:
    """``{"consent": {"source": ["x"]}}`` -> ``[("consent.source", "x")]``, messages as plain str."""
    out: list[tuple[str, str]] = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.extend(flatten_errors(value, name))
    elif isinstance(errors, list):
        for item in errors:
            out.extend(flatten_errors(item, prefix))
    else:
        out.append((prefix or "_schema", str(errors)))
    return out
