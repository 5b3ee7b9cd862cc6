"""A campaign report at scale: 1,000,000 outbound messages and 200,000 inbound replies (PostgreSQL), the
per-campaign report page as an evaluator sees it, and each of its queries.

    python bench/reports.py --database-url postgresql+psycopg://postgres@127.0.0.1/c4d_bench_reports
    python bench/reports.py                                  # SQLite in a temporary folder, 100,000 / 20,000
    python bench/reports.py --outbound 1000000 --inbound 200000 --explain   # and the funnel's query plan

The database must be empty (it is migrated here). The data is generated inside the database with
``INSERT … SELECT`` over ``generate_series`` (PostgreSQL) or a recursive CTE (SQLite), deterministically
(the same rows on both): one campaign with 4 steps (a poll third) to a quarter as many contacts as
messages, 5 countries, 5 languages, SMS and WhatsApp, a realistic status mix (0.5 % pending, 5.5 % failed
of which 0.5 % with Twilio's 21610, 4 % undelivered, 3 % skipped, 1 % missed, 2 % queued, 10 % sent, the
rest delivered, and read for half of the WhatsApp ones), over 7 weeks. Inbound: 60 % poll answers, 20 %
feedback, 5 % STOP, 11 % other keywords, 4 % ignored; 60,000 poll responses and up to 30,000 feedback
items (70 % coded). After seeding, ``VACUUM ANALYZE`` on PostgreSQL (autovacuum is off on the
development server). Then, best of ``--repeat``: each report query, and ``GET /reports/campaigns/<id>``
through the Flask test client, logged in as an evaluator.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bench_app  # noqa: E402

COUNTRY = "CASE {c} % 5 WHEN 0 THEN 'GT' WHEN 1 THEN 'HT' WHEN 2 THEN 'MX' WHEN 3 THEN 'SR' ELSE 'BZ' END"
LANGUAGE = ("CASE {c} % 5 WHEN 0 THEN 'es' WHEN 1 THEN (CASE WHEN {c} % 10 = 1 THEN 'ht' ELSE 'fr' END) "
            "WHEN 2 THEN 'es' WHEN 3 THEN 'nl' ELSE 'en' END")
CHANNEL = "CASE WHEN {c} % 3 = 0 THEN 'whatsapp' ELSE 'sms' END"
BODY = ("Antes de viajar, verifica la oferta de trabajo con fuentes oficiales. Nunca pagues por adelantado. "
        "Información: https://example.org/vias")


class Sql:
    """The few expressions that differ between PostgreSQL and SQLite."""

    def __init__(self, dialect: str):
        self.pg = dialect == "postgresql"

    def series(self, n: int) -> tuple[str, str]:
        """(WITH prefix, FROM clause) giving ``i`` from 1 to n."""
        if self.pg:
            return "", f"generate_series(1::bigint, {int(n)}) AS s(i)"
        return f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {int(n)}) ", "s"

    def sid(self, expr: str, prefix: str = "SM") -> str:
        return f"'{prefix}' || lpad(to_hex({expr}), 32, '0')" if self.pg else f"printf('{prefix}%032x', {expr})"

    def pseudonym(self, expr: str) -> str:
        return f"'R' || lpad(({expr})::text, 9, '0')" if self.pg else f"printf('R%09d', {expr})"

    def at(self, minutes: str) -> str:
        """The campaign's start (Monday 2026-09-07, 00:00 UTC) plus ``minutes``."""
        if self.pg:
            return f"(timestamptz '2026-09-07 00:00:00+00' + ({minutes}) * interval '1 minute')"
        return f"strftime('%Y-%m-%d %H:%M:%S.000000', '2026-09-07 00:00:00', '+' || ({minutes}) || ' minutes')"


