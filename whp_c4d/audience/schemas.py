"""Validation of contacts as they arrive: CSV rows and the API share these rules."""

from __future__ import annotations

from datetime import date

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError, fields, post_load, pre_load, validates_schema

from ..core import phones
from ..core.schemas import BaseSchema, Date, Str, msgs
from .models import CHANNELS, CONSENT_SOURCES

IMPORT_SOURCES = tuple(s for s in CONSENT_SOURCES if s != "officer")
CSV_REQUIRED = ("phone", "country", "language", "channels", "consent_source", "consent_date")
CSV_OPTIONAL = ("tags",)


def split_list(value: str | list | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).replace(",", ";").split(";") if v.strip()]


class _ContactRules(BaseSchema):
    """Rules common to a CSV row and an API body. ``languages`` is the enabled list, passed in."""

    def __init__(self, *args, languages: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.languages = languages

    def _check_common(self, data: dict, errors: dict) -> None:
        country = (data.get("country") or "").strip().upper()
        if country and not phones.is_country(country):
            errors["country"] = [_("Unknown country code “%(value)s”: use ISO 3166 alpha-2, e.g. GT, MX, HT.",
                                   value=country[:10])]
        language = (data.get("language") or "").strip().lower()
        if language and language not in self.languages:
            errors["language"] = [_("Unknown language “%(value)s”: use one of %(allowed)s.",
                                    value=language[:10], allowed=", ".join(self.languages))]
        channels = [c.lower() for c in split_list(data.get("channels"))]
        bad = [c for c in channels if c not in CHANNELS]
        if bad:
            errors["channels"] = [_("Unknown channel “%(value)s”: use sms, whatsapp or both separated by ;.",
                                    value=bad[0][:20])]
        elif not channels:
            errors["channels"] = [_("At least one channel is required: sms, whatsapp or both.")]
        phone = data.get("phone") or ""
        if phone and "country" not in errors:
            try:
                phones.parse(phone, country or None)
            except phones.InvalidNumber:
                errors["phone"] = [_("Not a valid phone number for %(country)s.", country=country or "?")]


class ContactRowSchema(_ContactRules):
    """One CSV row. Dates are ISO (YYYY-MM-DD); lists are separated by ';'."""

    phone = Str(required=True)
    country = Str(required=True)
    language = Str(required=True)
    channels = Str(required=True)
    tags = Str(load_default="")
    consent_source = fields.String(required=True, error_messages=msgs(
        required=_l("No consent: consent_source is required (how the person agreed to receive messages).")))
    consent_date = Date(required=True, error_messages=msgs(
        required=_l("No consent date: consent_date is required (YYYY-MM-DD)."),
        invalid=_l("Not a valid date: use YYYY-MM-DD.")))

    @pre_load
    def _strip(self, data, **kwargs):
        return {k: (v.strip() if isinstance(v, str) else v) for k, v in data.items() if v not in ("", None)}

    @validates_schema(skip_on_field_errors=False)
    def _rules(self, data, **kwargs):
        errors: dict = {}
        self._check_common(data, errors)
        source = (data.get("consent_source") or "").lower()
        if source and source not in IMPORT_SOURCES:
            errors["consent_source"] = [_("Unknown consent source “%(value)s”: use one of %(allowed)s.",
                                          value=source[:30], allowed=", ".join(IMPORT_SOURCES))]
        when = data.get("consent_date")
        if when and when > date.today():
            errors["consent_date"] = [_("The consent date is in the future.")]
        if errors:
            raise ValidationError(errors)

    @post_load
    def _shape(self, data, **kwargs):
        parsed = phones.parse(data["phone"], data["country"])
        return {
            "e164": parsed.e164,
            "number_country": parsed.country,
            "country": data["country"].upper(),
            "language": data["language"].lower(),
            "channels": sorted({c.lower() for c in split_list(data["channels"])}),
            "tags": sorted({t.lower() for t in split_list(data.get("tags"))}),
            "consent_source": data["consent_source"].lower(),
            "consent_date": data["consent_date"],
        }


class ConsentSchema(BaseSchema):
    source = Str(required=True)
    date = Date(load_default=None)
    notice_version = Str(load_default=None)

    @validates_schema(skip_on_field_errors=False)
    def _source(self, data, **kwargs):
        if data.get("source") not in IMPORT_SOURCES:
            raise ValidationError({"source": [_("Use one of %(allowed)s.", allowed=", ".join(IMPORT_SOURCES))]})


class ContactCreateSchema(_ContactRules):
    phone = Str(required=True)
    country = Str(load_default=None)
    language = Str(required=True)
    channels = fields.List(fields.String(), required=True, error_messages=msgs())
    tags = fields.List(fields.String(), load_default=list)
    timezone = Str(load_default=None)
    consent = fields.Nested(ConsentSchema, required=True, error_messages=msgs())

    @validates_schema(skip_on_field_errors=False)
    def _rules(self, data, **kwargs):
        errors: dict = {}
        self._check_common(data, errors)
        tz = data.get("timezone")
        if tz and not phones.is_timezone(tz):
            errors["timezone"] = [_("Unknown time zone “%(value)s”.", value=tz[:64])]
        if errors:
            raise ValidationError(errors)


class ChannelStateSchema(BaseSchema):
    channel = fields.String()
    campaigns = fields.Boolean()
    polls = fields.Boolean()
    opted_out_at = fields.DateTime(allow_none=True)


class ContactOutSchema(BaseSchema):
    """What the API shows. ``number_masked`` only for roles that may see numbers (set by the view)."""

    id = fields.Integer()
    pseudonym = fields.String()
    status = fields.String()
    language = fields.String()
    country = fields.String()
    timezone = fields.String()
    channels = fields.List(fields.Nested(ChannelStateSchema))
    tags = fields.Method("_tags")
    created_at = fields.DateTime()
    last_activity_at = fields.DateTime(allow_none=True)
    number_masked = fields.String(allow_none=True)

    def _tags(self, obj):
        return [t.name for t in obj.tags]
