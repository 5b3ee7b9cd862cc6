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
from .audience.models import Contact, PartnerRegistration
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


def seed_demo(echo: Callable[[str], None] = print, contacts: int = 220) -> bool:
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
    echo(f"Creating the demo: {contacts} fictional contacts in 11 countries…")
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
    echo("Creating the demo: the shipped campaigns, a pilot group and a past campaign's history…")
    _seed_campaigns(echo)
    _seed_history(org, rng)
    # The partner's receipts for the people it registered (partners see these, never contacts).
    for contact in db.session.scalars(sa.select(Contact).where(Contact.registered_by_partner_id == org.id)):
        db.session.add(PartnerRegistration(
            reference=audience.new_registration_reference(), partner_id=org.id, contact_id=contact.id,
            country=contact.country, language=contact.language, channels=contact.channel_names,
            created_at=contact.created_at))
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
EVERYONE_SEGMENT = "Demo: everyone who consented"
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
    everyone = Segment(name=EVERYONE_SEGMENT, filters={"consent": "campaigns"})
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


HISTORY_CAMPAIGN = "demo-2026-job-fair"
# What people wrote back after the past campaign, as they might (fictional; the feedback queue's keyword
# rules suggest codes for most of them).
_REPLIES = {
    "es": ["¿Dónde saco el pasaporte?", "Gracias por la información", "Dicen que en la frontera dan permisos gratis",
           "Me ofrecieron un trabajo en Canadá, ¿es real?", "Necesito un albergue para mi familia",
           "¿Cuándo abren las citas?", "Un reclutador me pidió dinero por adelantado",
           "Muchas gracias, muy útil", "¿Qué documentos necesito para la visa?", "Quiero regresar a mi país"],
    "fr": ["Merci pour les informations", "On dit que le passeur peut garantir le visa", "Où trouver un abri ?"],
    "ht": ["Mesi anpil", "Yo di gen viza gratis nan fwontyè a", "Mwen bezwen èd pou pitit mwen"],
    "en": ["Thank you", "Where do I get an appointment?"],
    "nl": ["Bedankt", "Waar kan ik een afspraak maken?"],
}


