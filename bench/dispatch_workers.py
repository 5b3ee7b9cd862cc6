"""The cap across several workers, and a STOP confirmation during a broadcast (issue 12).

    python bench/dispatch_workers.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    python bench/dispatch_workers.py --database-url … --workers 1,2,4 --caps 50,100 --seconds 40

For each cap and number of workers: a fresh PostgreSQL database (created next to the one the URL names,
dropped afterwards), a broadcast of ``cap × seconds`` SMS due at once to fictional contacts, one sender
at that cap, a fake Twilio in its own process answering every create after 150 ms, and that many
``c4d worker --no-scheduler`` processes. When 40 % of the broadcast has gone, a person who is not in it
sends STOP (through the real inbound service); the confirmation's way to Twilio is timed.

Prints, per run: the busiest one-second window at the fake (any window, sliding, and after the first
two seconds), the achieved rate against the cap, and how long the STOP confirmation took from the
moment the STOP was stored to its arrival at the fake. Both processes read the same system-wide
monotonic clock. The real SDK, dispatcher, outbox and inbound service; only Twilio is fake.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, bench_app, bulk_contacts, fake_twilio  # noqa: E402

ACCOUNT, TOKEN = "AC" + "1" * 32, "bench"


def busiest(stamps: list[float], width: float = 1.0) -> int:
    """The largest number of stamps in any window of ``width`` seconds (sliding)."""
    best, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - width:
            j += 1
        best = max(best, i - j + 1)
    return best


@contextlib.contextmanager
def fresh_database(admin_url: str, name: str):
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def run(admin_url: str, cap: int, workers: int, seconds: int, latency_ms: int, pool: int) -> dict:
    messages = cap * seconds
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_database(admin_url, f"c4d_bench_workers_{os.getpid()}"))
        fake = stack.enter_context(fake_twilio(latency_ms, nice=-10))  # Twilio has its own CPUs
        app, instance = bench_app(url, TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_API_BASE=fake.base,
                                  C4D_PUBLIC_URL="http://127.0.0.1:9")  # callbacks go nowhere: not measured here
        from whp_c4d.core.models import utcnow
        from whp_c4d.extensions import db
        from whp_c4d.inbound import services as inbound
        from whp_c4d.messaging import outbox
        from whp_c4d.messaging.models import OutboundMessage
        from whp_c4d.messaging.services import save_sender

        with app.app_context():
            bulk_contacts(messages)  # contacts 1..N, SMS consent
            [stopper] = bulk_contacts(1)
            save_sender(None, name="bench", channel="sms", from_address="+12025550100", countries=["GT"],
                        cap_per_second=cap)
            now = utcnow()
            columns = {"campaign_id": 1, "step_id": 1, "occurrence": "bench", "language": "es", "channel": "sms",
                       "purpose": "campaigns", "country": "GT", "body": "Hola, mensaje de prueba", "template_sid": None,
                       "template_variables": {}, "media_url": None, "sms_fallback_body": None, "segments": 1,
                       "earliest_at": now, "expires_at": None, "timezone": "America/Guatemala", "quiet_start": None,
                       "quiet_end": None}
            outbox.insert_planned([(i, columns) for i in range(1, messages + 1)])
            db.session.commit()

            env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": app.config["SECRET_KEY"],
                   "C4D_DATA_KEY": app.config["C4D_DATA_KEY"], "C4D_INSTANCE_PATH": instance,
                   "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_API_BASE": fake.base,
                   "C4D_PUBLIC_URL": "http://127.0.0.1:9", "PYTHONUNBUFFERED": "1"}
            c4d = [str(Path(sys.executable).with_name("c4d")), "worker", "--no-scheduler", "--pool", str(pool)]
            logs = Path(tempfile.mkdtemp(prefix="c4d-bench-workers-"))
            procs = [subprocess.Popen(c4d, env=env, cwd=ROOT, stdout=(logs / f"w{i}.log").open("w"),
                                      stderr=subprocess.STDOUT) for i in range(workers)]
            try:
                def sent() -> int:
                    return fake.count()["count"]

                deadline = time.monotonic() + seconds * 3 + 60
                while sent() < messages * 0.4 and time.monotonic() < deadline:
                    time.sleep(0.2)
                form = {"MessageSid": "SM" + "5" * 32, "From": stopper, "To": "+12025550100", "Body": "STOP",
                        "NumMedia": "0", "FromCountry": "GT"}
                message = inbound.receive(form).message
                db.session.commit()
                inbound.process(message)
                db.session.commit()
                stored = time.monotonic()
                confirmation = None
                while time.monotonic() < deadline:
                    arrived = fake.count(stopper)["first"]
                    if confirmation is None and arrived is not None:
                        confirmation = arrived - stored
                    left = db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage).where(
                        OutboundMessage.status.in_(("pending", "sending", "uncertain"))))
                    db.session.commit()
                    if not left and confirmation is not None:
                        break
                    time.sleep(0.5)
            finally:
                for proc in procs:
                    proc.send_signal(signal.SIGTERM)
                for proc in procs:
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            stats = fake.stats()
            statuses = dict(db.session.execute(sa.select(OutboundMessage.status, sa.func.count())
                                               .group_by(OutboundMessage.status)).all())
            db.session.remove()
            db.engine.dispose()
    stamps = sorted(stats["stamps"])
    twice = sum(1 for n in stats["per_to"].values() if n > 1)
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return {"cap": cap, "workers": workers, "sent": len(stamps), "rate": rate, "busiest": busiest(stamps),
            "busiest_after_2s": busiest([t for t in stamps if t - stamps[0] >= 2.0]),
            "confirmation": confirmation, "twice": twice, "statuses": statuses}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", required=True, help="a PostgreSQL URL; fresh databases are made beside it")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--caps", default="50,100")
    ap.add_argument("--seconds", type=int, default=40, help="the broadcast lasts this long at the cap")
    ap.add_argument("--latency-ms", type=int, default=150)
    ap.add_argument("--pool", type=int, default=32)
    args = ap.parse_args()
    print("cap | workers | sent | achieved / cap | busiest 1-s window (any / after 2 s) | STOP confirmation | twice")
    for cap in map(int, args.caps.split(",")):
        for workers in map(int, args.workers.split(",")):
            r = run(args.database_url, cap, workers, args.seconds, args.latency_ms, args.pool)
            confirmation = f"{r['confirmation']:.2f} s" if r["confirmation"] is not None else "never"
            print(f"{cap} | {workers} | {r['sent']} | {r['rate']:.1f}/s = {r['rate'] / cap:.1%} | "
                  f"{r['busiest']} = {r['busiest'] / cap:.1%} / {r['busiest_after_2s']} = "
                  f"{r['busiest_after_2s'] / cap:.1%} | {confirmation} | {r['twice']}   {r['statuses']}", flush=True)


if __name__ == "__main__":
    main()