def seed(outbound: int, inbound: int) -> dict:
    """Generate the campaign and its rows; returns ids and the expected totals."""
    import sqlalchemy as sa

    from whp_c4d.campaigns import services
    from whp_c4d.core.crypto import keys
    from whp_c4d.extensions import db

    q = Sql(db.engine.dialect.name)
    people = max(outbound // 4, 1)
    languages = ["es", "en", "fr", "ht", "nl"]
    poll = {"key": "s2", "kind": "poll", "timing": {"type": "drip", "day": 28, "time": "10:00"},
            "content": {lang: {"sms": f"¿Verificaste la oferta? 1 Sí 2 No 3 No sé ({lang})", "thanks": "Gracias",
                               "options": [{"number": 1, "label": "Sí"}, {"number": 2, "label": "No"},
                                           {"number": 3, "label": "No sé"}]} for lang in languages}}
    steps = [{"key": f"s{n}", "timing": {"type": "drip", "day": 14 * n, "time": "10:00"},
              "content": {lang: {"sms": BODY} for lang in languages}} for n in (0, 1, 3)]
    campaign = services.create_campaign(services.campaign_schema().load({
        "key": "bench-report", "name": "Bench report", "objective": "regular_pathways",
        "countries": ["GT", "HT", "MX", "SR", "BZ"], "languages": languages, "channels": ["sms", "whatsapp"],
        "sms_fallback": True, "steps": [steps[0], steps[1], poll, steps[2]]}), None)
    campaign.status = "active"
    db.session.commit()
    step_ids = [s.id for s in sorted(campaign.steps, key=lambda s: s.position)]
    poll_id = step_ids[2]
    cid = campaign.id

    c = "i"
    with_, from_ = q.series(people)
    db.session.execute(sa.text(
        f"{with_}INSERT INTO contact (id, pseudonym, status, language, country, timezone, created_at) "
        f"SELECT i, {q.pseudonym('i')}, 'active', {LANGUAGE.format(c=c)}, {COUNTRY.format(c=c)}, "
        f"'America/Guatemala', {q.at('0')} FROM {from_}"))

    # Outbound: row g is for contact (g-1) % people + 1 and step (g-1) / people; h is its status bucket.
    c = f"((i - 1) % {people} + 1)"
    k = f"((i - 1) / {people})"
    h = "((i * 7919) % 1000)"
    status = (f"CASE WHEN {h} < 5 THEN 'pending' WHEN {h} < 60 THEN 'failed' WHEN {h} < 100 THEN 'undelivered' "
              f"WHEN {h} < 130 THEN 'skipped' WHEN {h} < 140 THEN 'missed' WHEN {h} < 160 THEN 'queued' "
              f"WHEN {h} < 260 THEN 'sent' WHEN {CHANNEL.format(c=c)} = 'whatsapp' AND {h} >= 600 THEN 'read' "
              f"ELSE 'delivered' END")
    accepted = f"({h} >= 60 AND {h} < 100) OR {h} >= 140 OR ({h} >= 35 AND {h} < 60)"
    reason = (f"CASE WHEN {h} < 5 THEN NULL WHEN {h} < 10 THEN 'opted_out_at_twilio' WHEN {h} < 35 THEN "
              f"'invalid_number' WHEN {h} < 60 THEN 'failed_at_twilio' WHEN {h} < 100 THEN 'undelivered' "
              f"WHEN {h} < 120 THEN 'no_consent' WHEN {h} < 130 THEN 'no_whatsapp_template' "
              f"WHEN {h} < 140 THEN 'too_late' END")
    code = (f"CASE WHEN {h} >= 5 AND {h} < 10 THEN 21610 WHEN {h} >= 10 AND {h} < 35 THEN 21211 "
            f"WHEN {h} >= 35 AND {h} < 60 THEN 30008 WHEN {h} >= 60 AND {h} < 80 THEN 30005 "
            f"WHEN {h} >= 80 AND {h} < 100 THEN 30003 END")
    channel = CHANNEL.format(c=c)
    sent_channel = (f"CASE WHEN {accepted} THEN (CASE WHEN {channel} = 'whatsapp' AND i % 10 = 0 THEN 'sms' "
                    f"ELSE {channel} END) END")
    created = q.at(f"{k} * 20160 + ({c} % 7) * 1440 + 600 + {c} % 300")
    sent_at = f"CASE WHEN {accepted} THEN {q.at(f'{k} * 20160 + ({c} % 7) * 1440 + 602 + {c} % 300')} END"
    with_, from_ = q.series(outbound)
    db.session.execute(sa.text(
        f"{with_}INSERT INTO outbound_message (id, contact_id, campaign_id, step_id, occurrence, language, channel, "
        "purpose, country, body, template_variables, segments, earliest_at, status, attempts, sent_channel, "
        "provider_sid, error_code, reason, created_at, sent_at, updated_at) "
        f"SELECT i, {c}, {cid}, CASE {k} WHEN 0 THEN {step_ids[0]} WHEN 1 THEN {step_ids[1]} WHEN 2 THEN {poll_id} "
        f"ELSE {step_ids[3]} END, 'drip', {LANGUAGE.format(c=c)}, {channel}, "
        f"CASE WHEN {k} = 2 THEN 'polls' ELSE 'campaigns' END, {COUNTRY.format(c=c)}, :body, '{{}}', "
        f"CASE WHEN {channel} = 'sms' AND {k} % 2 = 1 THEN 2 ELSE 1 END, {created}, {status}, "
        f"CASE WHEN {h} < 5 THEN 0 ELSE 1 END, {sent_channel}, CASE WHEN {accepted} THEN {q.sid('i')} END, "
        f"{code}, {reason}, {created}, {sent_at}, {created} FROM {from_}"), {"body": BODY})

    # Inbound: row g from contact (g * 7919) % (60 % of people) + 1 (about 1.3 messages per person).
    writers = max(people * 6 // 10, 1)
    c = f"((i * 7919) % {writers} + 1)"
    b = "((i * 31) % 100)"
    kind = (f"CASE WHEN {b} < 40 OR {b} >= 80 THEN 'answer' WHEN {b} < 60 THEN 'feedback' WHEN {b} < 76 THEN "
            f"'keyword' ELSE 'ignored' END")
    action = (f"CASE WHEN {b} < 40 OR {b} >= 80 THEN 'poll' WHEN {b} < 60 THEN NULL WHEN {b} < 65 THEN 'opt_out' "
              f"WHEN {b} < 72 THEN 'help' WHEN {b} < 76 THEN 'real' END")
    step = (f"CASE WHEN {b} < 40 OR {b} >= 80 THEN {poll_id} ELSE (CASE i % 3 WHEN 0 THEN {step_ids[0]} "
            f"WHEN 1 THEN {step_ids[1]} ELSE {step_ids[3]} END) END")
    received = q.at(f"(CASE WHEN {b} < 40 OR {b} >= 80 THEN 2 ELSE i % 3 END) * 20160 + ({c} % 7) * 1440 + "
                    f"660 + i % 3000")
    with_, from_ = q.series(inbound)
    empty = keys().encrypt("")
    db.session.execute(sa.text(
        f"{with_}INSERT INTO inbound_message (id, provider_sid, contact_id, channel, to_address, body, text_hash, "
        "num_media, country, language, status, kind, action, campaign_id, step_id, answered, received_at, "
        "processed_at) "
        f"SELECT i, {q.sid('i', 'SX')}, {c}, {CHANNEL.format(c=c)}, '', :empty, '', 0, {COUNTRY.format(c=c)}, "
        f"{LANGUAGE.format(c=c)}, 'processed', {kind}, {action}, {cid}, {step}, true, {received}, {received} "
        f"FROM {from_}"), {"empty": empty})

    answers = min(60000, people)
    c = "(i * 2)" if answers * 2 <= people else "i"
    with_, from_ = q.series(answers)
    db.session.execute(sa.text(
        f"{with_}INSERT INTO poll_response (step_id, campaign_id, occurrence, contact_id, choice, language, country, "
        "channel, created_at, updated_at) "
        f"SELECT {poll_id}, {cid}, 'drip', {c}, CASE WHEN i % 20 = 0 THEN NULL ELSE 1 + (i * 7) % 3 END, "
        f"{LANGUAGE.format(c=c)}, {COUNTRY.format(c=c)}, {CHANNEL.format(c=c)}, {q.at('40320 + i % 3000')}, "
        f"{q.at('40320 + i % 3000')} FROM {from_}"))

    texts = [keys().encrypt(t) for t in (
        "¿Dónde puedo pedir cita para el pasaporte?", "Dicen que en la frontera regalan visas, ¿es cierto?",
        "Gracias por la información", "Necesito ayuda con mi familia", "Me cobraron por un trabajo falso",
        "Escuché que cierran la frontera el lunes")]
    topic_ids = [r[0] for r in db.session.execute(sa.text("SELECT id FROM feedback_topic ORDER BY position"))]
    t = "(m.id % 6)"
    ftype = (f"CASE WHEN m.id % 10 < 3 THEN NULL ELSE (CASE {t} WHEN 0 THEN 'question' WHEN 1 THEN 'observation' "
             f"WHEN 2 THEN 'praise' WHEN 3 THEN 'request' WHEN 4 THEN 'concern' ELSE 'observation' END) END")
    text_case = "CASE " + " ".join(f"WHEN {t} = {n} THEN :t{n}" for n in range(6)) + " END"
    topic = f"CASE WHEN m.id % 10 < 3 THEN NULL ELSE {topic_ids[0]} + (m.id % {len(topic_ids)}) END"
    db.session.execute(sa.text(
        "INSERT INTO feedback_item (source, inbound_message_id, contact_id, text, country, language, channel, "
        "campaign_id, step_id, received_at, suggested_sensitive, type, topic_id, sensitive, criticality, status, "
        "loop_action, updated_at) "
        f"SELECT 'message', m.id, m.contact_id, {text_case}, m.country, m.language, m.channel, m.campaign_id, "
        f"m.step_id, m.received_at, false, {ftype}, {topic}, {t} = 4, 'none', "
        f"CASE WHEN m.id % 10 < 3 THEN 'new' ELSE 'under_review' END, '', m.received_at "
        "FROM inbound_message m WHERE m.kind = 'feedback' ORDER BY m.id LIMIT 30000"),
        {f"t{n}": v for n, v in enumerate(texts)})
    if q.pg:  # explicit ids: move the sequences past them
        for table in ("contact", "outbound_message", "inbound_message"):
            db.session.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                       f"(SELECT max(id) FROM {table}))"))
    db.session.commit()
    return {"campaign_id": cid, "poll_id": poll_id, "people": people}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--outbound", type=int, default=None, help="default 1,000,000 on PostgreSQL, 100,000 on SQLite")
    ap.add_argument("--inbound", type=int, default=None, help="default 200,000 on PostgreSQL, 20,000 on SQLite")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--explain", action="store_true", help="PostgreSQL: print EXPLAIN ANALYZE of the funnel query")
    args = ap.parse_args()
    app, _tmp = bench_app(args.database_url)

    import sqlalchemy as sa

    from whp_c4d.extensions import db

    with app.app_context():
        pg = db.engine.dialect.name == "postgresql"
        outbound = args.outbound or (1_000_000 if pg else 100_000)
        inbound = args.inbound or (200_000 if pg else 20_000)
        t0 = time.perf_counter()
        ids = seed(outbound, inbound)
        seeded = time.perf_counter() - t0
        if pg:
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE"))
        print(f"{db.engine.dialect.name}: {outbound:,} outbound, {inbound:,} inbound, {ids['people']:,} contacts "
              f"seeded in {seeded:.1f} s (+ VACUUM ANALYZE {time.perf_counter() - t0 - seeded:.1f} s)", flush=True)

        from whp_c4d.auth import services as auth
        from whp_c4d.reports import queries, rollup
        from whp_c4d.reports.filters import ReportFilters
        from whp_c4d.reports.models import ReportRollup

        evaluator = auth.create_user("evaluator@example.org", "Bench evaluator", "evaluator",
                                     password="bench-password-0123", ui_language="en")
        _row, secret = auth.create_api_token(evaluator, "bench")
        api_headers = {"Authorization": f"Bearer {secret}"}
        db.session.commit()
        cid = ids["campaign_id"]
        f = ReportFilters(campaign_id=cid)
        timings = []

        def timed(label: str, fn, before=None) -> object:
            runs, result = [], None
            for _ in range(args.repeat):
                db.session.rollback()
                if before:
                    before()
                t = time.perf_counter()
                result = fn()
                runs.append(time.perf_counter() - t)
            timings.append((label, min(runs)))
            print(f"{label:<58} {min(runs) * 1000:8.0f} ms  [{', '.join(f'{r * 1000:.0f}' for r in runs)}]",
                  flush=True)
            return result

        def drop_rollup() -> None:
            db.session.execute(sa.delete(ReportRollup))
            db.session.commit()

        def build() -> None:
            rollup.compute(cid)
            db.session.commit()

        timed("rollup: count the campaign's outbox and people (cold)", build)
        report = timed("funnel from the rollup, 5 breakdowns", lambda: queries.engagement(f, queries.CAMPAIGN_DIMENSIONS))
        timed("funnel, country=GT (people counted live)",
              lambda: queries.engagement(ReportFilters(campaign_id=cid, country="GT"), queries.CAMPAIGN_DIMENSIONS))
        timed("poll results (1 poll step)", lambda: queries.polls(f))
        timed("feedback by type, topic, country, month; rumours", lambda: queries.feedback(f, evaluator))
        timed("cost (from the funnel's rows)", lambda: queries.cost(f, report))

        client = app.test_client()
        token = auth.open_session(evaluator)
        db.session.commit()
        with client.session_transaction() as sess:
            sess["_user_id"], sess["_fresh"] = token, True

        def get(url: str):
            def run() -> int:
                r = client.get(url)
                assert r.status_code == 200, (url, r.status_code)
                return len(r.data)
            return run

        page = f"/reports/campaigns/{cid}"
        size = timed(f"GET {page} (evaluator)", get(page))
        timed(f"GET {page}?country=GT", get(page + "?country=GT"))
        timed(f"GET {page} without a rollup (cold)", get(page), before=drop_rollup)
        timed("GET /reports (all campaigns, by campaign)", get("/reports"))
        timed(f"GET /api/v1/reports/funnel?campaign={cid}&by=step", lambda: client.get(
            f"/api/v1/reports/funnel?campaign={cid}&by=step", headers=api_headers).status_code)
        timed(f"GET {page}.csv (export, audited)", get(page + ".csv"))
        t = report.total
        print(f"check: targeted {t.targeted:,}, sent {t.sent:,}, delivered {t.delivered:,}, read {t.read:,}, "
              f"replied {t.replied:,} people, opted out {t.opted_out:,} people, failed {t.failed:,}; "
              f"page {size:,} bytes")
        if pg and args.explain:
            with db.engine.connect() as conn:
                for line in conn.execute(sa.text("EXPLAIN (ANALYZE, BUFFERS) " + _funnel_sql(cid))):
                    print(line[0])


def _funnel_sql(campaign_id: int) -> str:
    """The rollup's pass over the outbox, with its parameters inlined."""
    from sqlalchemy.dialects import postgresql

    from whp_c4d.messaging.models import OutboundMessage
    from whp_c4d.reports import facts

    captured = []

    def grab(_conn, _cursor, statement, _parameters, context, _executemany):
        if "FROM outbound_message" in statement and "GROUP BY" in statement and not captured:
            captured.append(context.compiled)

    import sqlalchemy as sa

    from whp_c4d.extensions import db

    sa.event.listen(db.engine, "before_cursor_execute", grab)
    try:
        facts.outbound_rows(OutboundMessage.campaign_id == campaign_id)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", grab)
    return str(captured[0].statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


if __name__ == "__main__":
    main()
