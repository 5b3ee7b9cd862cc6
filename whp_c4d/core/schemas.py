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


def _translate_marshmallow_defaults() -> None:
    """Marshmallow's own messages are English; every message a person reads must be translatable."""
    from marshmallow import Schema as _Schema

    _Schema._default_error_messages = {
        **_Schema._default_error_messages,
        "unknown": _l("Unknown field: check its spelling."),
        "type": _l("Invalid input type."),
    }
    for cls, extra in (
        (fields.Field, {"required": _l("This field is required."), "null": _l("This field may not be empty."),
                        "validator_failed": _l("Not a valid value.")}),
        (fields.List, {"invalid": _l("Expected a list.")}),
        (fields.Dict, {"invalid": _l("Expected a mapping (name: value).")}),
        (fields.Nested, {"type": _l("Expected a mapping of fields.")}),
        (fields.Integer, {"invalid": _l("Expected a whole number."), "too_large": _l("The number is too large.")}),
        (fields.Boolean, {"invalid": _l("Use true or false.")}),
        (fields.String, {"invalid": _l("Not valid text.")}),
        (fields.Date, {"invalid": _l("Not a valid date: use YYYY-MM-DD.")}),
    ):
        cls.default_error_messages = {**cls.default_error_messages, **extra}


_translate_marshmallow_defaults()
