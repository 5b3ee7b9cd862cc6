"""Reliability scenarios from quality.md against the simulator and the real SDK: faults, several
dispatchers, and the message status machine (hypothesis)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from test_outbox import _campaign, _due_now

from whp_c4d.audience.models import Segment
from whp_c4d.core.models import utcnow
from whp_c4d.demo import fictional_numbers
from whp_c4d.extensions import db
from whp_c4d.messaging.dispatcher import Dispatcher
from whp_c4d.messaging.models import STATUS_RANK, TERMINAL, OutboundMessage
from whp_c4d.messaging.outbox import next_status
from whp_c4d.messaging.services import save_sender

CAP = 20


@pytest.fixture
def crowd(app, make_user, make_contact):
    db.session.add(Segment(name="Todos", filters={}))
    db.session.commit()
    numbers = fictional_numbers("GT", 60, start=2000)
    contacts = [make_contact(phone=n) for n in numbers]
    save_sender(None, name="GT", channel="sms", from_address=fictional_numbers("GT", 1, start=4000)[0],
                countries=["GT"], cap_per_second=CAP)
    db.session.commit()
    return make_user("officer"), contacts


def _sent_per_person():
    from whp_c4d.simulator.models import SimulatorMessage

    db.session.expire_all()
    return Counter(m.to_address for m in db.session.scalars(sa.select(SimulatorMessage)))


def _drain(dispatchers_, start, *, max_ticks=400):
    """Tick every dispatcher once per simulated second until nothing is left to send."""
    now, per_second = start, []
    for _ in range(max_ticks):
        used = Counter()
        for d in dispatchers_:
            stats = d.tick(now)
            used.update(stats.by_sender)
        per_second.append(used)
        db.session.expire_all()
        left = db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage).where(
            OutboundMessage.status.in_(("pending", "sending", "uncertain"))))
        if not left:
            return per_second
        now += timedelta(seconds=1)
    raise AssertionError("the outbox did not drain")


def test_faults_429_500_and_timeouts_still_deliver_exactly_once_within_the_cap(live_app, crowd):
    from whp_c4d.simulator import settings as sim

    author, contacts = crowd
    live_app.config["TWILIO_TIMEOUT_SECONDS"] = 1.0
    sim.reseed(2026, live_app)
    sim.save({"rate_429": 0.30, "rate_500": 0.05, "rate_timeout": 0.02, "rate_accepted_then_500": 0.02,
              "rate_accepted_then_timeout": 0.01, "timeout_seconds": 1.5})
    db.session.commit()
    try:
        _due_now(_campaign(author))
        # Lookups decide what a lost reply means; a short grace keeps the simulated clock near the real one.
        d = Dispatcher(live_app, pool_size=8, reconcile_grace=timedelta(seconds=5))
        d.start()
        try:
            per_second = _drain([d], utcnow())
        finally:
            d.stop()
    finally:
        sim.reset()
        db.session.commit()
    sent = _sent_per_person()
    assert sorted(sent) == sorted(c.current_number.e164 for c in contacts)
    assert set(sent.values()) == {1}, "somebody got a message twice"
    assert all(units <= CAP for second in per_second for units in second.values())
    statuses = set(db.session.scalars(sa.select(OutboundMessage.status)))
    assert statuses <= {"queued", "sent", "delivered"}


def test_four_dispatchers_share_a_broadcast_without_duplicates_and_within_the_cap(live_app, crowd):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one dispatcher (a second refuses to start: test_outbox)")
    author, contacts = crowd
    _due_now(_campaign(author))
    start = utcnow()
    totals: list[Counter] = []
    errors: list[BaseException] = []

    def run(name):
        try:
            with live_app.app_context():
                d = Dispatcher(live_app, name=name, pool_size=4)
                d.start()
                now = start
                for _ in range(20):
                    stats = d.tick(now)
                    totals.append(Counter({(now, k): v for k, v in stats.by_sender.items()}))
                    now += timedelta(seconds=1)
                d.stop()
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"d{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    sent = _sent_per_person()
    assert sorted(sent) == sorted(c.current_number.e164 for c in contacts) and set(sent.values()) == {1}
    per_window = sum(totals, Counter())
    assert max(per_window.values()) <= CAP


class MessageStatusMachine(RuleBasedStateMachine):
    """Whatever order reports arrive in, a message never moves backwards and terminal stays terminal."""

    def __init__(self):
        super().__init__()
        self.status = "queued"
        self.history = ["queued"]

    @rule(report=st.sampled_from(["accepted", "queued", "sending", "sent", "delivered", "read", "undelivered",
                                  "failed", "canceled", "bogus", ""]))
    def report(self, report):
        before = self.status
        after = next_status(before, report)
        if before in TERMINAL:
            assert after is None
        self.status = after or before
        self.history.append(self.status)

    @invariant()
    def never_backwards(self):
        ranks = [STATUS_RANK[s] for s in self.history]
        assert ranks == sorted(ranks)


TestMessageStatusMachine = MessageStatusMachine.TestCase
TestMessageStatusMachine.settings = hsettings(max_examples=150, stateful_step_count=25, deadline=None)


def _worker_env(app, public_url: str) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "C4D_SIM_"))}
    env.update(DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], SECRET_KEY=app.config["SECRET_KEY"],
               C4D_DATA_KEY=app.config["C4D_DATA_KEY"], C4D_PUBLIC_URL=public_url,
               C4D_SIMULATOR_AUTH_TOKEN=app.config["C4D_SIMULATOR_AUTH_TOKEN"],
               C4D_DISPATCH_LEASE_SECONDS="6", C4D_RECONCILE_GRACE_SECONDS="3",
               C4D_DISPATCH_LOCK_STALE_SECONDS="2", TWILIO_TIMEOUT_SECONDS="2", TWILIO_CONNECT_TIMEOUT_SECONDS="1",
               PYTHONUNBUFFERED="1")
    return env


def _count(statuses) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage).where(
        OutboundMessage.status.in_(statuses))) or 0


def test_sigkill_mid_broadcast_then_restart_sends_everybody_exactly_once(
        live_app, app, make_user, make_contact, tmp_path):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from whp_c4d.simulator import settings as sim

    db.session.add(Segment(name="Todos", filters={}))
    db.session.commit()
    numbers = fictional_numbers("GT", 150, start=5000)
    contacts = [make_contact(phone=n) for n in numbers]
    save_sender(None, name="GT", channel="sms", from_address=fictional_numbers("GT", 1, start=4000)[0],
                countries=["GT"], cap_per_second=40)
    sim.save({"latency_ms": "20-60"})
    db.session.commit()
    _due_now(_campaign(make_user("officer")))
    c4d = [str(Path(sys.executable).with_name("c4d")), "worker", "--no-scheduler", "--pool", "8"]
    env = _worker_env(live_app, live_app.config["C4D_PUBLIC_URL"])
    log = (tmp_path / "worker.log").open("w")
    try:
        first = subprocess.Popen(c4d, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while _sent_count() < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)  # mid-broadcast: no clean-up, leases and the lock left behind
        first.wait(10)
        at_kill = _sent_count()
        assert 0 < at_kill < len(contacts), at_kill
        second = subprocess.Popen(c4d, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while _count(("pending", "sending", "uncertain", "claimed")) and time.monotonic() < deadline:
                time.sleep(0.25)
        finally:
            second.terminate()
            try:
                second.wait(20)
            except subprocess.TimeoutExpired:
                second.kill()
                second.wait(10)
                raise AssertionError("the worker did not stop on SIGTERM:\n"
                                     + (tmp_path / "worker.log").read_text()[-3000:]) from None
    finally:
        log.close()
        sim.reset()
        db.session.commit()
    sent = _sent_per_person()
    assert _count(("pending", "sending", "uncertain", "claimed")) == 0, (tmp_path / "worker.log").read_text()[-2000:]
    assert sorted(sent) == sorted(c.current_number.e164 for c in contacts)
    assert set(sent.values()) == {1}, "somebody got the message twice after the crash"


BROADCAST = 10_000


def test_sigkill_mid_broadcast_of_ten_thousand_then_restart_everybody_gets_exactly_one(
        app, make_user, fake_twilio, tmp_path):
    """Scenario 1 at full size: a worker is killed with SIGKILL while 10,000 messages are going out
    (rows claimed, calls in flight, the lock held); a new worker finishes. The fake Twilio counts what
    each number received: every number exactly once."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from helpers import bulk_contacts

    db.session.add(Segment(name="Todos", filters={}))
    numbers = bulk_contacts(BROADCAST)
    save_sender(None, name="GT", channel="sms", from_address=fictional_numbers("GT", 1, start=4000)[0],
                countries=["GT"], cap_per_second=1000)
    db.session.commit()
    assert _due_now(_campaign(make_user("officer"))) == BROADCAST
    c4d = [str(Path(sys.executable).with_name("c4d")), "worker", "--no-scheduler", "--pool", "16"]
    env = _worker_env(app, "http://127.0.0.1:9")  # nobody listens: status callbacks are not part of this
    env.update(TWILIO_API_BASE=fake_twilio.base, TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_AUTH_TOKEN="fake")
    log = (tmp_path / "worker.log").open("w")

    def received() -> int:
        return len(fake_twilio.stats()["stamps"])

    try:
        first = subprocess.Popen(c4d, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while (received() < BROADCAST // 5 or not _count(("sending",))) and time.monotonic() < deadline:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)  # rows claimed and calls in flight, the SQLite lock held
        first.wait(10)
        at_kill = received()
        assert 0 < at_kill < BROADCAST, at_kill
        second = subprocess.Popen(c4d, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while _count(("pending", "sending", "uncertain", "claimed")) and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            second.terminate()
            second.wait(30)
    finally:
        log.close()
    assert _count(("pending", "sending", "uncertain", "claimed")) == 0, (tmp_path / "worker.log").read_text()[-2000:]
    per_to = fake_twilio.stats()["per_to"]
    assert sorted(per_to) == sorted(numbers)
    twice = [n for n, c in per_to.items() if c != 1]
    assert not twice, f"{len(twice)} people got the message more than once after the crash"
    assert _count(("queued",)) == BROADCAST


def _sent_count() -> int:
    from whp_c4d.simulator.models import SimulatorMessage

    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(SimulatorMessage)) or 0
