"""Validation of partner activity reports: the one schema for the web form and the API (KoboToolbox too).

Messages are translated when validation runs (the partner's UI language) and keyed by field name; the
two reach breakdowns that do not add up are reported under ``by_sex`` and ``by_age``."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError, fields, post_load, pre_load, validates_schema

from ..core.i18n import country_name
from ..core.phones import PROGRAMME_COUNTRIES
from ..core.schemas import BaseSchema, Date, Str, msgs
from .models import ACTIVITY_TYPES, AGE_FIELDS, GROUPS, SEX_FIELDS

MAX_COUNT = 100_000
MAX_TEXT = 4000
TEXT_FIELDS = ("what_worked", "what_did_not", "questions_heard", "rumours_heard", "suggestions")
COUNT_FIELDS = ("participants", *SEX_FIELDS, *AGE_FIELDS)
LIST_FIELDS = ("campaign_ids", "groups", "languages")
TOKEN = re.compile(r"^[A-Za-z0-9_.:\-]{8,64}$")
_AREAS_FILE = Path(__file__).with_name("admin_areas.json")


@cache
def admin_areas() -> dict[str, dict[str, Any]]:
    """The shipped first administrative level of each programme country: {"GT": {"level", "areas"}}."""
    return json.loads(_AREAS_FILE.read_text(encoding="utf-8"))


def _fold(text: str) -> str:
    """Case and accents folded, so that "peten" from another tool finds "Petén"."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", " ", plain.casefold()).strip()


def find_area(country: str, name: str) -> str | None:
    """The area's name as shipped, or None when ``name`` is not one of ``country``'s."""
    wanted = _fold(name)
    for area in admin_areas().get(country, {}).get("areas", ()):
        if _fold(area) == wanted or _fold(area.removeprefix("Comarca ")) == wanted:
            return area
    return None


def _text(limit: int):
    def check(value: str) -> None:
        if len(value) > limit:
            raise ValidationError(_("At most %(max)s characters (this text has %(count)s).", max=limit,
                                    count=len(value)))
    return check


def _count_range(value: int) -> None:
    if not 0 <= value <= MAX_COUNT:
        raise ValidationError(_("Write a whole number from 0 to %(max)s.", max=MAX_COUNT))


def _count() -> fields.Integer:
    return fields.Integer(load_default=None, allow_none=True, strict=True, validate=_count_range,
                          error_messages=msgs(invalid=_l("Write a whole number, such as 12.")),
                          metadata={"description": f"People, 0 to {MAX_COUNT}"})


def _required_text(required, **metadata) -> fields.String:
    return fields.String(required=True, error_messages=msgs(required=required, invalid=_l("Not valid text.")),
                         metadata=metadata)


def _free_text(description: str, limit: int = MAX_TEXT) -> fields.String:
    return Str(load_default="", validate=_text(limit), metadata={"description": description})


