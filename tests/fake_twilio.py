"""A minimal in-memory Twilio Messages API for load tests and benchmarks, run as its own process.

    python tests/fake_twilio.py [--latency-ms 150]      # prints "port N" once it listens

The built-in simulator is the product's fake (database-backed, with callbacks and a phone screen);
this one only answers create, fetch and list (filtered by ``To`` and ``DateSent>``) as fast as
possible with the same JSON shapes, so that thousands of messages test the dispatcher, not the fake.
``GET /_stats`` returns the arrival time of every create (monotonic clock, shared by processes on one
machine), when each number's first message arrived, and how many messages each number received;
``GET /_count?to=N`` only how many arrived and when N's first did (cheap enough to poll during a run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

MESSAGES = re.compile(r"^/2010-04-01/Accounts/(AC\w+)/Messages\.json$")
ONE = re.compile(r"^/2010-04-01/Accounts/(AC\w+)/Messages/(\w+)\.json$")


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a burst of new connections must not be reset

    def __init__(self, address, latency: float):
        super().__init__(address, Handler)
        self.latency = latency
        self.lock = threading.Lock()
        self.messages: dict[str, dict] = {}
        self.by_to: dict[str, list[dict]] = {}
        self.stamps: list[float] = []
        self.first: dict[str, float] = {}  # number -> when its first message arrived

    def handle_error(self, request, client_address):
        pass  # a client killed mid-request (the point of some tests) is not news


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Twilio: the SDK's sessions reuse connections
    server: FakeServer

    def _reply(self, status: int, payload) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        fields = parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
        arrived = time.monotonic()  # what a cap counts: requests as they arrive
        match = MESSAGES.match(urlsplit(self.path).path)
        if not match:
            return self._reply(404, {"code": 20404, "message": "not found", "status": 404})
        if self.server.latency:
            time.sleep(self.server.latency)
        with self.server.lock:
            n = len(self.server.messages) + 1
            message = {"sid": f"SM{n:032x}", "account_sid": match.group(1), "to": fields["To"][0],
                       "from": fields.get("From", [None])[0], "body": fields.get("Body", [""])[0],
                       "messaging_service_sid": fields.get("MessagingServiceSid", [None])[0],
                       "status": "queued", "num_segments": "1", "num_media": "0", "direction": "outbound-api",
                       "error_code": None, "error_message": None, "price": None, "price_unit": "USD",
                       "date_created": format_datetime(datetime.now(UTC)), "date_sent": None,
                       "date_updated": None, "api_version": "2010-04-01"}
            self.server.messages[message["sid"]] = message
            self.server.by_to.setdefault(message["to"], []).append(message)
            self.server.stamps.append(arrived)
            self.server.first.setdefault(message["to"], arrived)
        self._reply(201, message)

    def do_GET(self):  # noqa: N802
        url = urlsplit(self.path)
        if url.path == "/_count":  # cheap, for polling while a run goes on: how many, and one number's first
            to = parse_qs(url.query).get("to", [None])[0]
            with self.server.lock:
                return self._reply(200, {"count": len(self.server.stamps), "first": self.server.first.get(to)})
        if url.path == "/_stats":
            with self.server.lock:
                return self._reply(200, {"stamps": self.server.stamps, "first": self.server.first,
                                         "per_to": Counter({to: len(m) for to, m in self.server.by_to.items()})})
        if match := ONE.match(url.path):
            message = self.server.messages.get(match.group(2))
            if message is None:
                return self._reply(404, {"code": 20404, "message": "The requested resource was not found",
                                         "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404})
            return self._reply(200, message)
        if MESSAGES.match(url.path):
            query = parse_qs(url.query)
            to = query.get("To", [None])[0]
            after = query.get("DateSent>", [None])[0]
            with self.server.lock:
                found = list(self.server.by_to.get(to, [])) if to else list(self.server.messages.values())
            if after:
                since = datetime.strptime(after[:10], "%Y-%m-%d").replace(tzinfo=UTC)
                found = [m for m in found if parsedate_to_datetime(m["date_created"]) >= since]
            return self._reply(200, {"messages": found, "page": 0, "page_size": len(found) or 50, "start": 0,
                                     "end": max(len(found) - 1, 0), "uri": self.path, "first_page_uri": self.path,
                                     "next_page_uri": None, "previous_page_uri": None})
        return self._reply(404, {"code": 20404, "message": "not found", "status": 404})

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def running(latency_ms: float = 0, *, nice: int = 0):
    """This fake in its own process: yields an object with ``.base`` (for TWILIO_API_BASE) and
    ``.stats()`` (the ``/_stats`` answer). Used by the tests' fixture and by bench/dispatch.py.

    ``nice`` below 0 (root only; ignored otherwise) lets the benchmark give the fake the CPU first: Twilio
    runs on its own machines, and on a 2-core box a starved fake stamps requests late, in bunches, and
    measures our CPU contention instead of our pacing."""

    def priority():
        if nice:
            with contextlib.suppress(PermissionError):
                os.nice(nice)

    proc = subprocess.Popen([sys.executable, __file__, "--latency-ms", str(latency_ms)],
                            stdout=subprocess.PIPE, text=True, preexec_fn=priority)
    try:
        base = f"http://127.0.0.1:{int(proc.stdout.readline().split()[1])}"

        def stats() -> dict:
            with urllib.request.urlopen(base + "/_stats", timeout=30) as reply:
                return json.loads(reply.read())

        def count(to: str = "") -> dict:
            with urllib.request.urlopen(base + "/_count?to=" + urllib.parse.quote(to), timeout=30) as reply:
                return json.loads(reply.read())

        yield SimpleNamespace(base=base, stats=stats, count=count)
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    server = FakeServer(("127.0.0.1", args.port), args.latency_ms / 1000)
    print(f"port {server.server_port}", flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