def _seed_history(org: PartnerOrganisation, rng: random.Random) -> None:
    """A campaign that ran this autumn, so that the reports have something to show: its messages with
    the statuses Twilio reported, people's replies (feedback, a poll, some opt-outs) and three partner
    activity reports. All fictional, sent to nobody; dates relative to today."""
    from datetime import UTC, date, datetime, time, timedelta

    from .audience.models import Segment
    from .campaigns import services as campaigns
    from .feedback.models import PartnerReport
    from .feedback.services import file_inbound, sync_partner_items
    from .inbound.models import InboundMessage, PollResponse
    from .messaging import outbox

    officer = db.session.scalar(sa.select(User).where(User.email == f"officer@{DEMO_DOMAIN}"))
    today = date.today()
    days = [today - timedelta(days=d) for d in (49, 35, 21)]
    poll = {lang: {"sms": text, "options": [{"number": n, "label": label, "words": [label.lower()]}
                                            for n, label in enumerate(labels, 1)]}
            for lang, text, labels in (
                ("es", "¿Le fue útil la feria? 1 Sí 2 No", ("Sí", "No")),
                ("fr", "La foire vous a-t-elle été utile ? 1 Oui 2 Non", ("Oui", "Non")),
                ("ht", "Fwa a te itil ou? 1 Wi 2 Non", ("Wi", "Non")),
                ("en", "Was the fair useful? 1 Yes 2 No", ("Yes", "No")),
                ("nl", "Was de beurs nuttig? 1 Ja 2 Nee", ("Ja", "Nee")))}
    languages = ["es", "fr", "ht", "en", "nl"]
    data = {"key": HISTORY_CAMPAIGN, "name": "Demo: job fair follow-up (autumn 2026)", "objective": "regular_pathways",
            "countries": list(phones.PROGRAMME_COUNTRIES), "languages": languages, "channels": ["sms", "whatsapp"],
            "steps": [
                {"key": "invitation", "timing": {"type": "at", "date": days[0].isoformat(), "time": "10:00"},
                 "content": {lang: {"sms": text} for lang, text in (
                     ("es", "Feria de empleo con ofertas verificadas: infórmese en {official_info_url}"),
                     ("fr", "Foire à l'emploi avec des offres vérifiées : {official_info_url}"),
                     ("ht", "Fwa travay ak òf verifye: {official_info_url}"),
                     ("en", "Job fair with verified offers: {official_info_url}"),
                     ("nl", "Banenbeurs met gecontroleerde vacatures: {official_info_url}"))}},
                {"key": "reminder", "timing": {"type": "at", "date": days[1].isoformat(), "time": "17:00"},
                 "content": {lang: {"sms": text} for lang, text in (
                     ("es", "Nadie puede garantizarle un trabajo a cambio de dinero. Ayuda: {hotline}"),
                     ("fr", "Personne ne peut vous garantir un emploi contre de l'argent. Aide : {hotline}"),
                     ("ht", "Pèsonn pa ka garanti w yon travay pou lajan. Èd: {hotline}"),
                     ("en", "Nobody can guarantee you a job in exchange for money. Help: {hotline}"),
                     ("nl", "Niemand kan u een baan garanderen in ruil voor geld. Hulp: {hotline}"))}},
                {"key": "usefulness", "kind": "poll", "timing": {"type": "at", "date": days[2].isoformat(),
                                                                 "time": "10:00"}, "content": poll}]}
    campaign = campaigns.create_campaign(campaigns.campaign_schema().load(data), officer)
    campaign.status, campaign.activated_at = "completed", datetime.combine(days[0], time(9), tzinfo=UTC)
    campaign.segment_id = db.session.scalar(sa.select(Segment.id).where(Segment.name == EVERYONE_SEGMENT))
    db.session.flush()
    people = list(db.session.scalars(sa.select(Contact).where(Contact.status == "active").order_by(Contact.id)))
    outcomes = [("delivered", None), ("delivered", None), ("delivered", None), ("sent", None),
                ("undelivered", 30003), ("failed", 30008)]
    rows, n = [], 0
    for step, day in zip(campaign.steps, days, strict=True):
        sent_at = datetime.combine(day, time(15), tzinfo=UTC)
        for person in people:
            channel = "whatsapp" if "whatsapp" in person.channel_names else "sms"
            status, code = rng.choice(outcomes + ([("read", None)] * 3 if channel == "whatsapp" else []))
            n += 1
            rows.append({"contact_id": person.id, "campaign_id": campaign.id, "step_id": step.id,
                         "occurrence": day.isoformat(), "language": person.language if person.language in languages
                         else "es", "channel": channel, "sent_channel": channel, "purpose": "campaigns",
                         "country": person.country, "body": "", "segments": 1 if channel == "whatsapp" else
                         rng.choice((1, 1, 2, 3)), "earliest_at": sent_at, "status": status, "attempts": 1,
                         "provider_sid": f"SM{0xDE30 * 10**6 + n:032x}", "error_code": code,
                         "reason": f"twilio_{code}" if code else None, "created_at": sent_at,
                         "sent_at": sent_at, "updated_at": sent_at, "template_variables": {}})
    outbox.record_history(rows)
    poll_step = campaign.steps[-1]
    for i, person in enumerate(people):
        when = datetime.combine(days[i % 3], time(18), tzinfo=UTC) + timedelta(minutes=i)
        channel = "whatsapp" if "whatsapp" in person.channel_names else "sms"
        roll = rng.random()
        if roll < 0.35:  # answered the poll
            choice = 1 if rng.random() < 0.7 else 2
            message = InboundMessage(provider_sid=f"SM{0xDE31 * 10**6 + i:032x}", contact_id=person.id,
                                     channel=channel, body=str(choice), country=person.country,
                                     language=person.language, status="processed", kind="answer", action="poll",
                                     campaign_id=campaign.id, step_id=poll_step.id, received_at=when,
                                     processed_at=when)
            db.session.add(message)
            db.session.flush()
            db.session.add(PollResponse(step_id=poll_step.id, campaign_id=campaign.id, occurrence=days[2].isoformat(),
                                        contact_id=person.id, choice=choice, inbound_message_id=message.id,
                                        language=person.language, country=person.country, channel=channel,
                                        created_at=when, updated_at=when))
        elif roll < 0.75:  # wrote something: feedback for the queue
            texts = _REPLIES.get(person.language, _REPLIES["es"])
            message = InboundMessage(provider_sid=f"SM{0xDE32 * 10**6 + i:032x}", contact_id=person.id,
                                     channel=channel, body=rng.choice(texts), country=person.country,
                                     language=person.language, status="processed", kind="feedback",
                                     campaign_id=campaign.id, received_at=when, processed_at=when)
            db.session.add(message)
            db.session.flush()
            file_inbound(message)
        elif roll < 0.80:  # said stop (the channel state is left as it is: these people stay in the demo)
            db.session.add(InboundMessage(provider_sid=f"SM{0xDE33 * 10**6 + i:032x}", contact_id=person.id,
                                          channel=channel, body="BAJA", country=person.country,
                                          language=person.language, status="processed", kind="keyword",
                                          action="opt_out", campaign_id=campaign.id, received_at=when,
                                          processed_at=when))
    partner = db.session.scalar(sa.select(User).where(User.email == f"partner@{DEMO_DOMAIN}"))
    for i, (kind, area, total, women, men, other, ages, questions, rumours) in enumerate((
            ("workshop", "Quetzaltenango", 34, 19, 14, 1, (4, 6, 22, 2), "¿Cómo saber si una agencia es legal?",
             "Dicen que con una oferta de trabajo ya no se necesita visa"),
            ("community_meeting", "Huehuetenango", 52, 30, 22, 0, (10, 8, 30, 4), "¿Dónde se pide la cita?", ""),
            ("radio", "Guatemala", 0, 0, 0, 0, (0, 0, 0, 0), "", "Un coyote ofrece llevar niños sin costo"))):
        report = PartnerReport(partner_id=org.id, submission_token=f"demo-{i}", activity_date=days[i],
                               country="GT", admin_area=area, locality="", activity_type=kind,
                               campaign_ids=[campaign.id], participants=total, women=women, men=men,
                               sex_other=other, age_under_13=ages[0], age_13_17=ages[1], age_18_59=ages[2],
                               age_60_plus=ages[3], groups=["in_transit", "host_community"], languages=["es"],
                               what_worked="Los ejemplos de ofertas falsas", what_did_not="Poco tiempo",
                               questions_heard=questions, rumours_heard=rumours, suggestions="",
                               submitted_by_id=partner.id if partner else None,
                               created_at=datetime.combine(days[i], time(20), tzinfo=UTC),
                               updated_at=datetime.combine(days[i], time(20), tzinfo=UTC))
        db.session.add(report)
        db.session.flush()
        sync_partner_items(report)


@click.command("demo")
@with_appcontext
def demo_command():
    """Seed demo users and fictional contacts into the current database."""
    seed_demo(echo=click.echo)
