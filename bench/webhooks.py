"""Webhook benchmark: Stripe webhooks handled per second, against a no-op endpoint on the same server.

    .venv/bin/python -m bench.webhooks            # 9 rounds of 300 requests per route
    .venv/bin/python -m bench.webhooks --quick    # 3 rounds of 50

Uses ``DATABASE_URL`` / ``REDIS_URL`` when set, else the embedded servers under ``instance/bench``;
(re)creates its own database (``--database``, default ``bilten_bench_webhooks``) and drops it at the
end. The fake Stripe of the test suite (``tests/payments/stripe_fake.py``) runs in this process; the
app runs in another, on a single-threaded Werkzeug server with HTTP/1.1 keep-alive, driven over one
loopback connection, one request at a time. Three routes, interleaved round by round (alternating
which goes first) so that drift in machine load hits them alike:

* ``noop``: ``POST /bench-webhooks/noop`` on the platform host reads the body and answers 200 JSON;
* ``handled``: ``POST /payments/stripe/connect-webhook`` with a new ``account.updated`` each time (a
  new id, one second newer than the last), signed with real HMAC: the signature is checked, the
  event's row inserted, the account's row locked, the account re-fetched from the fake Stripe over
  loopback HTTP and updated, and all of it committed;
* ``duplicate``: an event already handled, delivered again: the signature check and the insert that
  finds the row; no effect;
* ``payment``: a ``checkout.session.completed`` for a different order each time, each paid on the fake's
  hosted page beforehand: the signature is checked, the event's row inserted, the payment attempt and the
  order locked, the session re-fetched from the fake Stripe, the order's places sold, the order paid with
  its history, audit entries and announcements, and all of it committed.

Prints each route's requests per second (the median of its rounds) and the ratios to ``noop``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, jsonify, request
from flask.typing import ResponseReturnValue

from bilten_core import PluginMeta, hookimpl
from bilten_core.config import PROJECT_ROOT, Settings, load_settings
from bilten_core.dbadmin import drop_database, recreate_database

PLUGIN = PluginMeta(title="Webhook benchmark", description="A no-op platform endpoint to compare against.")
CONNECT_SECRET = "whsec_bench0connect0secret"  # noqa: S105 (a made-up secret, known to both sides)
CONNECT_PATH = "/payments/stripe/connect-webhook"
NOOP_PATH = "/bench-webhooks/noop"
PLATFORM_HOST = "localhost"

noop_routes = Blueprint("webhookbench", __name__, url_prefix="/bench-webhooks")


@noop_routes.post("/noop")
def noop() -> ResponseReturnValue:
    """Reads the body and answers, through the same host check, middleware and server as the webhooks."""
    request.get_data()
    return jsonify({"received": True})


@hookimpl
def register_platform_blueprints(app: Any) -> list[Blueprint]:
    return [noop_routes]


def server_urls() -> tuple[str, str, Any]:
    """(database server URL, Redis URL, handles that keep embedded servers alive)."""
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if database_url and redis_url:
        return database_url, redis_url, None
    from bilten_core.embedded import start_embedded

    embedded = start_embedded(PROJECT_ROOT / "instance" / "bench")
    return database_url or embedded.database_url, redis_url or embedded.redis_url, embedded


def bench_app(settings: Settings) -> Flask:
    from bilten_core.app import create_app

    return create_app(settings, extra_plugins=[("webhookbench", sys.modules[__name__])])


def serve(settings: Settings, stripe_env: dict[str, str], ports: Any) -> None:
    """The app's server process: the Stripe settings come from its environment, as in production."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class KeepAliveHandler(WSGIRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    os.environ.update(stripe_env)
    server = make_server("127.0.0.1", 0, bench_app(settings), threaded=False, request_handler=KeepAliveHandler)
    ports.put(server.port)
    server.serve_forever()


def connected_account(app: Flask, stripe: Any) -> tuple[str, Any]:
    """A tenant linked to a new connected account on the fake Stripe that may take charges; returns both."""
    from bilten_core.db import db
    from bilten_core.migrations import app_migrator
    from plugins.payments.accounts import connect_account
    from tenants.service import create_tenant

    account = stripe.v1.accounts.create({"type": "express"})
    with app.app_context():
        app_migrator().upgrade_shared()
        tenant = create_tenant("webhook-bench", "Webhook benchmark")
        connect_account(tenant, account.id).charges_enabled = True
        db.session.commit()
    return str(account.id), tenant


