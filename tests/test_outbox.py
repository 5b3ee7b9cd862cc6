"""The outbox: expansion at most once, the dispatcher within caps and consent, status callbacks by rank."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from whp_c4d.audience.models import Segment
from whp_c4d.campaigns import services
from whp_c4d.campaigns.expansion import expand_step
from whp_c4d.campaigns.planning import enrol_audience
from whp_c4d.core.models import utcnow
from whp_c4d.demo import fictional_numbers
from whp_c4d.extensions import db
from whp_c4d.messaging.dispatcher import Dispatcher, DispatcherBusy
from whp_c4d.messaging.models import MessageEvent, OutboundMessage
from whp_c4d.messaging.services import save_sender

NUMBERS = fictional_numbers("GT", 40, start=300)


def _campaign(author, **over):
    data = {"key": "outbox", "name": "Outbox", "objective": "regular_pathways", "countries": ["GT"],
            "languages": ["es"], "channels": ["sms"], "audience": "Todos",
            "steps": [{"key": "hola", "timing": {"type": "drip", "day": 0, "time": "10:00"},
                       "content": {"es": {"sms": "Hola, este es un mensaje de prueba."}}}]}
    data.update(over)
    campaign = services.create_campaign(services.campaign_schema().load(data), author)
    db.session.commit()
    return campaign


def _due_now(campaign):
    """Expand the drip step and make every row due now (the step's hour may be hours away)."""
    enrol_audience(campaign, now=utcnow() - timedelta(days=1))
    added = expand_step(campaign.steps[0])
    # Due now whatever the hour of the test run: quiet hours and expiry have tests of their own.
    db.session.execute(sa.update(OutboundMessage).values(
        earliest_at=utcnow() - timedelta(seconds=1), expires_at=utcnow() + timedelta(hours=1),
        quiet_start=None, quiet_end=None))
    db.session.commit()
    return added




# --- expansion -------------------------------------------------------------------------------------

def test_expanding_a_step_twice_adds_nothing_the_second_time(app, audience):
    author, contacts = audience
    campaign = _campaign(author)
    assert _due_now(campaign) == 12
    assert expand_step(campaign.steps[0]) == 0
    db.session.commit()
    rows = db.session.scalars(sa.select(OutboundMessage)).all()
    assert len(rows) == 12 and {r.contact_id for r in rows} == {c.id for c in contacts}
    assert all(r.body == "Hola, este es un mensaje de prueba." and r.segments == 1 for r in rows)


def test_erasing_a_person_removes_their_queued_messages(app, audience):
    from whp_c4d.audience.erasure import erase_contact

    author, contacts = audience
    _due_now(_campaign(author))
    erase_contact(contacts[0], None)
    db.session.commit()
    assert contacts[0].id not in set(db.session.scalars(sa.select(OutboundMessage.contact_id)))


# --- dispatching through the simulator ----------------------------------------------------------------

def test_every_recipient_gets_exactly_one_message_through_the_simulator(live_app, audience, dispatchers):
    from whp_c4d.simulator.models import SimulatorMessage

    author, contacts = audience
    _due_now(_campaign(author))
    d = dispatchers()
    for i in range(10):  # the default SMS cap is 10 a second: let the clock move on
        stats = d.tick(utcnow() + timedelta(seconds=i))
        if not db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)
                                 .where(OutboundMessage.status == "pending")):
            break
    db.session.expire_all()
    rows = db.session.scalars(sa.select(OutboundMessage)).all()
    assert {r.status for r in rows} == {"queued"}, [(r.status, r.reason) for r in rows]
    assert len({r.provider_sid for r in rows}) == 12
    sent = db.session.scalars(sa.select(SimulatorMessage)).all()
    assert sorted(m.to_address for m in sent) == sorted(c.current_number.e164 for c in contacts)
    assert stats is not None
    d.tick(utcnow() + timedelta(seconds=30))  # nothing left: nothing more sent
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SimulatorMessage)) == 12


