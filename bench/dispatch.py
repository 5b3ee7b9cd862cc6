"""Dispatch throughput against a local fake Twilio that answers every create after a fixed latency.

    python bench/dispatch.py --messages 20000 --cap 100 --latency-ms 150 --pool 32
    python bench/dispatch.py --messages 20000 --cap 500 --latency-ms 150 --pool 128 --database-url postgresql+psycopg://…
    python bench/dispatch.py --messages 20000 --cap 0 --latency-ms 150 --pool 128   # no cap: the highest rate

The fake Twilio runs in its own process (as the real one runs elsewhere), so its CPU is not the
dispatcher's; on this 2-core machine it still takes a share of the second core.

Reports the achieved rate as a fraction of the cap, the largest count in any one-second window at
the fake Twilio (the cap must hold), lateness behind each message's earliest time (p50/p99), and the
process's peak memory. The real SDK and the real dispatcher are used; only Twilio is fake.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bench_app, bulk_contacts, fake_twilio  # noqa: E402


def busiest_second(stamps: list[float]) -> tuple[int, float]:
    """The largest number of stamps in any one-second window, and when (seconds from the first) it ends."""
    best, at, j = 0, 0.0, 0
    for i, t in enumerate(stamps):
        while stamps[j] < t - 1.0:
            j += 1
        if i - j + 1 > best:
            best, at = i - j + 1, t - stamps[0]
    return best, at


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--cap", type=int, default=100, help="messages per second; 0 for no cap")
    ap.add_argument("--latency-ms", type=int, default=150)
    ap.add_argument("--pool", type=int, default=32)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--dump", default=None, help="write the calls' start and arrival times to this JSON file")
    args = ap.parse_args()

    stack = contextlib.ExitStack()
    fake = stack.enter_context(fake_twilio(args.latency_ms, nice=-10))  # Twilio has its own CPUs
    from whp_c4d.messaging.services import MAX_CAP

    cap = args.cap or MAX_CAP  # 0: no cap (the largest a sender may have), the highest rate reached
    app, _tmp = bench_app(args.database_url, TWILIO_ACCOUNT_SID="AC" + "1" * 32, TWILIO_AUTH_TOKEN="bench",
                          TWILIO_API_BASE=fake.base)
    import sqlalchemy as sa

    from whp_c4d.extensions import db

    with app.app_context():
        from whp_c4d.messaging.dispatcher import Dispatcher
        from whp_c4d.messaging.models import OutboundMessage
        from whp_c4d.messaging.services import save_sender

        bulk_contacts(args.messages)  # contacts 1..N, SMS consent
        now = datetime.now(UTC)
        rows = [{"contact_id": i, "campaign_id": 1, "step_id": 1, "occurrence": "bench", "language": "es",
                 "channel": "sms", "purpose": "campaigns", "country": "GT", "body": "Hola", "segments": 1,
                 "earliest_at": now, "status": "pending", "attempts": 0, "created_at": now,
                 "updated_at": now, "template_variables": {}} for i in range(1, args.messages + 1)]
        db.session.execute(sa.insert(OutboundMessage), rows)
        save_sender(None, name="bench", channel="sms", from_address="+12025550100", countries=["GT"],
                    cap_per_second=cap)
        db.session.commit()

        from whp_c4d.messaging import channels

        starts: list[float] = []  # when the dispatcher started each call, as its own clock saw it

        def channel_factory():
            channel = channels.channel_from_config(app.config)
            send = channel.send

            def timed(before_call=None, **fields):
                def gate():  # the moment the dispatcher lets the request leave
                    if before_call is not None:
                        before_call()
                    starts.append(time.monotonic())

                return send(before_call=gate, **fields)

            channel.send = timed
            return channel

        dispatcher = Dispatcher(app, pool_size=args.pool, batch=min(max(cap * 2, 500), 2000),
                                channel_factory=channel_factory)
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
        stamps = sorted(fake.stats()["stamps"])
        stack.close()
        window_max, window_at = busiest_second(stamps)
        steady_max, _at = busiest_second([t for t in stamps if t - stamps[0] >= 2.0])
        sent_max, _at = busiest_second(sorted(starts))
        # Both processes read the same system-wide monotonic clock: the k-th call started and the k-th
        # arrival are (nearly) the same request, so their difference is the time on the way.
        transit = sorted(b - a for a, b in zip(sorted(starts), stamps, strict=False))
        if args.dump:  # both clocks' stamps, to study where a busy second comes from
            Path(args.dump).write_text(json.dumps({"starts": sorted(starts), "stamps": stamps}))
        rate = len(stamps) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0
        statuses = dict(db.session.execute(sa.select(OutboundMessage.status, sa.func.count())
                                           .group_by(OutboundMessage.status)).all())
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        db_kind = db.engine.dialect.name
    cap_text = f"cap {args.cap}/s" if args.cap else "no cap"
    print(f"{db_kind}: {args.messages} messages, {cap_text}, latency {args.latency_ms} ms, pool {args.pool}")
    print(f"  sent {len(stamps)} in {elapsed:.1f} s; achieved {rate:.1f}/s"
          + (f" = {rate / args.cap:.1%} of the cap" if args.cap else ""))
    print(f"  largest count in any 1-second window: {window_max} (ending {window_at:.1f} s in)"
          + (f" ({window_max / args.cap:.1%} of the cap)" if args.cap else ""))
    print(f"  largest count in any 1-second window after the first two seconds (connections open): {steady_max}"
          + (f" ({steady_max / args.cap:.1%} of the cap)" if args.cap else ""))
    print(f"  largest count of calls started in any 1-second window, by the dispatcher's clock: {sent_max}")
    if transit:
        print(f"  time from the dispatcher's go to the fake's stamp: p50 {transit[len(transit) // 2] * 1000:.1f} ms, "
              f"p99 {transit[int(len(transit) * 0.99) - 1] * 1000:.1f} ms, max {transit[-1] * 1000:.1f} ms")
    print(f"  lateness behind schedule: p50 {lateness[len(lateness) // 2]:.1f} s, "
          f"p99 {lateness[int(len(lateness) * 0.99) - 1]:.1f} s (the queue drains at the cap)")
    print(f"  final statuses: {statuses}")
    print(f"  peak memory of the process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