class PartnerReportSchema(BaseSchema):
    """One activity report. ``languages`` (enabled content languages) and ``campaign_ids`` (the campaigns
    a partner may name) are passed in. ``participants`` left out is counted from the breakdown by sex (or
    by age); a breakdown left wholly out is not given, a partly given one must add up to the total."""

    submission_token = _required_text(_l("The form has no submission token: reload the page."),
                                      description="Minted with the form; a repeat with the same token finds the "
                                                  "report already received")
    partner_id = fields.Integer(load_default=None, allow_none=True,
                                metadata={"description": "The organisation (administrators only; a partner "
                                                         "files for their own)"})
    activity_date = Date(required=True, error_messages=msgs(
        required=_l("Give the date of the activity."), invalid=_l("Not a valid date: use YYYY-MM-DD.")))
    country = _required_text(_l("Choose the country of the activity."),
                             description="ISO 3166 code of a programme country", enum=list(PROGRAMME_COUNTRIES))
    admin_area = Str(load_default="", metadata={"description": "First administrative level (department, "
                                                               "province, state…) from the shipped list"})
    locality = _free_text("Town, village or neighbourhood", 200)
    activity_type = _required_text(_l("Choose the type of activity."), enum=list(ACTIVITY_TYPES))
    activity_other = _free_text("What kind of activity, when activity_type is other", 200)
    campaign_ids = fields.List(fields.Integer(strict=True), load_default=list,
                               metadata={"description": "Campaigns the activity was about"})
    materials = _free_text("Materials used", 500)
    participants = _count()
    women = _count()
    men = _count()
    sex_other = _count()
    age_under_13 = _count()
    age_13_17 = _count()
    age_18_59 = _count()
    age_60_plus = _count()
    groups = fields.List(Str(), load_default=list, metadata={"description": "Groups reached: " + ", ".join(GROUPS)})
    languages = fields.List(Str(), load_default=list, metadata={"description": "Content language codes"})
    what_worked = _free_text("What worked")
    what_did_not = _free_text("What did not work")
    questions_heard = _free_text("Questions heard (filed as feedback)")
    rumours_heard = _free_text("Rumours or false information heard (filed as feedback)")
    suggestions = _free_text("Suggestions (filed as feedback)")
    protection_concern = fields.Boolean(load_default=False, metadata={
        "description": "A protection concern: administrators are notified"})
    protection_text = _free_text("The concern; only administrators can read it")

    def __init__(self, *args, languages: list[str], campaign_ids: list[int] | None = None,
                 for_update: bool = False, protection_text_optional: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.languages = list(languages)
        self.campaign_ids = None if campaign_ids is None else set(campaign_ids)
        self.for_update = for_update
        self.protection_text_optional = protection_text_optional
        self._given: set[str] = set()
        if for_update:
            self.fields["submission_token"].required = False

    @pre_load
    def _clean(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        out: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, str):
                value = value.strip()
            if value in ("", None):
                continue  # not given
            if key in LIST_FIELDS and isinstance(value, str):  # "a b" (Kobo's select_multiple) or "a, b"
                value = [v for v in re.split(r"[\s,;]+", value) if v]
            if key in COUNT_FIELDS or key in ("campaign_ids", "partner_id"):
                value = _to_int(value)
            out[key] = value
        self._given = set(out)
        return out

    @validates_schema(skip_on_field_errors=False)
    def _rules(self, data, **kwargs):
        errors: dict[str, list[str]] = {}
        token = data.get("submission_token")
        if token is not None and not TOKEN.match(token):
            errors["submission_token"] = [_("Not a valid submission token: 8 to 64 letters, digits or - _ . :")]
        when = data.get("activity_date")
        if when is not None:
            if when > date.today() + timedelta(days=1):
                errors["activity_date"] = [_("The activity date cannot be in the future.")]
            elif when.year < 2000:
                errors["activity_date"] = [_("Check the year of the activity date.")]
        country = (data.get("country") or "").upper()
        if "country" in data:
            if country not in PROGRAMME_COUNTRIES:
                errors["country"] = [_("“%(value)s” is not one of the programme's countries: use %(allowed)s.",
                                       value=country[:10], allowed=", ".join(PROGRAMME_COUNTRIES))]
            else:
                data["country"] = country
                area = data.get("admin_area")
                if area:
                    found = find_area(country, area)
                    if found is None:
                        errors["admin_area"] = [_("“%(value)s” is not a department, province or state of "
                                                  "%(country)s: choose one from the list.", value=area[:80],
                                                  country=country_name(country))]
                    else:
                        data["admin_area"] = found
        kind = data.get("activity_type")
        if kind is not None:
            if kind not in ACTIVITY_TYPES:
                errors["activity_type"] = [_("Unknown type of activity “%(value)s”: use one of %(allowed)s.",
                                             value=kind[:30], allowed=", ".join(ACTIVITY_TYPES))]
            elif kind == "other" and not data.get("activity_other"):
                errors["activity_other"] = [_("Say what kind of activity it was.")]
        self._check_list(data, errors, "groups", GROUPS, _("Unknown group “%(value)s”: use %(allowed)s."))
        self._check_list(data, errors, "languages", self.languages,
                         _("Unknown language “%(value)s”: use %(allowed)s."))
        ids = data.get("campaign_ids") or []
        if self.campaign_ids is not None:
            bad = [i for i in ids if i not in self.campaign_ids]
            if bad:
                errors["campaign_ids"] = [_("Unknown campaign %(value)s: choose from the list.", value=bad[0])]
        if ids:
            data["campaign_ids"] = list(dict.fromkeys(ids))
        if data.get("protection_text"):
            data["protection_concern"] = True  # a concern written down is a concern: administrators must see it
        if data.get("protection_concern") and not data.get("protection_text") and not self.protection_text_optional:
            errors["protection_text"] = [_("Describe the protection concern: only administrators read it.")]
        self._check_reach(data, errors)
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def _check_list(data: dict, errors: dict, name: str, allowed, message: str) -> None:
        values = data.get(name) or []
        bad = [v for v in values if v not in allowed]
        if bad:
            errors[name] = [message % {"value": str(bad[0])[:30], "allowed": ", ".join(allowed)}]
        elif values:
            data[name] = list(dict.fromkeys(values))

    def _check_reach(self, data: dict, errors: dict) -> None:
        if any(name in self._given and name not in data for name in COUNT_FIELDS):
            return  # a number is not valid: its own message says so; the sums would only confuse
        sex = [data.get(n) for n in SEX_FIELDS]
        age = [data.get(n) for n in AGE_FIELDS]
        sex_given, age_given = any(v is not None for v in sex), any(v is not None for v in age)
        sex_sum, age_sum = sum(v or 0 for v in sex), sum(v or 0 for v in age)
        total = data.get("participants")
        if total is None:
            if not sex_given and not age_given:
                errors["participants"] = [_("Give the number of participants: the total, or the numbers by sex "
                                            "or by age.")]
                return
            total = sex_sum if sex_given else age_sum
            if total > MAX_COUNT:
                errors["participants"] = [_("Write a whole number from 0 to %(max)s.", max=MAX_COUNT)]
                return
            data["participants"] = total
            data["participants_derived"] = True
        if sex_given and sex_sum != total:
            errors["by_sex"] = [_("Women, men and other add up to %(sum)s, but the total is %(total)s.",
                                  sum=sex_sum, total=total)]
        if age_given and age_sum != total:
            errors["by_age"] = [_("The age groups add up to %(sum)s, but the total is %(total)s.",
                                  sum=age_sum, total=total)]

    @post_load
    def _fill(self, data, **kwargs):
        for name in COUNT_FIELDS:
            data[name] = data.get(name) or 0
        data.setdefault("participants_derived", False)
        if not data.get("protection_concern"):
            data["protection_text"] = ""
        return data


def _to_int(value: Any) -> Any:
    """Whole numbers written as text ("12", "12.0") become numbers; anything else is left for the field to
    refuse with its message."""
    if isinstance(value, list):
        return [_to_int(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d{1,9}(\.0+)?", text):
            return int(float(text))
    return value
