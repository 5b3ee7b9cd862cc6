"""Demo data for training and first looks: one user per role, fictional contacts. Never for production."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from .audience import services as audience
from .auth import services as auth
from .auth.models import PartnerOrganisation, User
from .core import phones
from .extensions import db

DEMO_DOMAIN = "demo.c4d.example"  # reserved TLD: these addresses can never receive mail

# Fictional numbers: 555-01xx in the North American plan (reserved for fiction), and clearly fake
# patterns elsewhere (…5550 1xx / …0000 1xx), checked valid by the same parser the app uses.
_FAKE_PATTERNS = {
    "GT": "+502555{:05d}", "HN": "+504955{:05d}", "SV": "+503755{:05d}", "MX": "+5255550{:05d}",
    "HT": "+509375{:05d}", "DO": "+1809555{:04d}", "CR": "+506855{:05d}", "PA": "+507655{:05d}",
    "SR": "+597855{:04d}", "BZ": "+501655{:04d}", "US": "+1202555{:04d}",
}


def fictional_numbers(country: str, count: int, start: int = 100) -> list[str]:
    pattern = _FAKE_PATTERNS[country]
    out: list[str] = []
    n = start
    while len(out) < count and n < start + 5000:
        try:
            out.append(phones.parse(pattern.format(n)).e164)
        except phones.InvalidNumber:
            pass
        n += 1
    return out


def seed_demo(echo: Callable[[str], None] = print, contacts: int = 60) -> bool:
    """Create the demo users and contacts once. Returns False when they already exist."""
    if db.session.scalar(sa.select(User.id).where(User.email == f"admin@{DEMO_DOMAIN}")):
        echo("Demo data already present (passwords were printed when it was created).")
        return False
    org = PartnerOrganisation(name="Red Comunitaria de Ejemplo", country="GT")
    db.session.add(org)
    db.session.flush()
    lines = []
    for role, name in (("admin", "Ana Admin"), ("officer", "Óscar Oficial"), ("evaluator", "Eva Evaluadora"),
                       ("partner", "Pía Socia")):
        password = secrets.token_urlsafe(12)
        auth.create_user(f"{role}@{DEMO_DOMAIN}", name, role, password=password,
                         partner_id=org.id if role == "partner" else None)
        lines.append(f"  {role:<10} {role + '@' + DEMO_DOMAIN:<28} {password}")
    rng = random.Random(2026)
    plan = [("GT", "es"), ("HN", "es"), ("SV", "es"), ("MX", "es"), ("HT", "ht"), ("HT", "fr"), ("DO", "es"),
            ("CR", "es"), ("PA", "es"), ("SR", "nl"), ("BZ", "en")]
    per = max(contacts // len(plan), 1)
    for i, (country, language) in enumerate(plan):
        for number in fictional_numbers(country, per, start=100 + 40 * i):
            if audience.find_by_number(number):
                continue
            channels = rng.choice([["sms"], ["whatsapp"], ["sms", "whatsapp"]])
            audience.create_contact(
                phone=number, country=country, language=language, channels=channels, actor=None,
                tags=rng.sample(["demo", "feria-2026", "retorno", "transito", "taller"], k=2),
                consent=audience.ConsentInput(source=rng.choice(["form", "keyword", "partner_registration"])),
                partner_id=org.id if country == "GT" else None)
    _seed_pilot_group(org)
    _seed_campaigns(echo)
    db.session.commit()
    echo("\nDemo users (passwords shown once; change them in “My account”):")
    for line in lines:
        echo(line)
    echo("")
    return True


SHIPPED_CAMPAIGNS = Path(__file__).resolve().parent.parent / "campaigns"

# The walkthrough (docs/walkthrough.md): 20 people of the job-offers campaign's countries, tagged
# "piloto", in a segment of their own that the demo gives to that campaign (see _prepare_pilot_campaign
# for the timing it changes so that launch sends at once at any hour).
PILOT_TAG = "piloto"
PILOT_SEGMENT = "Demo: grupo piloto (20 contactos)"
PILOT_CAMPAIGN = "verify-job-offers"
PILOT_PLAN = [("GT", "es", 5), ("HN", "es", 3), ("SV", "es", 3), ("MX", "es", 2), ("MX", "en", 1),
              ("HT", "ht", 4), ("HT", "fr", 2)]
_PILOT_CHANNELS = (["sms"], ["whatsapp"], ["sms", "whatsapp"])


def _seed_pilot_group(org: PartnerOrganisation) -> None:
    """Twenty fictional people with SMS, WhatsApp or both (in turn), in five countries and four
    languages, all tagged "piloto"; numbers from a range the other demo contacts do not use."""
    n = 0
    for i, (country, language, count) in enumerate(PILOT_PLAN):
        for number in fictional_numbers(country, count, start=600 + 20 * i):
            audience.create_contact(
                phone=number, country=country, language=language, channels=_PILOT_CHANNELS[n % 3], actor=None,
                tags=[PILOT_TAG, "demo"], consent=audience.ConsentInput(source="form"),
                partner_id=org.id if country == "GT" else None)
            n += 1


def _seed_campaigns(echo: Callable[[str], None]) -> None:
    """Settings an administrator would fill in (clearly fake values), a segment, the shipped campaigns."""
    from .audience.models import Segment
    from .campaigns import settings
    from .campaigns.files import load_path
    from .campaigns.models import Campaign, ContentVariable

    admin = db.session.scalar(sa.select(User).where(User.email == f"admin@{DEMO_DOMAIN}"))
    officer = db.session.scalar(sa.select(User).where(User.email == f"officer@{DEMO_DOMAIN}"))
    officer.test_phone = fictional_numbers("GT", 1, start=900)[0]
    demo_values = {
        "hotline": lambda c: f"555-0100 (demo {c})",
        "official_info_url": lambda c: f"https://example.org/{c.lower()}",
        "emergency_number": lambda c: "555-0199 (demo)",
        "weather_alerts_url": lambda c: f"https://example.org/{c.lower()}/alerts",
    }
    for name, make in demo_values.items():
        var = db.session.get(ContentVariable, name) or settings.save_variable(name, "", admin)
        settings.set_variable_values(var, {c: make(c) for c in phones.PROGRAMME_COUNTRIES}, admin)
    settings.add_domain("example.org", admin)
    settings.save_price("*", "sms", "0.0450", "USD", admin)
    settings.save_price("*", "whatsapp", "0.0050", "USD", admin)
    everyone = Segment(name="Demo: everyone who consented", filters={"consent": "campaigns"})
    pilot = Segment(name=PILOT_SEGMENT, filters={"tags": [PILOT_TAG]}, created_by_id=officer.id)
    db.session.add_all([everyone, pilot])
    db.session.flush()
    if SHIPPED_CAMPAIGNS.is_dir():
        for result in load_path(SHIPPED_CAMPAIGNS, officer):
            for problem in result.problems:
                echo(f"warning: {problem}")
        job_offers = db.session.scalar(sa.select(Campaign).where(Campaign.key == PILOT_CAMPAIGN))
        if job_offers is not None:
            _prepare_pilot_campaign(job_offers, pilot, officer)
        for campaign in db.session.scalars(sa.select(Campaign).where(Campaign.segment_id.is_(None))):
            campaign.segment_id = everyone.id


def _prepare_pilot_campaign(campaign, segment, officer: User) -> None:
    """The pilot group as the campaign's audience, and a demo WhatsApp template for every step and
    language. The shipped file has no template (real ones are approved by WhatsApp, per account):
    without one, a business-initiated WhatsApp message cannot go, so people with WhatsApp only would be
    skipped and nobody would show "read". The simulator accepts any well-formed ContentSid; these
    (HX000…) exist nowhere, so the demo needs the simulator. Saved as the officer's edit, through the
    same schema as a file, so the campaign still passes its checks and goes through four eyes."""
    from .campaigns import services as campaigns

    data = campaigns.export_campaign(campaign)
    data["audience"] = segment.name
    # The walkthrough must work at whatever hour someone tries it: for these fictional people only,
    # no quiet hours and step 1 at 00:00 on day 0 (always past), so launch sends at once. Real
    # campaigns keep the file's 20:00-08:00 and 10:00.
    data["quiet_hours"] = {"start": "00:00", "end": "00:00"}
    data["steps"][0]["timing"]["time"] = "00:00"
    # ...and its closing poll (day 21 in the file) goes out right after, so that the walkthrough can
    # answer it from the phone screen and see the answer in the results.
    for step in data["steps"]:
        if step.get("kind") == "poll":
            step["timing"].update(day=0, time="00:00")
    n = 0
    for step in data["steps"]:
        for content in step["content"].values():
            n += 1
            content["template"] = {"sid": f"HX{n:032x}", "variables": {}}
    campaigns.replace_campaign(campaign, campaigns.campaign_schema().load(data), officer)


@click.command("demo")
@with_appcontext
def demo_command():
    """Seed demo users and fictional contacts into the current database."""
    seed_demo(echo=click.echo)