def test_a_sender_cap_holds_within_each_second(live_app, audience, dispatchers):
    """The budget is a continuous bucket: claims book slots 1/cap apart, at most one second ahead, so
    no one-second window (across ticks and across dispatchers) holds more than the cap."""
    from whp_c4d.messaging.models import SenderBudget

    author, _ = audience
    sender = save_sender(None, name="Guatemala lento", channel="sms",
                         from_address=fictional_numbers("GT", 1, start=900)[0], countries=["GT"], cap_per_second=5)
    db.session.commit()
    _due_now(_campaign(author))
    d = dispatchers()
    now = utcnow().replace(microsecond=0)
    claimed = [d.tick(now + timedelta(seconds=t)).claimed for t in (0, 0.5, 1.0)]
    assert claimed == [5, 3, 2]  # slots 0.0-0.8, then 1.0-1.4, then 1.6-1.8: 5 in any second
    db.session.expire_all()
    budget = db.session.get(SenderBudget, str(sender.id))
    assert budget.window_start == now + timedelta(seconds=2)


def test_a_stop_between_claim_and_send_means_no_message(live_app, audience, dispatchers):
    from whp_c4d.audience.services import record_consent

    author, contacts = audience
    _due_now(_campaign(author))
    d = dispatchers()
    jobs = d._claim(utcnow(), __import__("whp_c4d.messaging.dispatcher", fromlist=["TickStats"]).TickStats())
    record_consent(contacts[0], "sms", granted=False, source="keyword", actor=None)
    db.session.commit()
    outcomes = [d._send(job) for job in jobs]
    assert outcomes.count("skipped") == 1 and outcomes.count("sent") == len(jobs) - 1, str(outcomes)
    db.session.expire_all()
    row = db.session.scalar(sa.select(OutboundMessage).where(OutboundMessage.contact_id == contacts[0].id))
    assert row.status == "skipped" and row.reason == "opted_out_before_send" and row.provider_sid is None


def test_whatsapp_without_template_falls_back_to_sms_or_is_skipped_with_a_reason(live_app, app, make_user,
                                                                                 make_contact, dispatchers):
    db.session.add(Segment(name="Todos", filters={}))
    db.session.commit()
    both = make_contact(phone=NUMBERS[20], channels=("whatsapp", "sms"))
    only_wa = make_contact(phone=NUMBERS[21], channels=("whatsapp",))
    campaign = _campaign(make_user("officer"), channels=["sms", "whatsapp"], sms_fallback=True)
    _due_now(campaign)
    dispatchers().tick()
    db.session.expire_all()
    rows = {r.contact_id: r for r in db.session.scalars(sa.select(OutboundMessage))}
    assert rows[both.id].sent_channel == "sms" and rows[both.id].status == "queued"
    assert rows[only_wa.id].status == "skipped" and rows[only_wa.id].reason == "no_whatsapp_template"


def test_a_second_dispatcher_on_sqlite_refuses_to_start(app, dispatchers):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL runs several dispatchers")
    dispatchers(name="first")
    with pytest.raises(DispatcherBusy, match="SQLite allows one"):
        Dispatcher(app, name="second").start()


# --- failures from a fake Twilio ----------------------------------------------------------------------

def test_429_is_retried_later_and_500_becomes_uncertain_then_reconciled(app, audience, scripted_twilio, dispatchers):
    author, contacts = audience
    _due_now(_campaign(author))
    scripted_twilio.replies = [(429, {"code": 20429, "message": "Too Many Requests", "status": 429}),
                           (500, {"code": 20500, "message": "Internal", "status": 500})]
    d = dispatchers(pool_size=1)
    stats = d.tick()
    assert (stats.retried, stats.uncertain, stats.sent) == (1, 1, 8)  # 10 a second by default
    db.session.expire_all()
    retried = db.session.scalar(sa.select(OutboundMessage).where(OutboundMessage.reason == "rate_limited"))
    assert retried.status == "pending" and retried.next_attempt_at > utcnow()
    uncertain = db.session.scalar(sa.select(OutboundMessage).where(OutboundMessage.status == "uncertain"))
    # Twilio did accept it: the lookup finds it by recipient and text, and it is not sent again.
    scripted_twilio.listing = [{"sid": "SM" + "a" * 32, "status": "delivered", "body": uncertain.body,
                            "to": contacts[0].current_number.e164, "num_segments": "1", "error_code": None}]
    before = scripted_twilio.created
    d._reconcile(utcnow())
    db.session.expire_all()
    row = db.session.get(OutboundMessage, uncertain.id)
    assert row.status == "delivered" and row.provider_sid == "SM" + "a" * 32
    assert scripted_twilio.created == before  # reconciled, not resent


