"""How long the authoring side takes at scale: the cost estimate and the checks a campaign page runs,
and the plan (`plan_step`) the messaging engine will consume, over N fictional contacts.

    python bench/campaign_plan.py --contacts 20000                       # SQLite in a temporary folder
    python bench/campaign_plan.py --contacts 20000 --database-url postgresql+psycopg://postgres@127.0.0.1/c4d_bench

The database must be empty (it is migrated here). Contacts are inserted in bulk (no numbers: the
plan needs none). Results go to stdout; copy them into bench/README.md with the machine.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bench_app  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=20000)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    app, _tmp = bench_app(args.database_url)

    import sqlalchemy as sa

    from whp_c4d.extensions import db

    with app.app_context():
        from whp_c4d.audience.models import Contact, ContactChannel, Segment
        from whp_c4d.campaigns import services
        from whp_c4d.campaigns.checks import check_campaign
        from whp_c4d.campaigns.estimates import estimate
        from whp_c4d.campaigns.planning import enrol_audience, plan_step
        from whp_c4d.campaigns.settings import save_price

        rng = random.Random(7)
        plan = [("GT", "es", "America/Guatemala"), ("HT", "ht", "America/Port-au-Prince"),
                ("HT", "fr", "America/Port-au-Prince"), ("MX", "es", "America/Mexico_City"),
                ("SR", "nl", "America/Paramaribo"), ("BZ", "en", "America/Belize")]
        t0 = time.perf_counter()
        contacts, channels = [], []
        for i in range(1, args.contacts + 1):
            country, language, tz = rng.choice(plan)
            contacts.append({"id": i, "pseudonym": f"B{i:09d}", "status": "active", "language": language,
                             "country": country, "timezone": tz, "created_at": datetime.now(UTC)})
            for ch in rng.choice([["sms"], ["whatsapp"], ["sms", "whatsapp"]]):
                channels.append({"contact_id": i, "channel": ch, "campaigns": True, "polls": True})
        db.session.execute(sa.insert(Contact), contacts)
        db.session.execute(sa.insert(ContactChannel), channels)
        db.session.add(Segment(name="all", filters={}))
        save_price("*", "sms", "0.045", "USD", None)
        db.session.commit()
        print(f"seeded {args.contacts} contacts in {time.perf_counter() - t0:.1f} s")

        campaign = services.create_campaign(services.campaign_schema().load({
            "key": "bench", "name": "Bench", "objective": "regular_pathways",
            "countries": ["GT", "HT", "MX", "SR", "BZ"], "languages": ["es", "en", "fr", "ht", "nl"],
            "fallbacks": {"ht": ["fr"]}, "channels": ["sms", "whatsapp"], "sms_fallback": True, "audience": "all",
            "steps": [{"key": f"s{n}", "timing": {"type": "drip", "day": n, "time": "10:00"},
                       "content": {lang: {"sms": f"Información útil número {n} para tu viaje, en {lang}."}
                                   for lang in ("es", "en", "fr", "ht", "nl")}} for n in range(3)],
        }), None)
        db.session.commit()

        def timed(label, fn, repeat=3):
            best = None
            for _ in range(repeat):
                t = time.perf_counter()
                result = fn()
                dt = time.perf_counter() - t
                best = dt if best is None else min(best, dt)
            print(f"{label:<44} {best * 1000:9.1f} ms (best of {repeat})")
            return result

        est = timed("estimate (3 steps)", lambda: estimate(campaign))
        timed("checks before approval", lambda: check_campaign(campaign))
        timed("enrol audience", lambda: enrol_audience(campaign), repeat=1)
        db.session.commit()
        n = timed("plan_step over the whole audience", lambda: sum(1 for _ in plan_step(campaign.steps[0])), 1)
        print(f"planned {n} messages; estimate: {est.total_messages} messages, {est.total_segments} segments")
        db.session.remove()
        db.engine.dispose()


if __name__ == "__main__":
    main()
