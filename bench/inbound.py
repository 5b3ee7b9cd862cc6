"""Inbound webhooks per second the web app absorbs under gunicorn (`POST /twilio/messages`), side by
side with a bare Flask handler that only answers empty TwiML (bench/bare_twiml.py) on the same server.

    python bench/inbound.py --messages 4000 --workers 2 --clients 16
    python bench/inbound.py --messages 4000 --database-url postgresql+psycopg://postgres@127.0.0.1/c4d_bench_in

The database is migrated and filled with N fictional contacts (numbers encrypted, SMS consent), then
both servers get the same stream of signed webhooks, as Twilio signs them against C4D_PUBLIC_URL:
free-text feedback (acknowledged once a day), keywords (AYUDA, ¿ES REAL?), first messages from numbers
we do not know (a new contact and a welcome each), and 5 % retries of a MessageSid already sent (Twilio
retries: stored once). Every inbound message is stored and understood inside the request, and answers
are queued in the outbox. Reports messages/s, latency p50/p99 and the ratio to the bare handler, then
checks the end state: one row per MessageSid, all processed, every answer queued. The client shares
the 2-core machine with the server; its CPU time is reported.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from callbacks import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, ROOT, fire, gunicorn, proc_cpu  # noqa: E402
from common import BENCH_CONFIG, bench_app, bulk_contacts  # noqa: E402

TEXTS = ["Hola, ¿dónde puedo informarme sobre visas de trabajo?", "Gracias por la información",
         "¿Cuánto cuesta el trámite?", "Me ofrecieron trabajo en otro país, ¿es confiable?",
         "Bonjou, mwen bezwen enfòmasyon", "¿Qué documentos necesito?"]


def stream(n: int, contacts: int, rng: random.Random):
    """(MessageSid, From, Body) in firing order, and the number of distinct SIDs."""
    out, sids = [], []
    unknown = 0
    for i in range(1, n + 1):
        r = rng.random()
        if r < 0.05 and sids:
            out.append(rng.choice(sids))  # a retry of a message already sent
            continue
        sid = f"SM{i:032x}"
        if r < 0.15:
            unknown += 1
            sender, body = f"+50255{900000 + unknown:06d}", rng.choice(TEXTS)  # a number we do not know
        else:
            sender = f"+50255{rng.randint(1, contacts):06d}"
            body = rng.choice(TEXTS) if r < 0.85 else rng.choice(["AYUDA", "¿Es real?", "ayuda"])
        out.append((sid, sender, body))
        sids.append(out[-1])
    return out, len(sids)


def sign(messages, validator):
    requests = []
    for sid, sender, body in messages:
        form = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": ACCOUNT_SID,
                "From": sender, "To": "+15550100", "Body": body, "NumMedia": "0", "NumSegments": "1",
                "SmsStatus": "received", "ApiVersion": "2010-04-01", "FromCountry": "GT"}
        path = "/twilio/messages"
        requests.append((path, urlencode(form), validator.compute_signature(PUBLIC_URL + path, form)))
    return requests


def run(env, workers, clients, requests, log_path, app="wsgi:app", cwd=ROOT):
    with gunicorn(env, workers, log_path, app=app, cwd=cwd) as (port, pids):
        cpu0 = {p: proc_cpu(p) for p in pids}
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        load0 = os.getloadavg()[0]
        elapsed, latencies, errors = fire(port, requests, clients)
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = sum(proc_cpu(p) - cpu0[p] for p in pids)
    client_cpu = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
    return {"elapsed": elapsed, "latencies": latencies, "errors": errors, "server_cpu": server_cpu,
            "client_cpu": client_cpu, "load": (load0, os.getloadavg()[0])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=4000)
    ap.add_argument("--contacts", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    ap.add_argument("--clients", type=int, default=16, help="client threads (one connection each)")
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    app, tmp = bench_app(args.database_url)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    env = dict(os.environ, DATABASE_URL=url, **BENCH_CONFIG, TWILIO_ACCOUNT_SID=ACCOUNT_SID,
               TWILIO_AUTH_TOKEN=AUTH_TOKEN, C4D_PUBLIC_URL=PUBLIC_URL, TWILIO_API_BASE="http://127.0.0.1:9",
               C4D_INSTANCE_PATH=tmp)

    import sqlalchemy as sa
    from twilio.request_validator import RequestValidator

    from whp_c4d.extensions import db

    with app.app_context():
        from whp_c4d.audience.models import Contact
        from whp_c4d.inbound.models import InboundMessage
        from whp_c4d.messaging.models import OutboundMessage

        bulk_contacts(args.contacts)  # contacts 1..N at +50255000001…, SMS consent
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("ANALYZE"))
            db.session.commit()
        dialect = db.engine.dialect.name
        db.session.remove()
        db.engine.dispose()

    messages, distinct = stream(args.messages, args.contacts, random.Random(5))
    requests = sign(messages, RequestValidator(AUTH_TOKEN))
    bare = run(env, args.workers, args.clients, requests, Path(tmp) / "bare.log", app="bare_twiml:app",
               cwd=Path(__file__).resolve().parent)
    ours = run(env, args.workers, args.clients, requests, Path(tmp) / "gunicorn.log")

    with app.app_context():
        stored = db.session.scalar(sa.select(sa.func.count()).select_from(InboundMessage))
        processed = db.session.scalar(sa.select(sa.func.count()).select_from(InboundMessage).where(
            InboundMessage.status == "processed"))
        kinds = dict(db.session.execute(sa.select(InboundMessage.kind, sa.func.count())
                                        .group_by(InboundMessage.kind)).all())
        answers = dict(db.session.execute(
            sa.select(sa.func.substr(OutboundMessage.occurrence, sa.func.instr(OutboundMessage.occurrence, ":") + 1)
                      if dialect == "sqlite" else sa.func.split_part(OutboundMessage.occurrence, ":", 2),
                      sa.func.count()).where(OutboundMessage.purpose == "reply").group_by(sa.literal_column("1"))).all())
        new_contacts = db.session.scalar(sa.select(sa.func.count()).select_from(Contact).where(
            Contact.status == "inbound_only"))
        db.session.remove()
        db.engine.dispose()

    def line(name, r):
        lat = r["latencies"]
        pct = lambda q: lat[min(len(lat) - 1, int(len(lat) * q))] * 1000  # noqa: E731
        rate = len(requests) / r["elapsed"]
        print(f"  {name:<34} {rate:>7,.0f}/s  p50 {pct(0.5):6.1f} ms  p99 {pct(0.99):6.1f} ms  errors {len(r['errors'])}"
              f"  CPU server {r['server_cpu']:.1f} s, client {r['client_cpu']:.1f} s; load {r['load'][0]:.1f}->{r['load'][1]:.1f}")
        return rate

    print(f"{dialect}: {len(requests)} webhooks ({distinct} distinct MessageSids, the rest Twilio retries), "
          f"gunicorn -w {args.workers} (sync), {args.clients} client threads")
    base = line("bare Flask, empty TwiML", bare)
    rate = line("POST /twilio/messages (store+answer)", ours)
    print(f"  our processing runs at {rate / base:.0%} of the bare handler's rate")
    for e in (bare["errors"] + ours["errors"])[:5]:
        print(f"    {e}")
    print(f"  end state: {stored} stored ({processed} processed), kinds {kinds}; {new_contacts} new inbound-only "
          f"contacts; answers queued {answers}")
    ok = not ours["errors"] and stored == distinct == processed
    print(f"  check: {'OK' if ok else 'FAILED'}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