def test_21610_opts_the_person_out_of_that_channel(app, audience, scripted_twilio, dispatchers):
    author, contacts = audience
    _due_now(_campaign(author))
    scripted_twilio.replies = [(400, {"code": 21610, "message": "unsubscribed", "status": 400})]
    dispatchers(pool_size=1).tick()
    db.session.expire_all()
    failed = db.session.scalar(sa.select(OutboundMessage).where(OutboundMessage.status == "failed"))
    assert failed.reason == "opted_out_at_twilio" and failed.error_code == 21610
    contact = next(c for c in contacts if c.id == failed.contact_id)
    db.session.refresh(contact)
    assert contact.channel("sms").opted_out_at is not None


# --- status callbacks --------------------------------------------------------------------------------

def _signed_post(client, app, message_id, form, *, token=None, forge=False):
    url = app.config["C4D_PUBLIC_URL"].rstrip("/") + f"/twilio/status?m={message_id}"
    token = token or app.config.get("TWILIO_AUTH_TOKEN") or app.config["C4D_SIMULATOR_AUTH_TOKEN"]
    signature = RequestValidator(token).compute_signature(url, form)
    if forge:
        signature = base64.b64encode(hmac.new(b"wrong", url.encode(), hashlib.sha1).digest()).decode()
    return client.post(f"/twilio/status?m={message_id}", data=form, headers={"X-Twilio-Signature": signature})


def test_status_callbacks_apply_by_rank_and_forged_ones_change_nothing(app, audience, client):
    author, _ = audience
    _due_now(_campaign(author))
    msg = db.session.scalars(sa.select(OutboundMessage)).first()
    msg.status, msg.provider_sid = "queued", "SM" + "b" * 32
    db.session.commit()
    base = {"MessageSid": msg.provider_sid, "AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01"}
    assert _signed_post(client, app, msg.id, {**base, "MessageStatus": "delivered"}).status_code == 204
    assert _signed_post(client, app, msg.id, {**base, "MessageStatus": "sent"}).status_code == 204  # late
    assert _signed_post(client, app, msg.id, {**base, "MessageStatus": "delivered"}).status_code == 204  # twice
    r = _signed_post(client, app, msg.id, {**base, "MessageStatus": "failed", "ErrorCode": "30008"}, forge=True)
    assert r.status_code == 403
    assert client.post(f"/twilio/status?m={msg.id}", data={**base, "MessageStatus": "failed"}).status_code == 403
    db.session.expire_all()
    assert db.session.get(OutboundMessage, msg.id).status == "delivered"
    events = db.session.scalars(sa.select(MessageEvent).order_by(MessageEvent.id)).all()
    assert [(e.status, e.applied) for e in events] == [("delivered", True), ("sent", False), ("delivered", False)]


