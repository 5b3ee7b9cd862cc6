"""`c4d translate`: keep the UI translation catalogs (Flask-Babel) in step with the code.

    c4d translate extract   # UI strings of whp_c4d/ -> translations/messages.pot
    c4d translate update    # messages.pot -> translations/<locale>/LC_MESSAGES/messages.po, every UI locale
    c4d translate compile   # every messages.po -> messages.mo (committed, so an install works as is)

Each step runs pybabel (``python -m babel.messages.frontend``) with this interpreter, so no pybabel
needs to be on PATH. Translate the empty entries in the .po files between `update` and `compile`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from .config import UI_LOCALES

ROOT = Path(__file__).resolve().parent.parent
BABEL_CFG = ROOT / "babel.cfg"
TRANSLATIONS = ROOT / "translations"
POT = TRANSLATIONS / "messages.pot"
KEYWORDS = ("_", "_l", "gettext", "lazy_gettext", "ngettext:1,2", "lazy_pgettext:1c,2")  # (context,) singular, plural


def extract_args(output: Path | str = POT) -> list[str]:
    """pybabel arguments that write the template of every UI string to ``output`` (run from ROOT)."""
    args = ["extract", "-F", str(BABEL_CFG), "-o", str(output),
            "--no-location", "--sort-output", "--project", "WHP C4D", "--copyright-holder", "IOM"]
    for keyword in KEYWORDS:
        args += ["-k", keyword]
    return args + ["."]


def pybabel(args: list[str], quiet: bool = True) -> None:
    verbosity = ["--quiet"] if quiet else []
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *verbosity, *args], cwd=ROOT, check=True)


@click.group("translate")
def translate_group():
    """UI translations: extract strings, update the catalogs, compile them."""


@translate_group.command("extract")
def extract_command():
    """Collect the UI strings of the code and templates into translations/messages.pot."""
    pybabel(extract_args())
    click.echo(f"wrote {POT.relative_to(ROOT)}")


@translate_group.command("update")
def update_command():
    """Merge messages.pot into the catalog of every UI locale (new entries come out empty, never fuzzy)."""
    for locale in UI_LOCALES:
        pybabel(["update", "-i", str(POT), "-d", str(TRANSLATIONS), "-l", locale, "--init-missing",
                 "--no-fuzzy-matching", "--ignore-obsolete", "--ignore-pot-creation-date"])
    click.echo(f"updated {', '.join(UI_LOCALES)}: translate the empty entries, then run `c4d translate compile`")


@translate_group.command("compile")
def compile_command():
    """Compile every catalog to the .mo files Flask-Babel reads."""
    for locale in UI_LOCALES:
        pybabel(["compile", "--statistics", "-d", str(TRANSLATIONS), "-l", locale], quiet=False)
