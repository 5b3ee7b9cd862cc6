"""Expanding one campaign step into the outbox for N fictional contacts (`expand_step`, the bulk insert
the sweep runs), and the cost of the idle re-sweep that follows.

    python bench/expansion.py --contacts 100000                      # SQLite in a temporary folder
    python bench/expansion.py --contacts 100000 --database-url postgresql+psycopg://postgres@127.0.0.1/c4d_bench_exp
    python bench/expansion.py --contacts 100000 --profile 30         # cProfile of one expansion, top 30 lines

The database must be empty (it is migrated here). Contacts (with encrypted numbers, as an import leaves
them) are inserted in bulk: 5 countries, 6 language/country mixes, SMS, WhatsApp or both, 2 % opted out
of every channel and 1 % inbound-only, so the audience and the reachable set differ from the table.
The campaign is the one of bench/campaign_plan.py (3 drip steps in 5 languages on SMS and WhatsApp,
SMS fallback, a consent segment), with a per-country `{hotline}` variable and WhatsApp text.

Each timed expansion runs in its own transaction and is committed; between repeats the step's rows are
deleted, so every run inserts the full set. On PostgreSQL the script runs VACUUM ANALYZE after seeding,
after enrolment and between repeats, as autovacuum would (the development server has it off);
`--no-analyze` leaves the planner without statistics. Checks: rows == reachable contacts (computed
from the seed data, and from the estimate's SQL), and a second expansion adds 0 rows.

The idle re-sweep (nothing missing) is timed right after the expansion, with statistics that do not
know the step's rows yet, and on PostgreSQL again after VACUUM ANALYZE; then a re-sweep with 1 % of
the rows missing (people who joined since the last sweep, the sweep's usual work every 15 s).
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

PLAN = [("GT", "es", "America/Guatemala"), ("HT", "ht", "America/Port-au-Prince"),
        ("HT", "fr", "America/Port-au-Prince"), ("MX", "es", "America/Mexico_City"),
        ("SR", "nl", "America/Paramaribo"), ("BZ", "en", "America/Belize")]
LANGUAGES = ("es", "en", "fr", "ht", "nl")


def seed(n: int, rng: random.Random) -> int:
    """Insert n contacts with numbers and channels; return how many the step can reach."""
    import sqlalchemy as sa

    from whp_c4d.audience.models import Contact, ContactChannel, PhoneNumber
    from whp_c4d.core.crypto import keys
    from whp_c4d.extensions import db

    k = keys()
    now = datetime.now(UTC)
    contacts, numbers, channels = [], [], []
    reachable = 0
    for i in range(1, n + 1):
        country, language, tz = rng.choice(PLAN)
        status = "inbound_only" if rng.random() < 0.01 else "active"
        opted_out = rng.random() < 0.02
        e164 = f"+1202{i:07d}"
        contacts.append({"id": i, "pseudonym": f"B{i:09d}", "status": status, "language": language,
                         "country": country, "timezone": tz, "created_at": now})
        numbers.append({"contact_id": i, "e164": e164, "blind_index": k.blind_index(e164),
                        "country": country, "added_at": now})
        for ch in rng.choice([["sms"], ["whatsapp"], ["sms", "whatsapp"]]):
            channels.append({"contact_id": i, "channel": ch, "campaigns": True, "polls": True,
                             "opted_out_at": now if opted_out else None})
        reachable += status == "active" and not opted_out
    for start in range(0, n, 20000):  # bounded statements: SQLite's and psycopg's limits stay far away
        db.session.execute(sa.insert(Contact), contacts[start:start + 20000])
        db.session.execute(sa.insert(PhoneNumber), numbers[start:start + 20000])
    for start in range(0, len(channels), 20000):
        db.session.execute(sa.insert(ContactChannel), channels[start:start + 20000])
    return reachable


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=3, help="timed expansions (rows deleted in between)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="also profile one expansion with cProfile and print the top N lines")
    ap.add_argument("--no-analyze", action="store_true",
                    help="PostgreSQL: never VACUUM ANALYZE (planner statistics stay empty, as when autovacuum is off)")
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    app, _tmp = bench_app(args.database_url)

    import sqlalchemy as sa

    from whp_c4d.extensions import db

    with app.app_context():
        from whp_c4d.audience.models import Segment
        from whp_c4d.campaigns import services
        from whp_c4d.campaigns.expansion import expand_step
        from whp_c4d.campaigns.models import ContentVariable, ContentVariableValue
        from whp_c4d.campaigns.planning import enrol_audience, reachable_query
        from whp_c4d.messaging.models import OutboundMessage

        def vacuum() -> None:
            """PostgreSQL: what autovacuum does on a production server (it is off on the development one),
            so the planner sees the seeded tables and each repeat starts without the last one's dead rows."""
            if db.engine.dialect.name == "postgresql" and not args.no_analyze:
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(sa.text("VACUUM ANALYZE"))

        t0 = time.perf_counter()
        expected = seed(args.contacts, random.Random(7))
        db.session.add(Segment(name="consented", filters={"consent": "campaigns"}))
        hotline = db.session.get(ContentVariable, "hotline")  # seeded by the migrations, without values
        hotline.values = [ContentVariableValue(country=c, value=f"+1 800 555 01{n:02d}")
                          for n, c in enumerate(("GT", "HT", "MX", "SR", "BZ"))]
        db.session.commit()
        vacuum()
        print(f"{db.engine.dialect.name}: seeded {args.contacts} contacts (numbers encrypted) "
              f"in {time.perf_counter() - t0:.1f} s; {expected} reachable", flush=True)

        campaign = services.create_campaign(services.campaign_schema().load({
            "key": "bench", "name": "Bench", "objective": "regular_pathways",
            "countries": ["GT", "HT", "MX", "SR", "BZ"], "languages": list(LANGUAGES),
            "fallbacks": {"ht": ["fr"]}, "channels": ["sms", "whatsapp"], "sms_fallback": True,
            "audience": "consented",
            "steps": [{"key": f"s{n}", "timing": {"type": "drip", "day": n, "time": "10:00"},
                       "content": {lang: {"sms": f"Información útil número {n} para tu viaje, en {lang}. "
                                                 "Ayuda: {hotline}",
                                          "whatsapp": f"*Paso {n}* ({lang}): información útil para tu viaje. "
                                                      "Línea de ayuda: {hotline}"}
                                   for lang in LANGUAGES}} for n in range(3)],
        }), None)
        db.session.commit()
        step = campaign.steps[0]
        step_id = step.id

        t = time.perf_counter()
        enrolled = enrol_audience(campaign)
        db.session.commit()
        enrol_s = time.perf_counter() - t
        vacuum()
        print(f"{'enrol the audience (once)':<40} {enrol_s * 1000:9.0f} ms  ({enrolled} enrolled)", flush=True)

        def count_rows() -> int:
            return db.session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)
                                     .where(OutboundMessage.step_id == step_id)) or 0

        runs = []
        added = 0
        for r in range(args.repeat):
            if r:
                db.session.execute(sa.delete(OutboundMessage).where(OutboundMessage.step_id == step_id))
                db.session.commit()
                vacuum()
            db.session.expire_all()
            t = time.perf_counter()
            added = expand_step(db.session.get(type(step), step_id))
            db.session.commit()
            runs.append(time.perf_counter() - t)
            print(f"  expansion {r + 1}: {runs[-1]:.2f} s", flush=True)
        best = min(runs)
        rows = count_rows()
        print(f"{'expand_step (drip step 0)':<40} {best:9.2f} s   best of {len(runs)} "
              f"[{', '.join(f'{x:.2f}' for x in runs)}]; {added} rows, {added / best:,.0f} rows/s")

        def resweep(label: str) -> int:
            db.session.expire_all()
            t = time.perf_counter()
            n = expand_step(db.session.get(type(step), step_id))
            db.session.commit()
            print(f"{label:<40} {(time.perf_counter() - t) * 1000:9.0f} ms  ({n} rows added)", flush=True)
            return n

        # Right after the expansion the planner's statistics still describe the outbox without the step's
        # rows (the last VACUUM ANALYZE ran after the delete); autovacuum would soon analyse it: both.
        again = resweep("expand again (idle re-sweep)")
        if db.engine.dialect.name == "postgresql" and not args.no_analyze:
            vacuum()
            again += resweep("idle re-sweep after VACUUM ANALYZE")
        # The sweep's usual case: a few people joined since (here: every 100th row is missing again).
        db.session.execute(sa.delete(OutboundMessage).where(OutboundMessage.step_id == step_id,
                                                            OutboundMessage.contact_id % 100 == 0))
        db.session.commit()
        missing = rows - count_rows()
        refill = resweep(f"re-sweep, {missing} rows missing")

        sql_reachable = sum(r[-1] for r in db.session.execute(reachable_query(campaign)).all() if r[3] or r[4])
        by_channel = dict(db.session.execute(sa.select(OutboundMessage.channel, sa.func.count()).where(
            OutboundMessage.step_id == step_id).group_by(OutboundMessage.channel)).all())
        ok = rows == expected == sql_reachable == added == count_rows() and again == 0 and refill == missing
        print(f"check: {rows} rows in the outbox, {expected} reachable (seed), {sql_reachable} reachable "
              f"(estimate SQL), idle re-sweeps added {again}, the last one {refill} of {missing} missing: "
              f"{'OK' if ok else 'MISMATCH'}")
        print(f"rows by channel: {by_channel}")

        if args.profile:
            import cProfile
            import pstats

            db.session.execute(sa.delete(OutboundMessage).where(OutboundMessage.step_id == step_id))
            db.session.commit()
            vacuum()
            db.session.expire_all()
            prof = cProfile.Profile()
            s = db.session.get(type(step), step_id)
            prof.enable()
            expand_step(s)
            db.session.commit()
            prof.disable()
            stats = pstats.Stats(prof, stream=sys.stdout)
            stats.sort_stats("cumulative").print_stats(args.profile)
            stats.sort_stats("tottime").print_stats(args.profile)

        db.session.remove()
        db.engine.dispose()
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