def test_an_undelivered_callback_keeps_its_error_code(app, audience, client):
    author, _ = audience
    _due_now(_campaign(author))
    msg = db.session.scalars(sa.select(OutboundMessage)).first()
    msg.status, msg.provider_sid = "sent", "SM" + "c" * 32
    db.session.commit()
    form = {"MessageSid": msg.provider_sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert _signed_post(client, app, msg.id, form).status_code == 204
    assert _signed_post(client, app, msg.id, {**form, "MessageStatus": "delivered"}).status_code == 204
    db.session.expire_all()
    row = db.session.get(OutboundMessage, msg.id)
    assert (row.status, row.error_code) == ("undelivered", 30003)


def test_malformed_status_callbacks_get_400(app, audience, client):
    assert _signed_post(client, app, 0, {"MessageStatus": "sent"}).status_code == 400


# --- the sweep: each occurrence once, too late is missed -------------------------------------------------

def _active(author, reviewer=None, **over):
    from whp_c4d.campaigns.models import Campaign

    campaign = _campaign(author, **over)
    campaign.status = "active"
    campaign.activated_at = utcnow() - timedelta(days=30)
    db.session.commit()
    return db.session.get(Campaign, campaign.id)


AT_STEP = [{"key": "fecha", "timing": {"type": "at", "date": "2027-01-15", "time": "09:00"},
            "content": {"es": {"sms": "Mensaje con fecha."}}}]


def test_a_dated_step_fires_once_ahead_of_time_and_lands_at_each_local_nine(app, audience, make_contact):
    from datetime import UTC, datetime

    from whp_c4d.audience.models import Contact
    from whp_c4d.campaigns.models import StepOccurrence
    from whp_c4d.campaigns.sweep import sweep

    author, contacts = audience
    paramaribo = make_contact(phone=fictional_numbers("SR", 1)[0], country="SR")
    tijuana = make_contact(phone=fictional_numbers("MX", 1)[0], country="MX")
    db.session.get(Contact, tijuana.id).timezone = "America/Tijuana"
    db.session.commit()
    campaign = _active(author, countries=["GT", "SR", "MX"], steps=AT_STEP)
    day_before = datetime(2027, 1, 14, 12, 0, tzinfo=UTC)
    first = sweep(day_before)
    assert sum(first.expanded.values()) == 14 and not first.missed
    assert sweep(day_before + timedelta(hours=1)).expanded == {}  # once
    rows = {r.contact_id: r for r in db.session.scalars(sa.select(OutboundMessage))}
    assert rows[contacts[0].id].earliest_at == datetime(2027, 1, 15, 15, 0, tzinfo=UTC)   # 09:00 Guatemala
    assert rows[paramaribo.id].earliest_at == datetime(2027, 1, 15, 12, 0, tzinfo=UTC)    # 09:00 Paramaribo
    assert rows[tijuana.id].earliest_at == datetime(2027, 1, 15, 17, 0, tzinfo=UTC)       # 09:00 Tijuana
    occurrences = db.session.scalars(sa.select(StepOccurrence)).all()
    assert [(o.occurrence, o.status, o.messages) for o in occurrences] == [("2027-01-15", "expanded", 14)]
    assert campaign.id


def test_after_downtime_a_step_fires_once_or_is_recorded_missed(app, audience):
    from datetime import UTC, datetime

    from whp_c4d.campaigns.models import StepOccurrence
    from whp_c4d.campaigns.sweep import sweep

    author, _ = audience
    _active(author, steps=AT_STEP)
    # Down across 09:00 in Guatemala, back at 11:00 there: fired once, the rows are due at once.
    late = datetime(2027, 1, 15, 17, 0, tzinfo=UTC)
    assert sum(sweep(late).expanded.values()) == 12
    assert sweep(late + timedelta(minutes=5)).expanded == {}
    db.session.execute(sa.delete(OutboundMessage))
    db.session.execute(sa.delete(StepOccurrence))
    db.session.commit()
    # Down for three days: beyond the campaign's 24-hour limit, recorded as missed, nothing queued.
    result = sweep(datetime(2027, 1, 18, 12, 0, tzinfo=UTC))
    assert result.expanded == {} and len(result.missed) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 0
    assert db.session.scalar(sa.select(StepOccurrence.status)) == "missed"


def test_a_delayed_message_waits_for_morning_and_a_stale_one_is_missed(app, audience, dispatchers):
    from datetime import UTC, datetime, time

    author, _ = audience
    _due_now(_campaign(author))
    night = datetime(2027, 1, 16, 4, 0, tzinfo=UTC)  # 22:00 in Guatemala
    db.session.execute(sa.update(OutboundMessage).values(
        earliest_at=night - timedelta(hours=2), expires_at=night + timedelta(hours=20),
        timezone="America/Guatemala", quiet_start=time(20), quiet_end=time(8)))
    db.session.commit()
    d = dispatchers()
    assert d.tick(night).claimed == 0
    db.session.expire_all()
    assert {r.earliest_at for r in db.session.scalars(sa.select(OutboundMessage))} == {
        datetime(2027, 1, 16, 14, 0, tzinfo=UTC)}  # 08:00 in Guatemala
    stats = d.tick(night + timedelta(days=1))  # past expiry: missed, never sent late
    db.session.expire_all()
    assert stats.claimed == 0
    assert {(r.status, r.reason) for r in db.session.scalars(sa.select(OutboundMessage))} == {("missed", "too_late")}


def test_pausing_holds_what_has_not_left_and_resuming_releases_it(app, audience, make_user, dispatchers):
    author, _ = audience
    reviewer = make_user("officer")
    campaign = _campaign(author)
    for action, who in (("submit", author), ("approve", reviewer), ("activate", author)):
        services.transition(campaign, action, who)
    _due_now(campaign)
    services.transition(campaign, "pause", author)
    db.session.commit()
    assert {r.status for r in db.session.scalars(sa.select(OutboundMessage))} == {"held"}
    assert dispatchers().tick().claimed == 0
    services.transition(campaign, "resume", author)
    db.session.commit()
    assert {r.status for r in db.session.scalars(sa.select(OutboundMessage))} == {"pending"}


# --- operating a campaign: CLI and progress ----------------------------------------------------------------

def test_launch_pause_resume_cancel_from_the_cli_and_progress_shows_it(live_app, audience, make_user, runner,
                                                                        client, login, dispatchers):
    author, contacts = audience
    reviewer = make_user("officer")
    campaign = _campaign(author)
    for command, who in (("submit", author), ("approve", reviewer), ("launch", author)):
        r = runner.invoke(args=["campaigns", command, str(campaign.id), "--user", who.email])
        assert r.exit_code == 0, r.output
    _due_now(campaign)
    dispatchers().tick()
    login(client, author)
    data = client.get(f"/campaigns/{campaign.id}/progress?format=json").get_json()
    assert data["total"] == 12 and data["totals"]["queued"] == 10 and data["totals"]["waiting"] == 2
    assert data["groups"][0]["country"] == "GT" and data["rate_per_minute"] == 10 and data["eta_seconds"] >= 0
    page = client.get(f"/campaigns/{campaign.id}/progress", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Guatemala" in page and 'data-progress-url' in page
    assert runner.invoke(args=["campaigns", "pause", campaign.key, "--user", author.email]).exit_code == 0
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).where(OutboundMessage.status == "held")) == 2
    assert runner.invoke(args=["campaigns", "resume", campaign.key, "--user", author.email]).exit_code == 0
    assert runner.invoke(args=["campaigns", "cancel", campaign.key, "--user", author.email]).exit_code == 0
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).where(OutboundMessage.status == "cancelled")) == 2
    evaluator = make_user("evaluator")
    r = runner.invoke(args=["campaigns", "launch", campaign.key, "--user", evaluator.email])
    assert r.exit_code != 0 and "may not" in r.output


