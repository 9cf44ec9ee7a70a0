"""Check-in server benchmark: online check-ins per second from 20 scanner clients, and syncing 10,000 offline scans.

    .venv/bin/python -m bench.checkin_server            # 5 rounds, 20 clients x 40 scans per round
    .venv/bin/python -m bench.checkin_server --quick    # 2 rounds, 20 clients x 10 scans

Uses ``DATABASE_URL`` / ``REDIS_URL`` when set, else the embedded servers under ``instance/bench``;
(re)creates its own database (``--database``, default ``bilten_bench_checkin``) and drops it at the
end. The app runs under gunicorn (``wsgi:app``, ``--workers`` processes of 8 threads), as in
production. One tenant, one event of free tickets (all sold beforehand), one gate, 20 paired devices.

* ``check-in``: each of 20 clients (a thread with its own keep-alive connection and device token)
  posts ``/api/v1/scanner/check-ins`` for tickets never scanned before: the device is authenticated,
  the code's signature and window checked, the ticket's row locked, the admission and the scan log
  written and committed. Every answer must be ``admitted``.
* ``noop``: the same 20 clients on ``GET /healthz`` of the same server (host check, middleware, JSON).
  The two are interleaved round by round, alternating which goes first.
* ``sync``: one device uploads 10,000 offline admissions of other tickets through
  ``/api/v1/scanner/sync`` in batches of 500, as the scanner app sends them; the wall time of all
  of it, and then the same batches again, which must add nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.webhooks import server_urls
from bilten_core.config import PROJECT_ROOT, load_settings
from bilten_core.dbadmin import drop_database, recreate_database

CLIENTS = 20
SYNC_SCANS = 10_000
SYNC_BATCH = 500  # what the scanner app sends at a time
TICKETS_PER_ORDER = 100


def prepare(app: Any, tickets: int) -> tuple[Any, str, list[str], list[tuple[str, str]]]:
    """A tenant with ``tickets`` sold free tickets and their codes, one gate, and 21 paired devices (id, token)."""
    from bilten_core.db import db
    from bilten_core.migrations import app_migrator
    from bilten_core.tenancy.context import tenant_context
    from bilten_core.tenant_settings import update_settings
    from plugins.scanner import devices, gates
    from plugins.scanner.keys import ticket_code
    from plugins.ticketing import checkout, events, reservations
    from tenants.service import create_tenant

    with app.app_context():
        app_migrator().upgrade_shared()
        tenant = create_tenant("checkin-bench", "Check-in benchmark")
        with tenant_context(tenant), app.test_request_context(base_url=f"http://{tenant.primary_domain}"):
            update_settings("scanner", {"check_ins_per_minute": 6000})
            starts = datetime.now(UTC) + timedelta(hours=1)
            event = events.create_event({"title": "Check-in benchmark", "timezone": "UTC",
                                         "starts_at": starts, "ends_at": starts + timedelta(hours=6)})
            ticket_type = events.save_ticket_type(event, {"name": "Entry", "kind": "free", "price_minor": 0,
                                                          "max_per_order": TICKETS_PER_ORDER})
            events.save_quota(event, {"name": "Hall", "size": tickets, "ticket_type_ids": [ticket_type.id]})
            events.transition(event, "published")
            db.session.commit()
            codes: list[str] = []
            for start in range(0, tickets, TICKETS_PER_ORDER):
                quantity = min(TICKETS_PER_ORDER, tickets - start)
                reservation = reservations.create_reservation([reservations.Item(ticket_type.id, quantity)])
                db.session.commit()
                order, _created = checkout.place_order(reservation.id, f"guest{start}@example.org", "Guest")
                codes.extend(ticket_code(ticket) for ticket in order.tickets)
                print(f"preparing tickets: {len(codes)}/{tickets}", file=sys.stderr)
            gate = gates.save_gate(event, {"name": "Main door"})
            tokens = []
            for number in range(CLIENTS + 1):
                _pairing, text = devices.create_pairing_code(f"Scanner {number}", [event.id], [])
                db.session.commit()
                device, token = devices.pair(text)
                db.session.commit()
                tokens.append((str(device.id), token))
            return tenant, str(gate.id), codes, tokens


def gunicorn(env: dict[str, str], workers: int) -> tuple[subprocess.Popen[bytes], int]:
    from bilten_core.testing import free_port

    port = free_port()
    server = subprocess.Popen(  # noqa: S603 (a fixed command line)
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--worker-class", "gthread", "--threads", "8", "--log-level", "warning", "wsgi:app"],
        cwd=PROJECT_ROOT, env={**os.environ, **env},
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                return server, port
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("gunicorn did not come up") from None
            time.sleep(0.2)


class Client:
    """One scanner: a keep-alive connection and a device token."""

    def __init__(self, port: int, host: str, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Host": host, "Authorization": f"Device {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        self.connection.request(method, path, body=json.dumps(body) if body is not None else None,
                                headers=self.headers)
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status} from {path}: {payload[:300]!r}")
        answer: dict[str, Any] = json.loads(payload)
        return answer


def run_clients(clients: list[Client], work: list[list[Any]], step: Any) -> float:
    """Every client does its share of ``work`` at once; returns requests per second over all of them."""
    start = threading.Barrier(len(clients) + 1)
    failures: list[BaseException] = []

    def drive(client: Client, items: list[Any]) -> None:
        start.wait()
        try:
            for item in items:
                step(client, item)
        except BaseException as exc:  # reported below: a thread's failure must fail the benchmark
            failures.append(exc)

    threads = [threading.Thread(target=drive, args=(c, w)) for c, w in zip(clients, work, strict=True)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise SystemExit(f"a client failed: {failures[0]}")
    return sum(len(items) for items in work) / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.checkin_server", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scans", type=int, default=40, help="check-ins per client and round")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 rounds of 10 scans per client")
    parser.add_argument("--database", default="bilten_bench_checkin", help="database to (re)create on the server")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.scans = min(args.rounds, 2), min(args.scans, 10)

    server_url, redis_url, embedded = server_urls()
    database_url = recreate_database(server_url, args.database)
    settings = load_settings(database_url=database_url, redis_url=redis_url,
                             instance_path=tempfile.mkdtemp(prefix="bilten-bench-"), log_level="WARNING")
    from bilten_core.app import create_app

    app = create_app(settings)
    online = args.rounds * CLIENTS * args.scans
    try:
        tenant, gate_id, codes, tokens = prepare(app, online + SYNC_SCANS)
        with app.app_context():
            from bilten_core.db import db

            db.engine.dispose()
        server, port = gunicorn({"DATABASE_URL": database_url, "REDIS_URL": redis_url,
                                 "BILTEN_ENV": "development", "BILTEN_LOGGING__LEVEL": "WARNING"}, args.workers)
        try:
            figures = measure(port, tenant.primary_domain, gate_id, codes, tokens, args)
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        drop_database(database_url)
        del embedded
    report(figures, args)


def measure(port: int, host: str, gate_id: str, codes: list[str], tokens: list[tuple[str, str]],
            args: argparse.Namespace) -> dict[str, Any]:
    clients = [Client(port, host, token) for _device_id, token in tokens[:CLIENTS]]
    online_codes = iter(codes[: args.rounds * CLIENTS * args.scans])

    def check_in(client: Client, code: str) -> None:
        answer = client.call("POST", "/api/v1/scanner/check-ins", {
            "code": code, "gate_id": gate_id, "nonce": uuid.uuid4().hex,
            "scanned_at": datetime.now(UTC).isoformat(), "direction": "in",
        })
        if answer["result"] != "admitted":
            raise RuntimeError(f"not admitted: {answer}")

    def noop(client: Client, _item: int) -> None:
        client.call("GET", "/healthz")

    rates: dict[str, list[float]] = {"check-in": [], "noop": []}
    for round_number in range(args.rounds):
        print(f"round {round_number + 1}/{args.rounds} ...", file=sys.stderr)
        batch = [[next(online_codes) for _ in range(args.scans)] for _ in range(CLIENTS)]
        steps = [("check-in", check_in, batch), ("noop", noop, [list(range(args.scans))] * CLIENTS)]
        for name, step, work in steps if round_number % 2 == 0 else reversed(steps):
            rates[name].append(run_clients(clients, work, step))

    device_id, token = tokens[CLIENTS]
    syncer = Client(port, host, token)
    offline = [{"nonce": uuid.uuid4().hex, "code": code, "gate_id": gate_id, "direction": "in",
                "scanned_at": datetime.now(UTC).isoformat(), "local_result": "admitted"}
               for code in codes[len(codes) - SYNC_SCANS:]]
    size = SYNC_BATCH
    began = time.perf_counter()
    accepted = 0
    for start in range(0, len(offline), size):
        answer = syncer.call("POST", "/api/v1/scanner/sync", {"device_id": device_id,
                                                              "check_ins": offline[start:start + size]})
        accepted += int(answer["accepted"])
    first = time.perf_counter() - began
    began = time.perf_counter()
    again = 0
    for start in range(0, len(offline), size):
        answer = syncer.call("POST", "/api/v1/scanner/sync", {"device_id": device_id,
                                                              "check_ins": offline[start:start + size]})
        again += int(answer["accepted"])
    repeat = time.perf_counter() - began
    return {"rates": rates, "sync_seconds": first, "sync_accepted": accepted, "resync_seconds": repeat,
            "resync_accepted": again}


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    rates = figures["rates"]
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(f"Bilten check-in server benchmark: gunicorn {args.workers} workers x 8 threads, {os.cpu_count()} CPUs, "
          f"{CLIENTS} scanner clients, {args.rounds} rounds of {args.scans} scans per client")
    print("                      requests/s (median; fastest round)   ÷ noop")
    for name in ("noop", "check-in"):
        print(f"  {name:<18} {medians[name]:>10.0f} ; {max(rates[name]):>8.0f}"
              f"                   {medians[name] / medians['noop']:>6.3f}")
    print(f"  sync of {SYNC_SCANS:,} offline scans: {figures['sync_seconds']:.2f} s "
          f"({figures['sync_accepted']:,} accepted); the same batches again: {figures['resync_seconds']:.2f} s "
          f"({figures['resync_accepted']} accepted, must be 0)")


if __name__ == "__main__":
    main()
