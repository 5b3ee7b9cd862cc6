"""Property tests for the phone normaliser and masking."""

from __future__ import annotations

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from whp_c4d.core import phones

REGIONS = ("GT", "HN", "SV", "MX", "HT", "DO", "CR", "PA", "SR", "BZ", "BS", "BB", "US")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.sampled_from(REGIONS + (None,)))
def test_parse_either_returns_valid_e164_or_raises_invalid_number(raw, region):
    try:
        parsed = phones.parse(raw, region)
    except phones.InvalidNumber as exc:
        # The message is one of a few fixed codes: what was typed never goes into it (or a traceback).
        assert str(exc) in {"too long", "unparseable", "invalid", "no region"}
        return
    assert parsed.e164.startswith("+") and parsed.e164[1:].isdigit()
    assert phones.parse(parsed.e164).e164 == parsed.e164  # idempotent


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(REGIONS))
def test_every_way_of_writing_a_number_gives_the_same_e164(region):
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    for form in (e164, national, international, "00" + e164[1:], "whatsapp:" + e164):
        assert phones.parse(form, region).e164 == e164


@given(st.sampled_from(REGIONS))
def test_mask_shows_only_the_country_code_and_last_two_digits(region):
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    masked = phones.mask(e164)
    digits = [c for c in masked if c.isdigit()]
    assert "".join(digits) == str(example.country_code) + e164[-2:]


def test_time_zone_follows_the_number_and_falls_back_to_the_country():
    assert phones.timezone_for("+50255510123", "GT") == "America/Guatemala"
    assert phones.timezone_for("+5978510123", "SR") == "America/Paramaribo"
    assert phones.timezone_for(None, "MX") == "America/Mexico_City"
    assert phones.timezone_for(None, None) == "UTC"