def test_a_late_report_read_before_a_newer_one_committed_cannot_undo_it(app, audience):
    """Two web processes: one reads the message (queued) for a "sent" report while the other commits
    "delivered"; the first then applies "sent" with what it read. The status stays delivered."""
    from sqlalchemy.orm import Session

    from whp_c4d.messaging.outbox import record_report

    author, _ = audience
    _due_now(_campaign(author))
    msg_id = db.session.scalars(sa.select(OutboundMessage.id)).first()
    db.session.execute(sa.update(OutboundMessage).where(OutboundMessage.id == msg_id).values(status="queued"))
    db.session.commit()
    with Session(db.engine) as slow, Session(db.engine) as fast:
        stale = slow.get(OutboundMessage, msg_id)
        assert stale.status == "queued"
        slow.commit()  # what it read stays in memory (expire_on_commit would reload: keep the stale copy)
        stale_copy = OutboundMessage(id=msg_id, status="queued", provider_sid=None)
        fresh = fast.get(OutboundMessage, msg_id)
        assert record_report(fast, fresh, "delivered", None, source="callback") is True
        fast.commit()
        assert record_report(slow, stale_copy, "sent", None, source="callback") is False
        slow.commit()
    db.session.expire_all()
    assert db.session.get(OutboundMessage, msg_id).status == "delivered"
    events = db.session.scalars(sa.select(MessageEvent).where(MessageEvent.message_id == msg_id)
                                .order_by(MessageEvent.id)).all()
    assert [(e.status, e.applied) for e in events][-2:] == [("delivered", True), ("sent", False)]
