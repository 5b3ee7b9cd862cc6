"""The worker: the scheduler runs in one process only (PostgreSQL advisory lock), and a worker started
like `c4d worker` sends an active campaign's due messages through the simulator on its own."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from test_outbox import _active, _due_now

from whp_c4d.extensions import db
from whp_c4d.messaging.models import OutboundMessage
from whp_c4d.scheduler.worker import Leadership, Worker, build_scheduler


def test_only_one_worker_leads_and_another_takes_over_when_it_goes(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("on SQLite there is one worker, and it leads")
    first, second = Leadership(app), Leadership(app)
    try:
        assert first.try_acquire() is True
        assert second.try_acquire() is False
        first.release()  # the leader's process ends: its connection, and the lock, go away
        assert second.try_acquire() is True
    finally:
        first.release()
        second.release()


def test_scheduled_jobs_carry_no_personal_data(app):
    scheduler = build_scheduler(app)
    for job in scheduler.get_jobs():
        assert job.args == (app,) and not job.kwargs


def test_a_running_worker_sends_the_due_messages_of_an_active_campaign(live_app, audience):
    author, contacts = audience
    _due_now(_active(author))
    worker = Worker(live_app, sweep_seconds=3600, idle_sleep=0.05, pool_size=4)
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            db.session.expire_all()
            left = db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)
                                     .where(OutboundMessage.status.in_(("pending", "sending"))))
            if left == 0:
                break
            time.sleep(0.2)
    finally:
        worker.stop()
    db.session.expire_all()
    statuses = {r.status for r in db.session.scalars(sa.select(OutboundMessage))}
    assert statuses <= {"queued", "sent", "delivered"} and len(contacts) == 12


def test_serve_runs_a_worker_and_the_callback_pump_and_stops_them(app, runner, monkeypatch):
    import werkzeug.serving

    from whp_c4d.scheduler import worker as worker_module

    seen = []
    monkeypatch.setattr(werkzeug.serving, "run_simple", lambda *a, **kw: seen.append("served"))
    monkeypatch.setattr(worker_module.Worker, "start", lambda self: seen.append("worker started"))
    monkeypatch.setattr(worker_module.Worker, "stop", lambda self, timeout=10.0: seen.append("worker stopped"))
    result = runner.invoke(args=["serve", "--port", "5999"])
    assert result.exit_code == 0, result.output
    assert seen == ["worker started", "served", "worker stopped"]
    seen.clear()
    assert runner.invoke(args=["serve", "--no-worker"]).exit_code == 0
    assert seen == ["served"]


def test_serve_and_worker_say_where_messages_go(app, runner, monkeypatch):
    """Issue 13: the simulator is on only without Twilio credentials (or when asked for), and says so at
    start, so that nobody believes messages reach people when they stay on this machine, or the reverse."""
    import werkzeug.serving

    monkeypatch.setattr(werkzeug.serving, "run_simple", lambda *a, **kw: None)
    result = runner.invoke(args=["serve", "--no-worker"])
    assert "simulator" in result.output and "nothing leaves this machine" in result.output
    monkeypatch.setitem(app.config, "TWILIO_ACCOUNT_SID", "AC" + "3" * 32)
    monkeypatch.setitem(app.config, "C4D_SIMULATOR", False)
    result = runner.invoke(args=["serve", "--no-worker"])
    assert "Twilio account AC…3333" in result.output and "simulator is off" in result.output
