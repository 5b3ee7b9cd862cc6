"""Dispatch throughput against a local fake Twilio that answers every create after a fixed latency.

    python bench/dispatch.py --messages 3000 --cap 100 --latency-ms 150 --pool 32
    python bench/dispatch.py --messages 5000 --cap 500 --latency-ms 150 --pool 128 --database-url postgresql+psycopg://…

Reports the achieved rate as a fraction of the cap, the largest count in any one-second window at
the fake Twilio (the cap must hold), lateness behind each message's earliest time (p50/p99), and the
process's peak memory. The real SDK and the real dispatcher are used; only Twilio is fake.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class FakeTwilio(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Twilio: the SDK's sessions reuse connections

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        arrived = time.monotonic()  # what a cap counts: requests as they arrive
        time.sleep(self.server.latency)
        with self.server.lock:
            self.server.count += 1
            n = self.server.count
            self.server.stamps.append(arrived)
        body = json.dumps({"sid": f"SM{n:032x}", "status": "queued", "num_segments": "1"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--cap", type=int, default=100)
    ap.add_argument("--latency-ms", type=int, default=150)
    ap.add_argument("--pool", type=int, default=32)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTwilio)
    server.daemon_threads = True
    server.latency, server.count, server.stamps, server.lock = args.latency_ms / 1000, 0, [], threading.Lock()
    threading.Thread(target=server.serve_forever, daemon=True).start()

    tmp = tempfile.mkdtemp(prefix="c4d-bench-")
    os.environ["C4D_INSTANCE_PATH"] = tmp
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from whp_c4d import create_app
    from whp_c4d.extensions import db

    app = create_app({"DATABASE_URL": args.database_url or f"sqlite:///{tmp}/bench.db", "SECRET_KEY": "bench",
                      "C4D_DATA_KEY": "bench-key-0123456789", "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
                      "TWILIO_AUTH_TOKEN": "bench", "TWILIO_API_BASE": f"http://127.0.0.1:{server.server_port}"})
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        from whp_c4d.audience.models import Contact, ContactChannel, PhoneNumber
        from whp_c4d.core.crypto import keys
        from whp_c4d.messaging.dispatcher import Dispatcher
        from whp_c4d.messaging.models import OutboundMessage
        from whp_c4d.messaging.services import save_sender

        now = datetime.now(UTC)
        k = keys()
        contacts, numbers, channels, rows = [], [], [], []
        for i in range(1, args.messages + 1):
            e164 = f"+1202555{i % 10000:04d}{i // 10000}" if i >= 10000 else f"+1202555{i:04d}"
            contacts.append({"id": i, "pseudonym": f"B{i:09d}", "status": "active", "language": "es",
                             "country": "GT", "timezone": "America/Guatemala", "created_at": now})
            numbers.append({"contact_id": i, "e164": k.encrypt(e164), "blind_index": k.blind_index(e164),
                            "country": "GT", "added_at": now})
            channels.append({"contact_id": i, "channel": "sms", "campaigns": True, "polls": True})
            rows.append({"contact_id": i, "campaign_id": 1, "step_id": 1, "occurrence": "bench", "language": "es",
                         "channel": "sms", "purpose": "campaigns", "country": "GT", "body": "Hola", "segments": 1,
                         "earliest_at": now, "status": "pending", "attempts": 0, "created_at": now,
                         "updated_at": now, "template_variables": {}})
        db.session.execute(sa.insert(Contact), contacts)
        db.session.execute(sa.insert(PhoneNumber), numbers)
        db.session.execute(sa.insert(ContactChannel), channels)
        db.session.execute(sa.insert(OutboundMessage), rows)
        save_sender(None, name="bench", channel="sms", from_address="+12025550100", countries=["GT"],
                    cap_per_second=args.cap)
        db.session.commit()

        dispatcher = Dispatcher(app, pool_size=args.pool, batch=max(args.cap * 2, 500))
        dispatcher.start()
        start = time.monotonic()
        while True:
            claimed = dispatcher.tick(wait=False).claimed
            if not claimed:
                left = db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage).where(
                    OutboundMessage.status.in_(("pending", "sending"))))  # uncertain: reported below
                if not left:
                    break
            time.sleep(0.01 if claimed else 0.05)
        elapsed = time.monotonic() - start
        dispatcher.stop()
        lateness = sorted((r.sent_at - r.earliest_at).total_seconds()
                          for r in db.session.scalars(sa.select(OutboundMessage)) if r.sent_at)
        stamps = sorted(server.stamps)
        window_max, j = 0, 0
        for i, t in enumerate(stamps):
            while stamps[j] < t - 1.0:
                j += 1
            window_max = max(window_max, i - j + 1)
        rate = len(stamps) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0
        statuses = dict(db.session.execute(sa.select(OutboundMessage.status, sa.func.count())
                                           .group_by(OutboundMessage.status)).all())
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        db_kind = db.engine.dialect.name
    print(f"{db_kind}: {args.messages} messages, cap {args.cap}/s, latency {args.latency_ms} ms, pool {args.pool}")
    print(f"  sent {len(stamps)} in {elapsed:.1f} s; achieved {rate:.1f}/s = {rate / args.cap:.1%} of the cap")
    print(f"  largest count in any 1-second window: {window_max} ({window_max / args.cap:.1%} of the cap)")
    print(f"  lateness behind schedule: p50 {lateness[len(lateness) // 2]:.1f} s, "
          f"p99 {lateness[int(len(lateness) * 0.99) - 1]:.1f} s (the queue drains at the cap)")
    print(f"  final statuses: {statuses}")
    print(f"  peak memory of the process: {peak_mb:.0f} MB")
    _ = timedelta


if __name__ == "__main__":
    main()