def paid_sessions(app: Flask, tenant: Any, fake: Any, count: int) -> list[dict[str, Any]]:
    """``count`` orders paid by card on the fake's hosted page; their ``checkout.session.completed`` events."""
    from datetime import UTC, datetime, timedelta

    import requests

    from bilten_core.db import db
    from bilten_core.tenancy.context import tenant_context
    from plugins.payments.stripe_checkout import open_session
    from plugins.ticketing import checkout, events, inventory, reservations

    with app.app_context(), tenant_context(tenant):
        starts = datetime.now(UTC) + timedelta(days=30)
        event = events.create_event({"title": "Webhook benchmark", "timezone": "UTC", "starts_at": starts,
                                     "ends_at": starts + timedelta(hours=2)})
        ticket_type = events.save_ticket_type(event, {"name": "Seat", "kind": "paid", "price_minor": 2500})
        events.save_quota(event, {"name": "Hall", "size": count + 10, "ticket_type_ids": [ticket_type.id]})
        events.transition(event, "published")
        db.session.commit()
        type_id = ticket_type.id
        sessions = []
        with app.test_request_context(base_url=f"http://{tenant.primary_domain}"):
            for index in range(count):
                reservation = reservations.create_reservation([reservations.Item(type_id, 1)])
                db.session.commit()
                order, _created = checkout.place_order(reservation.id, f"buyer{index}@example.org", "Bench Buyer",
                                                       payment_provider="stripe")
                sessions.append(open_session(order, inventory.db_now()).provider_reference)
                if index % 100 == 0:
                    print(f"preparing paid sessions: {index}/{count}", file=sys.stderr)
    http = requests.Session()
    http.trust_env = False
    for session_id in sessions:
        paid = http.post(f"{fake.base_url}/pay/{session_id}", data={"card": "4242424242424242", "action": "pay"},
                         allow_redirects=False, timeout=30)
        if paid.status_code != 303:
            raise SystemExit(f"the fake refused to pay {session_id}: {paid.status_code}")
    completed = {event["data"]["object"]["id"]: event for event in fake.events_of_type("checkout.session.completed")}
    return [completed[session_id] for session_id in sessions]


class Deliveries:
    """Signed ``account.updated`` events of one account: a new one each time, or one already sent."""

    def __init__(self, account: dict[str, Any]) -> None:
        self.account = account
        self.sent: list[str] = []
        self.created = int(time.time()) - 86_400  # newer each time, and never newer than the fake's state

    def new(self) -> str:
        self.created += 1
        event = {
            "id": f"evt_bench{len(self.sent):08d}", "object": "event", "type": "account.updated",
            "account": self.account["id"], "created": self.created, "data": {"object": self.account},
            "livemode": False, "pending_webhooks": 1, "api_version": "2026-10-28.endive",
        }
        payload = json.dumps(event)
        self.sent.append(payload)
        return payload

    def again(self, index: int) -> str:
        return self.sent[index % len(self.sent)]


def http_sender(port: int) -> Callable[[str, str, dict[str, str]], dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def send(path: str, payload: str, headers: dict[str, str]) -> dict[str, Any]:
        connection.request("POST", path, body=payload.encode(), headers={
            "Host": PLATFORM_HOST, "Content-Type": "application/json", **headers,
        })
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status} from {path}: {body[:300]!r}")
        answer: dict[str, Any] = json.loads(body)
        return answer

    return send


