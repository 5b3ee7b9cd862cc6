"""The worker: one APScheduler scheduler (the leader's) for the periodic jobs, and a dispatcher loop in
every worker. Started by `c4d worker` and by `c4d serve`; never by create_app (a forking server or the
reloader would start it twice).

Leadership on PostgreSQL is a session advisory lock held on a dedicated connection: when the leader's
process dies its connection closes, the lock is released, and a waiting worker takes over within
``LEADER_RETRY`` seconds. On SQLite there is one worker (the dispatcher lock enforces it) and it leads.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ..extensions import db
from . import jobs

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x43344400  # "C4D\0": any constant shared by every worker of this database
LEADER_RETRY = 10.0
BUSY_SLEEP = 0.1  # seconds before the next tick when rows were held back: a sender's next second booked


class Leadership:
    """Whether this process runs the scheduler. Holds its own connection on PostgreSQL."""

    def __init__(self, app):
        self.app = app
        self.connection = None
        self.is_leader = False

    def try_acquire(self) -> bool:
        if self.is_leader:
            return True
        with self.app.app_context():
            if db.engine.dialect.name != "postgresql":
                self.is_leader = True
                return True
            if self.connection is None:
                self.connection = db.engine.connect()
            got = self.connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK_KEY}).scalar()
            self.connection.commit()
            self.is_leader = bool(got)
            return self.is_leader

    def release(self) -> None:
        if self.connection is not None:
            try:
                if self.is_leader:
                    self.connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_LOCK_KEY})
                    self.connection.commit()
            finally:
                self.connection.close()
                self.connection = None
        self.is_leader = False


def build_scheduler(app, *, sweep_seconds: float = 15.0) -> BackgroundScheduler:
    """The periodic jobs. They take the app and nothing else: no ids of people, no numbers, no text."""
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
        # After downtime a periodic job runs once, not once per missed interval.
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 60})
    scheduler.add_job(jobs.sweep, IntervalTrigger(seconds=sweep_seconds), args=[app], id="sweep")
    scheduler.add_job(jobs.purge, CronTrigger(hour=3, minute=17), args=[app], id="purge")
    scheduler.add_job(jobs.inbound, IntervalTrigger(seconds=30), args=[app], id="inbound")
    scheduler.add_job(jobs.feedback, IntervalTrigger(minutes=5), args=[app], id="feedback")
    return scheduler


class Worker:
    def __init__(self, app, *, dispatch: bool = True, schedule: bool = True, sweep_seconds: float = 15.0,
                 idle_sleep: float = 0.5, pool_size: int = 16):
        self.app = app
        self.dispatch, self.schedule = dispatch, schedule
        self.sweep_seconds, self.idle_sleep, self.pool_size = sweep_seconds, idle_sleep, pool_size
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.leadership = Leadership(app)
        self.scheduler: BackgroundScheduler | None = None
        self.dispatcher = None

    def start(self) -> None:
        # The app's long-lived objects (models, metadata, the SDK's classes) leave the garbage collector's
        # view: a full collection over them paused every thread for 100-250 ms, and paced sends woke late
        # from their slots (bench/README.md, dispatch across workers).
        gc.collect()
        gc.freeze()
        if self.dispatch:
            from ..messaging.dispatcher import Dispatcher

            with self.app.app_context():
                self.dispatcher = Dispatcher(self.app, pool_size=self.pool_size)
                self.dispatcher.start()  # on SQLite: refuses when another dispatcher runs
            self._spawn(self._dispatch_loop, "c4d-dispatcher")
        if self.schedule:
            self._spawn(self._leader_loop, "c4d-leader")

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _leader_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                if self.scheduler is None and self.leadership.try_acquire():
                    log.info("this worker leads: starting the scheduler")
                    self.scheduler = build_scheduler(self.app, sweep_seconds=self.sweep_seconds)
                    self.scheduler.start()
                    jobs.sweep(self.app)  # at once, not one interval after start
            except Exception:  # noqa: BLE001 - the database may be restarting; try again
                log.exception("leadership check failed")
            self.stop_event.wait(LEADER_RETRY if self.scheduler is None else 1.0)

    def _dispatch_loop(self) -> None:
        while not self.stop_event.is_set():
            pause = self.idle_sleep
            try:
                with self.app.app_context():
                    stats = self.dispatcher.tick(wait=False)
                    db.session.remove()
                # Booked up (the senders' next second, or the pool): let it drain, so that the next claim
                # is a batch and not a row or two, each paying a claim's queries.
                pause = BUSY_SLEEP if stats.held_back else 0.01 if stats.claimed else self.idle_sleep
            except Exception:  # noqa: BLE001 - keep dispatching; rows are safe in the outbox
                log.exception("dispatcher tick failed")
            self.stop_event.wait(pause)

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        for thread in self.threads:
            thread.join(timeout)
        if self.dispatcher is not None:
            with self.app.app_context():
                self.dispatcher.stop()
        self.leadership.release()

    def run_forever(self) -> None:
        self.start()
        try:
            while not self.stop_event.is_set():
                time.sleep(0.5)
        finally:
            self.stop()
