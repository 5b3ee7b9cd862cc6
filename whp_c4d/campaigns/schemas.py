"""The one shape of a campaign: content files, the REST API and the web editor validate with it."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

from ..core import phones
from ..core.schemas import BaseSchema, Date, Str, msgs
from .models import RECURRENCES, STEP_KINDS, TIMING_TYPES, WEEKDAYS

CHANNELS = ("sms", "whatsapp")
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,79}$")
STEP_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
TEMPLATE_SID_RE = re.compile(r"^HX[0-9a-f]{32}$")
# {hotline}: a variable. Braces around anything else ("{ }", "{1}") are plain text.
VARIABLE_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_SMS = 1600
MAX_WHATSAPP = 4096


@dataclass
class SchemaContext:
    """What validation needs from the database, passed in so the schema stays a pure function."""

    languages: list[str]
    objectives: list[str]
    variables: list[str]
    segments: list[str] = field(default_factory=list)


def variables_in(text: str | None) -> list[str]:
    return VARIABLE_RE.findall(text or "")


class HourMinute(fields.Field):
    """A local hour written "HH:MM"."""

    default_error_messages = {"invalid": _l("Not a valid time: use HH:MM, e.g. \"10:00\".")}

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else value.strftime("%H:%M")

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, time):
            return value
        m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", str(value))
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise self.make_error("invalid")
        return time(int(m.group(1)), int(m.group(2)))


def _code_list(**kw) -> fields.List:
    return fields.List(Str(), error_messages=msgs(invalid=_l("Expected a list.")), **kw)


class QuietHoursSchema(BaseSchema):
    start = HourMinute(required=True, error_messages=msgs())
    end = HourMinute(required=True, error_messages=msgs())


class TimingSchema(BaseSchema):
    type = Str(required=True, validate=validate.OneOf(
        TIMING_TYPES, error=_l("Use one of: at, recurring, drip.")))
    date = Date(load_default=None, allow_none=True)
    time = HourMinute(required=True, error_messages=msgs())
    timezone = Str(load_default=None, allow_none=True)
    every = Str(load_default=None, allow_none=True, validate=validate.OneOf(
        RECURRENCES, error=_l("Use weekly or monthly.")))
    weekday = Str(load_default=None, allow_none=True, validate=validate.OneOf(
        WEEKDAYS, error=_l("Use a weekday in English: monday … sunday.")))
    day = fields.Integer(load_default=None, allow_none=True, strict=True,
                         error_messages=msgs(invalid=_l("Expected a whole number.")))

    @validates_schema(skip_on_field_errors=True)
    def _consistent(self, data, **kwargs):
        errors: dict[str, list[str]] = {}
        kind = data["type"]
        if kind == "at" and data.get("date") is None:
            errors["date"] = [_("A date is required for a step at a date and time.")]
        if kind == "recurring":
            if data.get("every") is None:
                errors["every"] = [_("Say how often: weekly or monthly.")]
            elif data["every"] == "weekly" and data.get("weekday") is None:
                errors["weekday"] = [_("A weekly step needs a weekday.")]
            elif data["every"] == "monthly" and not (1 <= (data.get("day") or 0) <= 31):
                errors["day"] = [_("A monthly step needs a day of the month between 1 and 31.")]
        if kind == "drip" and not (0 <= (data.get("day") if data.get("day") is not None else -1) <= 730):
            errors["day"] = [_("A step after enrolment needs a day between 0 and 730.")]
        tz = data.get("timezone")
        if tz:
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                errors["timezone"] = [_("Unknown time zone “%(value)s”, e.g. America/Guatemala.", value=tz[:64])]
        if errors:
            raise ValidationError(errors)


class OptionSchema(BaseSchema):
    number = fields.Integer(required=True, strict=True, validate=validate.Range(
        1, 99, error=_l("Option numbers go from 1 to 99.")), error_messages=msgs(
        invalid=_l("Expected a whole number.")))
    label = Str(required=True, validate=validate.Length(1, 200, error=_l("Between 1 and 200 characters.")))
    words = fields.List(Str(validate=validate.Length(1, 60)), load_default=list)
    reply = Str(load_default=None, allow_none=True, validate=validate.Length(
        max=MAX_SMS, error=_l("At most %(max)s characters.")))


def _https_url(value: str) -> None:
    if not re.fullmatch(r"https://[^\s/?#]+\.[^\s/?#]+(/\S*)?", value or "") or len(value) > 500:
        raise ValidationError(_("Not a valid https:// address."))


class TemplateSchema(BaseSchema):
    sid = Str(required=True, validate=validate.Regexp(
        TEMPLATE_SID_RE, error=_l("A WhatsApp template ContentSid is HX followed by 32 hexadecimal characters.")))
    variables = fields.Dict(keys=Str(), values=Str(), load_default=dict)


class ContentSchema(BaseSchema):
    sms = Str(load_default="", validate=validate.Length(max=MAX_SMS, error=_l("At most %(max)s characters.")))
    whatsapp = Str(load_default=None, allow_none=True, validate=validate.Length(
        max=MAX_WHATSAPP, error=_l("At most %(max)s characters.")))
    media_url = Str(load_default=None, allow_none=True, validate=lambda v: _https_url(v))
    template = fields.Nested(TemplateSchema, load_default=None, allow_none=True)
    thanks = Str(load_default=None, allow_none=True, validate=validate.Length(max=MAX_SMS))
    options = fields.List(fields.Nested(OptionSchema), load_default=list)

    @pre_load
    def _blank_is_none(self, data, **kwargs):
        if isinstance(data, dict):
            return {k: (None if k != "sms" and isinstance(v, str) and not v.strip() else v) for k, v in data.items()}
        return data


class StepSchema(BaseSchema):
    key = Str(required=True, validate=validate.Regexp(
        STEP_KEY_RE, error=_l("Use lower-case letters, digits, - and _ (at most 60).")))
    kind = Str(load_default="message", validate=validate.OneOf(
        STEP_KINDS, error=_l("Use one of: message, poll, menu.")))
    timing = fields.Nested(TimingSchema, required=True)
    answer_window_hours = fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(
        1, 720, error=_l("Between 1 and 720 hours.")))
    content = fields.Dict(keys=Str(), values=fields.Nested(ContentSchema), load_default=dict)

    def __init__(self, *args, context: SchemaContext, campaign_languages: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.ctx = context
        self.campaign_languages = campaign_languages

    @validates_schema(skip_on_field_errors=True)
    def _content_rules(self, data, **kwargs):
        errors = step_errors(data, self.ctx, self.campaign_languages)
        if errors:
            raise ValidationError(errors)


def step_errors(data: dict, ctx: SchemaContext, campaign_languages: list[str] | None) -> dict:
    """Errors inside one step: languages, options, variables. Keys are paths below the step."""
    errors: dict[str, Any] = {}
    allowed = campaign_languages if campaign_languages is not None else ctx.languages
    content = data.get("content") or {}
    numbers_seen: dict[str, list[int]] = {}
    for lang, c in content.items():
        where: dict[str, Any] = {}
        if lang not in allowed:
            errors.setdefault("content", {})[lang] = {"_schema": [
                _("“%(value)s” is not one of the campaign's languages (%(allowed)s).",
                  value=lang[:10], allowed=", ".join(allowed))]}
            continue
        texts = {"sms": c.get("sms"), "whatsapp": c.get("whatsapp"), "thanks": c.get("thanks")}
        if c.get("template"):
            for name, value in (c["template"].get("variables") or {}).items():
                texts[f"template.variables.{name}"] = value
        for i, opt in enumerate(c.get("options") or []):
            texts[f"options.{i}.label"] = opt.get("label")
            texts[f"options.{i}.reply"] = opt.get("reply")
        for path, text in texts.items():
            unknown = [v for v in variables_in(text) if v not in ctx.variables]
            if unknown:
                where[path] = [unknown_variable_message(unknown[0], ctx.variables)]
        options = c.get("options") or []
        numbers = [o["number"] for o in options]
        kind = data.get("kind", "message")
        if kind == "message" and options:
            where["options"] = [_("Only poll and menu steps have options.")]
        elif kind in ("poll", "menu"):
            if len(options) < 2 and "options" not in where:
                where["options"] = [_("A poll or menu needs at least two options.")]
            elif len(set(numbers)) != len(numbers):
                where["options"] = [_("Each option needs its own number.")]
            if kind == "menu":
                for i, opt in enumerate(options):
                    if not (opt.get("reply") or "").strip():
                        where.setdefault(f"options.{i}.reply", []).append(
                            _("A menu option needs the text sent when it is picked."))
        numbers_seen[lang] = sorted(numbers)
        if where:
            errors.setdefault("content", {})[lang] = where
    distinct = {tuple(v) for v in numbers_seen.values() if v}
    if len(distinct) > 1:
        errors.setdefault("_schema", []).append(
            _("Options must have the same numbers in every language."))
    return errors


def unknown_variable_message(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name.lower(), known, n=1)
    if close:
        return _("Unknown variable {%(name)s}: did you mean {%(suggestion)s}?", name=name, suggestion=close[0])
    return _("Unknown variable {%(name)s}. Known variables: %(known)s.", name=name,
             known=", ".join("{" + k + "}" for k in known) or "-")


class CampaignSchema(BaseSchema):
    key = Str(required=True, validate=validate.Regexp(
        KEY_RE, error=_l("Use 2 to 80 lower-case letters, digits and dashes, e.g. verify-job-offers.")))
    name = Str(required=True, validate=validate.Length(1, 160, error=_l("Between 1 and 160 characters.")))
    objective = Str(required=True)
    description = Str(load_default="")
    countries = _code_list(required=True)
    languages = _code_list(required=True)
    fallbacks = fields.Dict(keys=Str(), values=fields.List(Str()), load_default=dict)
    channels = _code_list(required=True)
    audience = Str(load_default=None, allow_none=True)
    quiet_hours = fields.Nested(QuietHoursSchema, load_default=lambda: {"start": time(20), "end": time(8)})
    start_date = Date(load_default=None, allow_none=True)
    end_date = Date(load_default=None, allow_none=True)
    sms_fallback = fields.Boolean(load_default=False, error_messages=msgs(invalid=_l("Use true or false.")))
    max_delay_hours = fields.Integer(load_default=24, strict=True, validate=validate.Range(
        1, 720, error=_l("Between 1 and 720 hours.")))
    steps = fields.List(fields.Raw(), load_default=list)

    def __init__(self, *args, context: SchemaContext, **kwargs):
        super().__init__(*args, **kwargs)
        self.ctx = context

    @pre_load
    def _normalise(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, fold in (("countries", str.upper), ("languages", str.lower), ("channels", str.lower)):
            if isinstance(data.get(name), list):
                data[name] = [fold(str(v)).strip() for v in data[name]]
        if data.get("description") is None:
            data.pop("description", None)
        return data

    @validates_schema(skip_on_field_errors=False)
    def _rules(self, data, **kwargs):
        errors: dict[str, Any] = {}
        ctx = self.ctx
        if "objective" in data and data["objective"] not in ctx.objectives:
            errors["objective"] = [_("Unknown objective “%(value)s”: use one of %(allowed)s.",
                                     value=str(data["objective"])[:40], allowed=", ".join(ctx.objectives))]
        countries = data.get("countries")
        if countries is not None:
            bad = [c for c in countries if not phones.is_country(c)]
            if bad:
                errors["countries"] = [_("Unknown country code “%(value)s”: use ISO 3166 alpha-2, e.g. GT, MX, HT.",
                                         value=bad[0][:10])]
            elif not countries:
                errors["countries"] = [_("Choose at least one country.")]
        languages = data.get("languages")
        if languages is not None:
            bad = [c for c in languages if c not in ctx.languages]
            if bad:
                errors["languages"] = [_("Unknown language “%(value)s”: use one of %(allowed)s.",
                                         value=bad[0][:10], allowed=", ".join(ctx.languages))]
            elif not languages:
                errors["languages"] = [_("Choose at least one language.")]
            elif len(set(languages)) != len(languages):
                errors["languages"] = [_("Each language only once.")]
        channels = data.get("channels")
        if channels is not None:
            bad = [c for c in channels if c not in CHANNELS]
            if bad:
                errors["channels"] = [_("Unknown channel “%(value)s”: use sms or whatsapp.", value=bad[0][:20])]
            elif not channels:
                errors["channels"] = [_("Choose at least one channel.")]
        listed = languages or []
        for lang, chain in (data.get("fallbacks") or {}).items():
            wrong = [c for c in [lang, *chain] if c not in listed]
            if wrong:
                errors.setdefault("fallbacks", {})[lang] = [_(
                    "Fallbacks must be among the campaign's languages (%(allowed)s).", allowed=", ".join(listed))]
            elif lang in chain:
                errors.setdefault("fallbacks", {})[lang] = [_("A language cannot fall back on itself.")]
        audience = data.get("audience")
        if audience and audience not in ctx.segments:
            errors["audience"] = [_("No saved segment is named “%(value)s”.", value=audience[:120])]
        if data.get("start_date") and data.get("end_date") and data["end_date"] < data["start_date"]:
            errors["end_date"] = [_("The end date is before the start date.")]
        steps = data.get("steps") or []
        seen: set[str] = set()
        step_schema = StepSchema(context=ctx, campaign_languages=listed if "languages" not in errors else None)
        loaded = []
        for i, raw in enumerate(steps):
            if not isinstance(raw, dict):
                errors.setdefault("steps", {})[i] = {"_schema": [_("Expected a step (a mapping).")]}
                continue
            try:
                step = step_schema.load(raw)
            except ValidationError as exc:
                errors.setdefault("steps", {})[i] = exc.messages
                continue
            if step["key"] in seen:
                errors.setdefault("steps", {})[i] = {"key": [_("Another step already has the key “%(value)s”.",
                                                                value=step["key"])]}
            seen.add(step["key"])
            loaded.append(step)
        if errors:
            raise ValidationError(errors)
        data["steps"] = loaded


def error_paths(messages: dict | list | str, prefix: str = "") -> list[tuple[str, str]]:
    """Marshmallow's nested errors as ``("steps[2].content.ht.sms", message)`` pairs."""
    out: list[tuple[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
                name = f"{prefix}[{key}]"
            elif key in ("_schema", "value"):  # "value": marshmallow's level inside a Dict field
                name = prefix
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            out.extend(error_paths(value, name))
    elif isinstance(messages, list):
        for item in messages:
            out.extend(error_paths(item, prefix))
    else:
        out.append((prefix or "(campaign)", str(messages)))
    return out
