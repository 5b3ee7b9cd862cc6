"""Status callbacks per second the web app absorbs under gunicorn (`POST /twilio/status?m=<id>`).

    python bench/callbacks.py --messages 5000 --workers 2 --clients 16
    python bench/callbacks.py --messages 5000 --database-url postgresql+psycopg://postgres@127.0.0.1/c4d_bench_cb
    python bench/callbacks.py --messages 2000 --lag 0        # sent and delivered of a message at the same moment

The database is migrated and filled here with N outbound messages (status queued, provider SID set, as
after a send), then `gunicorn -w W wsgi:app` starts on a free port with the same database and keys in its
environment (no scheduler or dispatcher: `create_app` never starts them; pending canary rows check it).
A pool of client threads (one keep-alive `http.client` connection each; gunicorn's sync workers close
after every response, so the connection reopens) fires callbacks signed as Twilio signs them, against
C4D_PUBLIC_URL + path + query:

* every message gets `sent` then, `--lag` messages later in the stream, `delivered`;
* `--out-of-order` of them get `delivered` first and `sent` afterwards (late: kept, not applied);
* `--duplicates` of them get a second `delivered`, half right after the first (in flight at the same
  time, as Twilio's retries can be), half later.

Signatures are computed before the clock starts. The client shares this 2-core machine with the
workers: its CPU time is reported next to theirs. Reports callbacks/s, latency p50/p99, non-2xx count
(must be 0), and the end state read back from the database (every message delivered, one event per
callback, applied events as expected).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import resource
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from common import BENCH_CONFIG, bench_app  # noqa: E402

PUBLIC_URL = "https://c4d.example.org"  # what Twilio called; the signature covers it, not the local address
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "2" * 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@contextlib.contextmanager
def gunicorn(env: dict, workers: int, log_path: Path, app: str = "wsgi:app", cwd: Path = ROOT):
    """``gunicorn -w workers app`` on a free port, waited for until every worker answers; yields the
    port and the workers' pids, and stops it afterwards."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "--error-logfile", str(log_path), app], cwd=cwd, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:  # every worker up: /healthz answers on enough fresh connections
            try:
                ok = 0
                for _ in range(20 * workers):
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    c.request("GET", "/healthz")
                    ok += c.getresponse().status == 200
                    c.close()
                if ok == 20 * workers and len(children(server.pid)) >= workers:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"gunicorn did not start; see {log_path}")
            time.sleep(0.2)
        yield port, children(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def build_events(n: int, lag: int, duplicates: float, out_of_order: float, rng: random.Random):
    """(message id, Twilio status) in the order they are fired, and how many should be applied."""
    keyed = []
    applied = 0
    for i in range(1, n + 1):
        first, second = ("delivered", "sent") if rng.random() < out_of_order else ("sent", "delivered")
        applied += 2 if first == "sent" else 1
        keyed.append((i, 0, i, first))
        keyed.append((i + lag, 1, i, second))
        if rng.random() < duplicates:
            if rng.random() < 0.5:  # right behind the first delivered: both in flight together
                keyed.append((i + (lag if second == "delivered" else 0), 2, i, "delivered"))
            else:
                keyed.append((i + lag + rng.randint(1, 2 * lag + 50), 3, i, "delivered"))
    keyed.sort()
    return [(m, status) for _, _, m, status in keyed], applied


def sign(events, validator):
    out = []
    for m, status in events:
        sid = f"SM{m:032x}"
        form = {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "From": "+12025550100",
                "To": f"+1202555{m % 10000:04d}", "MessageSid": sid, "SmsSid": sid, "MessageStatus": status,
                "SmsStatus": status}
        path = f"/twilio/status?m={m}"
        body = urlencode(form)
        out.append((path, body, validator.compute_signature(PUBLIC_URL + path, form)))
    return out


def fire(port: int, requests, clients: int):
    """Send all requests from `clients` threads pulling from one shared cursor; return latencies, errors."""
    lock = threading.Lock()
    cursor = iter(range(len(requests)))
    latencies: list[float] = []
    errors: list[str] = []

    def run():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        local_lat = []
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            path, body, signature = requests[i]
            t = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers={
                    "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature,
                    "User-Agent": "TwilioProxy/1.1"})
                reply = conn.getresponse()
                data = reply.read()
                if not 200 <= reply.status < 300:
                    with lock:
                        errors.append(f"{reply.status} {path} {data[:200]!r}")
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc} ({path})")
            local_lat.append(time.perf_counter() - t)
        conn.close()
        with lock:
            latencies.extend(local_lat)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, sorted(latencies), errors


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    ap.add_argument("--clients", type=int, default=16, help="client threads (one connection each)")
    ap.add_argument("--lag", type=int, default=100, help="messages between a message's two callbacks")
    ap.add_argument("--duplicates", type=float, default=0.1)
    ap.add_argument("--out-of-order", type=float, default=0.1)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    app, tmp = bench_app(args.database_url)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    env = dict(os.environ, DATABASE_URL=url, **BENCH_CONFIG,
               TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, C4D_PUBLIC_URL=PUBLIC_URL,
               C4D_SIMULATOR="0", TWILIO_API_BASE="http://127.0.0.1:9", C4D_INSTANCE_PATH=tmp)

    import sqlalchemy as sa
    from twilio.request_validator import RequestValidator

    from whp_c4d.extensions import db

    canaries = 10
    with app.app_context():
        from whp_c4d.audience.models import Contact
        from whp_c4d.messaging.models import MessageEvent, OutboundMessage

        now = datetime.now(UTC)
        contacts, rows = [], []
        for i in range(1, args.messages + canaries + 1):
            contacts.append({"id": i, "pseudonym": f"B{i:09d}", "status": "active", "language": "es",
                             "country": "GT", "timezone": "America/Guatemala", "created_at": now})
            canary = i > args.messages  # due now and pending: a dispatcher in the workers would claim them
            rows.append({"id": i, "contact_id": i, "campaign_id": 1, "step_id": 1, "occurrence": "bench",
                         "language": "es", "channel": "sms", "purpose": "campaigns", "country": "GT",
                         "body": "Hola", "segments": 1, "earliest_at": now - timedelta(minutes=1),
                         "status": "pending" if canary else "queued", "attempts": 0 if canary else 1,
                         "provider_sid": None if canary else f"SM{i:032x}", "sent_channel": None if canary else "sms",
                         "sent_at": None if canary else now, "created_at": now, "updated_at": now,
                         "template_variables": {}})
        for start in range(0, len(rows), 20000):
            db.session.execute(sa.insert(Contact), contacts[start:start + 20000])
            db.session.execute(sa.insert(OutboundMessage), rows[start:start + 20000])
        db.session.commit()
        dialect = db.engine.dialect.name
        db.session.remove()
        db.engine.dispose()

    events, expected_applied = build_events(args.messages, args.lag, args.duplicates, args.out_of_order,
                                            random.Random(11))
    requests = sign(events, RequestValidator(AUTH_TOKEN))

    log_path = Path(tmp) / "gunicorn.log"
    with gunicorn(env, args.workers, log_path) as (port, workers):
        cpu0 = {p: proc_cpu(p) for p in workers}
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        load0 = os.getloadavg()[0]
        elapsed, latencies, errors = fire(port, requests, args.clients)
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = sum(proc_cpu(p) - cpu0[p] for p in workers)
        client_cpu = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
        load1 = os.getloadavg()[0]

    with app.app_context():
        statuses = dict(db.session.execute(sa.select(OutboundMessage.status, sa.func.count()).where(
            OutboundMessage.id <= args.messages).group_by(OutboundMessage.status)).all())
        canary_statuses = dict(db.session.execute(sa.select(OutboundMessage.status, sa.func.count()).where(
            OutboundMessage.id > args.messages).group_by(OutboundMessage.status)).all())
        n_events = db.session.scalar(sa.select(sa.func.count()).select_from(MessageEvent))
        n_applied = db.session.scalar(sa.select(sa.func.count()).select_from(MessageEvent).where(
            MessageEvent.applied.is_(True)))
        twice = db.session.scalar(sa.select(sa.func.count()).select_from(  # one status applied twice
            sa.select(MessageEvent.message_id).where(MessageEvent.applied.is_(True)).group_by(
                MessageEvent.message_id, MessageEvent.status).having(sa.func.count() > 1).subquery()))
        db.session.remove()
        db.engine.dispose()

    n = len(requests)
    pct = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000  # noqa: E731
    print(f"{dialect}: {args.messages} messages, {n} callbacks ({n - 2 * args.messages} duplicates; "
          f"{args.out_of_order:.0%} out of order; lag {args.lag}), gunicorn -w {args.workers} (sync), "
          f"{args.clients} client threads")
    print(f"  {n / elapsed:,.0f} callbacks/s ({n} in {elapsed:.1f} s); latency p50 {pct(0.50):.1f} ms, "
          f"p99 {pct(0.99):.1f} ms, max {latencies[-1] * 1000:.0f} ms")
    print(f"  non-2xx or failed: {len(errors)}")
    for e in errors[:5]:
        print(f"    {e}")
    print(f"  CPU during the run: workers {server_cpu:.1f} s, client {client_cpu:.1f} s "
          f"(of {2 * elapsed:.1f} core-seconds on 2 cores); load average {load0:.1f} -> {load1:.1f}")
    all_delivered = statuses == {"delivered": args.messages}
    print(f"  end state: {statuses} ({'all delivered' if all_delivered else 'NOT all delivered'}); "
          f"canaries {canary_statuses} ({'untouched' if canary_statuses == {'pending': canaries} else 'TOUCHED'})")
    print(f"  events logged {n_events} (callbacks {n}); marked applied {n_applied} (expected {expected_applied}; "
          f"{twice} messages with the same status marked applied twice: concurrent duplicates)")
    log_text = log_path.read_text() if log_path.exists() else ""
    problems = [line for line in log_text.splitlines() if "Error" in line or "locked" in line]
    if problems:
        print(f"  gunicorn log ({log_path}): {len(problems)} error lines, e.g.")
        for line in problems[:5]:
            print(f"    {line[:200]}")
    # The applied flags are reported, not checked: two copies of one report in flight at once can both
    # read the old status and both be marked applied (the message's status itself ends right).
    ok = not errors and all_delivered and n_events == n and canary_statuses == {"pending": canaries}
    print(f"  check: {'OK' if ok else 'FAILED'}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