def main(argv: list[str] | None = None) -> None:
    from tests.payments.stripe_fake import client, running, signature_header

    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--requests", type=int, default=300, help="requests per route and round")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 rounds of 50")
    parser.add_argument("--database", default="bilten_bench_webhooks", help="database to (re)create on the server")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.requests = min(args.rounds, 3), min(args.requests, 50)

    server_url, redis_url, embedded = server_urls()
    database_url = recreate_database(server_url, args.database)
    settings = load_settings(database_url=database_url, redis_url=redis_url,
                             instance_path=tempfile.mkdtemp(prefix="bilten-bench-"), log_level="WARNING")
    app = bench_app(settings)
    context = multiprocessing.get_context("spawn")
    try:
        with running() as fake:
            from pydantic import SecretStr

            from plugins.payments.stripe_settings import EXTENSION, StripeSettings

            app.extensions[EXTENSION] = StripeSettings(secret_key=SecretStr(fake.secret_key), api_base=fake.base_url)
            account_id, tenant = connected_account(app, client(fake))
            payments = [json.dumps(event) for event in paid_sessions(app, tenant, fake, args.rounds * args.requests)]
            stripe_env = {"STRIPE_SECRET_KEY": fake.secret_key, "STRIPE_API_BASE": fake.base_url,
                          "STRIPE_CONNECT_WEBHOOK_SECRET": CONNECT_SECRET}
            ports = context.Queue()
            server = context.Process(target=serve, args=(settings, stripe_env, ports), daemon=True)
            server.start()
            try:
                send = http_sender(ports.get(timeout=60))
                deliveries = Deliveries(fake.objects[account_id].body)

                def signed(payload: str) -> dict[str, str]:
                    return {"Stripe-Signature": signature_header(payload, CONNECT_SECRET)}

                def handled(_: int) -> None:
                    payload = deliveries.new()
                    if send(CONNECT_PATH, payload, signed(payload))["outcome"] != "applied":
                        raise SystemExit("a new event was not applied")

                def duplicate(index: int) -> None:
                    payload = deliveries.again(index)
                    if not send(CONNECT_PATH, payload, signed(payload))["duplicate"]:
                        raise SystemExit("a repeated event was applied again")

                def baseline(_: int) -> None:
                    send(NOOP_PATH, "{}", {})

                unpaid = iter(payments)

                def payment(_: int) -> None:
                    payload = next(unpaid)
                    outcome = send(CONNECT_PATH, payload, signed(payload))["outcome"]
                    if outcome != "paid":
                        raise SystemExit(f"a paid session was not settled: {outcome}")

                routes: dict[str, Callable[[int], None]] = {"noop": baseline, "handled": handled,
                                                            "duplicate": duplicate, "payment": payment}
                handled(0)  # something to repeat, and a warm connection pool on every path
                rates = measure(routes, args.rounds, args.requests)
            finally:
                server.terminate()
                server.join()
            applied = applied_count(app, account_id)
    finally:
        with app.app_context():
            from bilten_core.db import db

            db.engine.dispose()
        if not args.keep:
            drop_database(database_url)
        del embedded
    report(rates, args, applied, len(deliveries.sent))


def measure(routes: dict[str, Callable[[int], None]], rounds: int, requests: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in routes}
    names = list(routes)
    for round_number in range(rounds):
        print(f"round {round_number + 1}/{rounds} ...", file=sys.stderr)
        # Alternate the order, so no route always runs first or last in a round.
        for name in names if round_number % 2 == 0 else reversed(names):
            started = time.perf_counter()
            for index in range(requests):
                routes[name](index)
            rates[name].append(requests / (time.perf_counter() - started))
    return rates


def applied_count(app: Flask, account_id: str) -> int:
    """How many updates the account's row took: one per new event, none for a repeat."""
    from bilten_core.db import db
    from plugins.payments.models import StripeAccount

    with app.app_context():
        return int(db.session.scalar(
            sa.select(StripeAccount.version).where(StripeAccount.stripe_account_id == account_id)
        ) or 0)


def report(rates: dict[str, list[float]], args: argparse.Namespace, applied: int, sent: int) -> None:
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(f"Bilten webhook benchmark: {args.rounds} rounds of {args.requests} requests per route, "
          f"{os.cpu_count()} CPUs, one keep-alive connection, single-threaded Werkzeug server")
    print("route          requests/s (median; fastest round)   ÷ noop")
    for name, median in medians.items():
        print(f"  {name:<12} {median:>10.0f} ; {max(rates[name]):>8.0f}"
              f"                   {median / medians['noop']:>6.3f}")
    print(f"  account updates applied: {applied} for {sent} distinct events (must be equal)")


if __name__ == "__main__":
    main()
