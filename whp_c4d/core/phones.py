"""Phone numbers: parsing to E.164, country, time zone and masking. The one normaliser everybody uses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import available_timezones

import phonenumbers
from phonenumbers import timezone as pn_timezone

# Where a country spans several zones, the zone most of its people live in; the contact's zone stays
# editable. Covers the programme's countries and the main countries people move through.
COUNTRY_DEFAULT_TZ = {
    "MX": "America/Mexico_City", "US": "America/New_York", "CA": "America/Toronto",
    "BR": "America/Sao_Paulo", "EC": "America/Guayaquil", "CL": "America/Santiago",
    "AR": "America/Argentina/Buenos_Aires", "CO": "America/Bogota", "VE": "America/Caracas",
    "GT": "America/Guatemala", "HN": "America/Tegucigalpa", "SV": "America/El_Salvador",
    "NI": "America/Managua", "CR": "America/Costa_Rica", "PA": "America/Panama", "BZ": "America/Belize",
    "HT": "America/Port-au-Prince", "DO": "America/Santo_Domingo", "BS": "America/Nassau",
    "BB": "America/Barbados", "SR": "America/Paramaribo", "CU": "America/Havana", "JM": "America/Jamaica",
    "ES": "Europe/Madrid", "FR": "Europe/Paris", "NL": "Europe/Amsterdam",
}

# The programme's countries (seed description), first in every country picker.
PROGRAMME_COUNTRIES = ("BS", "BB", "BZ", "CR", "SV", "GT", "HT", "HN", "MX", "PA", "SR", "DO")

_SUPPORTED_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)
_ZONES: frozenset[str] | None = None


class InvalidNumber(ValueError):
    """Raised without the number in its message, so a traceback never carries it."""


@dataclass(frozen=True)
class ParsedNumber:
    e164: str
    country: str
    calling_code: int


def is_country(code: str | None) -> bool:
    return bool(code) and code.upper() in _SUPPORTED_REGIONS


def is_timezone(name: str | None) -> bool:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return bool(name) and name in _ZONES


def parse(raw: str, default_country: str | None = None) -> ParsedNumber:
    """Parse what a person typed or a file held. Accepts +E.164, 00-prefixed, national with a country,
    and WhatsApp addresses (``whatsapp:+502...``)."""
    text = (raw or "").strip()
    if text.lower().startswith("whatsapp:"):
        text = text[9:]
    if text.startswith("00"):
        text = "+" + text[2:]
    if len(text) > 40:
        raise InvalidNumber("too long")
    region = default_country.upper() if default_country and is_country(default_country) else None
    try:
        num = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber("unparseable") from exc
    if not phonenumbers.is_valid_number(num):
        raise InvalidNumber("invalid")
    country = phonenumbers.region_code_for_number(num)
    if not country or country == "ZZ":
        raise InvalidNumber("no region")
    return ParsedNumber(phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164), country,
                        num.country_code)


UNKNOWN_COUNTRY = "ZZ"  # CLDR's "unknown region": a number whose country cannot be told


def parse_as_given(raw: str, from_country: str | None = None) -> ParsedNumber:
    """A number Twilio gave us (the ``From`` of an inbound message): parsed when it can be; else kept as
    given — a new range libphonenumber does not know yet is still somebody's phone, and a message from it
    (a STOP above all) must not be refused. The country comes from the calling code, else Twilio's
    ``FromCountry``, else ``ZZ``."""
    try:
        return parse(raw, from_country)
    except InvalidNumber:
        pass
    text = (raw or "").strip()
    if text.lower().startswith("whatsapp:"):
        text = text[9:]
    digits = re.sub(r"\D", "", text)
    number = ("+" + digits) if text.startswith("+") and 3 <= len(digits) <= 15 else re.sub(r"[^0-9A-Za-z+]", "", text)[:40]
    if not number:
        raise InvalidNumber("empty")
    country = None
    try:
        code = phonenumbers.parse(number, None).country_code if number.startswith("+") else None
        region = phonenumbers.region_code_for_country_code(code) if code else None
        country = region if region and region != "ZZ" else None
    except phonenumbers.NumberParseException:
        pass
    if country is None and from_country and is_country(from_country):
        country = from_country.upper()
    return ParsedNumber(number, country or UNKNOWN_COUNTRY, 0)


def timezone_for(e164: str | None, country: str | None) -> str:
    """A contact's zone from their number, else from their country, else UTC."""
    zones: list[str] = []
    if e164:
        try:
            zones = [z for z in pn_timezone.time_zones_for_number(phonenumbers.parse(e164)) if is_timezone(z)]
        except phonenumbers.NumberParseException:
            zones = []
    if len(zones) == 1:
        return zones[0]
    default = COUNTRY_DEFAULT_TZ.get((country or "").upper())
    if default and (not zones or default in zones):
        return default
    return zones[0] if zones else (default or "UTC")


def mask(e164: str) -> str:
    """``+50255510123`` -> ``+502 •••• ••23``: the country and the last two digits only."""
    try:
        code = str(phonenumbers.parse(e164).country_code)
    except phonenumbers.NumberParseException:
        code = ""
    return f"+{code} •••• ••{e164[-2:]}" if code else "•••• ••"

