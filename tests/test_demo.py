"""The demo seed (`c4d serve --demo`): users, fictional contacts, the shipped campaigns, and the
20-person pilot group of the walkthrough (docs/walkthrough.md) given to the job-offers campaign."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import sqlalchemy as sa

from whp_c4d.audience import segments
from whp_c4d.audience.models import Contact, Segment
from whp_c4d.auth.models import User
from whp_c4d.campaigns import services
from whp_c4d.campaigns.checks import blocking_problems
from whp_c4d.campaigns.models import Campaign
from whp_c4d.campaigns.planning import audience_count
from whp_c4d.campaigns.sweep import sweep
from whp_c4d.core.models import utcnow
from whp_c4d.demo import DEMO_DOMAIN, PILOT_CAMPAIGN, PILOT_SEGMENT, seed_demo
from whp_c4d.extensions import db
from whp_c4d.messaging.models import OutboundMessage


def _user(role):
    return db.session.scalar(sa.select(User).where(User.email == f"{role}@{DEMO_DOMAIN}"))


def test_demo_seeds_a_pilot_group_of_twenty_for_the_job_offers_campaign(app):
    lines = []
    assert seed_demo(echo=lines.append) is True
    assert any(f"officer@{DEMO_DOMAIN}" in line for line in lines)
    pilot = db.session.scalar(sa.select(Segment).where(Segment.name == PILOT_SEGMENT))
    members = db.session.scalars(segments.members(_user("admin"), pilot.filters)).all()
    assert len(members) == 20
    assert len({c.country for c in members}) >= 4 and len({c.language for c in members}) >= 3
    channels = Counter(tuple(sorted(ch.channel for ch in c.channels)) for c in members)
    assert set(channels) == {("sms",), ("whatsapp",), ("sms", "whatsapp")}
    campaigns = {c.key: c for c in db.session.scalars(sa.select(Campaign))}
    job_offers = campaigns.pop(PILOT_CAMPAIGN)
    assert job_offers.status == "draft" and job_offers.segment_id == pilot.id
    assert audience_count(job_offers) == 20 and blocking_problems(job_offers) == []
    assert job_offers.steps[0].timing_type == "drip" and job_offers.steps[0].drip_day == 0
    # WhatsApp needs a template outside the 24-hour window: the demo gives one (simulator only).
    assert all(c.template_sid and c.template_sid.startswith("HX0000") for s in job_offers.steps for c in s.contents)
    assert campaigns and all(c.segment.name != PILOT_SEGMENT for c in campaigns.values())
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) >= 70
    assert seed_demo(echo=lines.append) is False  # once


def test_launching_the_pilot_campaign_queues_the_first_message_for_all_twenty(app):
    seed_demo(echo=lambda _line: None)
    officer, admin = _user("officer"), _user("admin")
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.key == PILOT_CAMPAIGN))
    for action, who in (("submit", officer), ("approve", admin), ("activate", admin)):
        services.transition(campaign, action, who)
        db.session.commit()
    sweep()
    first = db.session.scalars(sa.select(OutboundMessage).where(
        OutboundMessage.step_id == campaign.steps[0].id)).all()
    assert len(first) == 20
    by_channel = Counter(r.channel for r in first)
    assert by_channel["whatsapp"] >= 10 and by_channel["sms"] >= 5
    assert all(r.template_sid for r in first if r.channel == "whatsapp")
    assert all(r.body for r in first if r.channel == "sms")
    # At whatever hour the walkthrough runs, the 20 are due at once (no quiet hours in the demo campaign).
    now = utcnow()
    assert all(r.earliest_at <= now + timedelta(seconds=1) for r in first)
    assert not any(r.quiet_start and r.quiet_start != r.quiet_end for r in first)


def test_the_demo_has_a_past_campaign_with_replies_feedback_and_partner_reports(app):
    from whp_c4d.demo import HISTORY_CAMPAIGN
    from whp_c4d.feedback.models import FeedbackItem, PartnerReport
    from whp_c4d.inbound.models import PollResponse

    seed_demo(echo=lambda _line: None)
    past = db.session.scalar(sa.select(Campaign).where(Campaign.key == HISTORY_CAMPAIGN))
    assert past.status == "completed" and [s.kind for s in past.steps] == ["message", "message", "poll"]
    statuses = set(db.session.scalars(sa.select(OutboundMessage.status).where(OutboundMessage.campaign_id == past.id)))
    assert {"delivered", "read", "failed", "undelivered"} <= statuses
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PollResponse)) >= 20
    sources = set(db.session.scalars(sa.select(FeedbackItem.source)))
    assert {"message", "partner_question", "partner_rumour"} <= sources
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PartnerReport)) == 3
    suggested = db.session.scalar(sa.select(sa.func.count()).where(FeedbackItem.suggested_type.is_not(None)))
    assert suggested >= db.session.scalar(sa.select(sa.func.count()).select_from(FeedbackItem)) // 2


def test_the_demo_partner_sees_its_registrations_and_the_start_says_what_it_does(app, login):
    """Partners list receipts, not contacts (issue 13): the demo gives its partner the receipts of the
    Guatemalans it registered. And the first start says what it is doing while it seeds (issue 16, 12)."""
    from whp_c4d.audience.models import PartnerRegistration

    lines = []
    seed_demo(echo=lines.append, contacts=44)
    assert any(line.startswith("Creating the demo:") for line in lines)
    partner = _user("partner")
    mine = db.session.scalar(sa.select(sa.func.count()).select_from(PartnerRegistration).where(
        PartnerRegistration.partner_id == partner.partner_id))
    guatemalans = db.session.scalar(sa.select(sa.func.count()).select_from(Contact).where(
        Contact.registered_by_partner_id == partner.partner_id))
    assert mine == guatemalans > 0
    client = app.test_client()
    login(client, partner)
    page = client.get("/contacts").get_data(as_text=True)
    assert page.count("R-") >= mine
