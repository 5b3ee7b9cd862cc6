"""UI locale choice and names of languages and countries in the reader's language."""

from __future__ import annotations

import os

from babel import Locale
from flask import has_request_context, request, session
from flask_babel import get_locale
from flask_login import current_user

from ..config import UI_LOCALES


def select_locale() -> str:
    if not has_request_context():  # CLI and jobs: the operator's choice, else the default
        lang = os.environ.get("C4D_CLI_LANGUAGE", "en")
        return lang if lang in UI_LOCALES else "en"
    user = current_user
    if getattr(user, "is_authenticated", False) and user.ui_language in UI_LOCALES:
        return user.ui_language
    chosen = session.get("ui_language")
    if chosen in UI_LOCALES:
        return chosen
    return request.accept_languages.best_match(UI_LOCALES) or "es"


def _names_locale() -> Locale:
    """CLDR has no Haitian Creole names for languages and countries; French ones read best there."""
    locale = get_locale()
    return Locale("fr") if locale is None or locale.language == "ht" else locale


def language_name(code: str, *, in_sentence: bool = False) -> str:
    """The language's name in the UI language; capitalised for lists and headings, as Babel writes
    it (lower-case in Spanish and French) when ``in_sentence``."""
    try:
        name = Locale.parse(code).get_display_name(_names_locale()) or code
    except (ValueError, TypeError):
        try:
            name = Locale.parse(code).get_display_name("en") or code
        except (ValueError, TypeError):
            return code
    return name if in_sentence else name[:1].upper() + name[1:]


def country_name(code: str) -> str:
    return _names_locale().territories.get((code or "").upper(), code)


def all_countries() -> list[tuple[str, str]]:
    """(code, localised name), programme countries first, then the rest alphabetically."""
    import phonenumbers

    from .phones import PROGRAMME_COUNTRIES

    names = _names_locale().territories
    first = sorted(PROGRAMME_COUNTRIES, key=lambda c: names.get(c, c))
    rest = sorted((c for c in phonenumbers.SUPPORTED_REGIONS if c not in PROGRAMME_COUNTRIES and c in names),
                  key=lambda c: names.get(c, c))
    return [(c, names.get(c, c)) for c in first + rest]
