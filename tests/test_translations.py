"""The UI translation catalogs in translations/: complete where the product promises it, placeholders
intact, compiled .mo files in step with the .po files, and messages.pot in step with the code.

Refresh with `c4d translate extract`, `c4d translate update`, translate, `c4d translate compile`."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from whp_c4d.config import STAFF_LOCALES, UI_LOCALES
from whp_c4d.translate_cli import POT, ROOT, TRANSLATIONS, extract_args

PLACEHOLDER = re.compile(r"%\((\w+)\)[sdifr]")


def _read_po(path):
    with open(path, "rb") as fh:
        return read_po(fh)


def _po(locale: str):
    return _read_po(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po")


def _mo(locale: str):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo", "rb") as fh:
        return read_mo(fh)


def _entries(catalog):
    return [m for m in catalog if m.id]


def _strings(message) -> list[str]:
    return list(message.string) if isinstance(message.string, (list, tuple)) else [message.string or ""]


def _ids(message) -> list[str]:
    return list(message.id) if isinstance(message.id, (list, tuple)) else [message.id]


def _placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def _translated(message) -> bool:
    return all(_strings(message)) and "fuzzy" not in message.flags


@pytest.fixture(scope="module")
def template_ids():
    return {m.id for m in _entries(_read_po(POT))}


@pytest.mark.parametrize("locale", UI_LOCALES)
def test_every_catalog_holds_exactly_the_strings_of_the_template(locale, template_ids):
    assert {m.id for m in _entries(_po(locale))} == template_ids, "run `c4d translate update`"


@pytest.mark.parametrize("locale", STAFF_LOCALES)
def test_staff_locales_translate_every_string(locale, template_ids):
    catalog = _po(locale)
    missing = sorted(str(i) for i in template_ids if catalog.get(i) is None or not _translated(catalog.get(i)))
    assert not missing, f"{locale}: {len(missing)} strings without a translation, e.g. {missing[:5]}"


@pytest.mark.parametrize("locale", UI_LOCALES)
def test_no_entry_is_fuzzy(locale):
    catalog = _po(locale)
    assert not catalog.fuzzy, "the catalog header is fuzzy: pybabel would refuse to compile it"
    assert [m.id for m in _entries(catalog) if "fuzzy" in m.flags] == []


@pytest.mark.parametrize("locale", UI_LOCALES)
def test_translations_keep_the_placeholders_of_their_msgid(locale):
    wrong = []
    for m in _entries(_po(locale)):
        expected = set().union(*(_placeholders(i) for i in _ids(m)))
        for s in filter(None, _strings(m)):
            if _placeholders(s) != expected:
                wrong.append((m.id, s))
    assert wrong == []


@pytest.mark.parametrize("locale", UI_LOCALES)
def test_translations_can_be_formatted_like_their_msgid(locale):
    """Jinja's gettext always applies ``%`` (even without variables): a stray % would be a 500."""
    broken = []
    for m in _entries(_po(locale)):
        for s in filter(None, _strings(m)):
            try:
                s % defaultdict(lambda: "x")
            except (ValueError, TypeError, KeyError) as exc:
                broken.append((m.id, s, str(exc)))
    assert broken == []


@pytest.mark.parametrize("locale", UI_LOCALES)
def test_compiled_catalog_matches_its_po_file(locale):
    def key(value):  # plural entries: a tuple from the .po file, a list from the .mo file
        return tuple(value) if isinstance(value, (list, tuple)) else value

    po = {key(m.id): key(m.string) for m in _entries(_po(locale)) if _translated(m)}
    mo = {key(m.id): key(m.string) for m in _entries(_mo(locale))}
    assert mo == po, "the .mo file is stale: run `c4d translate compile`"


def test_template_is_up_to_date_with_the_code(tmp_path, template_ids):
    fresh = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "--quiet", *extract_args(fresh)],
                   cwd=ROOT, check=True)
    current = {m.id for m in _entries(_read_po(fresh))}
    assert sorted(map(str, current - template_ids)) == [], "new UI strings: run `c4d translate extract`"
    assert sorted(map(str, template_ids - current)) == [], "strings gone from the code: run `c4d translate extract`"


@pytest.mark.parametrize(("language", "log_in", "password"), [
    ("es", "Iniciar sesión", "Contraseña"),
    ("fr", "Se connecter", "Mot de passe"),
    ("ht", "Konekte", "Modpas"),
    ("nl", "Inloggen", "Wachtwoord"),
    ("en", "Log in", "Password"),
])
def test_login_page_speaks_the_browser_language(client, language, log_in, password):
    page = client.get("/login", headers={"Accept-Language": language}).get_data(as_text=True)
    assert f'<html lang="{language}">' in page
    assert f"<h1>{log_in}</h1>" in page and f">{password}</label>" in page
