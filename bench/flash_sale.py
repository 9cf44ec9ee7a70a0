"""Flash sale: tens of thousands of buyers race for a few thousand tickets of one event over HTTP.

Serves the app with gunicorn on loopback, then sends every buyer as a real HTTP client: reserve one
ticket, then (most of them) check out; the rest abandon their reservation, whose tickets must come
back on sale by themselves. Prints orders per minute, reservation latency, oversold (must be 0),
unsold after the abandoned reservations expired (must be 0), and two ratios measured in the same
run: reservation requests per second ÷ a no-op endpoint on the same server, and the inventory step
alone ÷ a single hot-row ``UPDATE``.

    .venv/bin/python -m bench.flash_sale            # 30,000 buyers, 3,000 tickets
    .venv/bin/python -m bench.flash_sale --quick    # 3,000 buyers, 300 tickets

Uses ``DATABASE_URL`` / ``REDIS_URL`` when set, else the embedded servers under ``instance/bench``;
(re)creates its own database (``--database``, default ``bilten_bench_flash``) and drops it at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask

from bilten_core import PluginMeta, hookimpl
from bilten_core.config import PROJECT_ROOT, load_settings

PLUGIN = PluginMeta(title="Flash sale benchmark", description="A no-op tenant route to compare against.")
noop_routes = Blueprint("flashbench", __name__, url_prefix="/bench")


@noop_routes.get("/noop")
def noop() -> str:
    """Does nothing, through the same tenant resolution, middleware and WSGI server as the API."""
    return "ok"


@hookimpl
def register_blueprints(app: Any) -> list[Blueprint]:
    return [noop_routes]


def wsgi_app() -> Flask:
    """The app gunicorn serves: ``gunicorn 'bench.flash_sale:wsgi_app()'``."""
    from bilten_core.app import create_app

    settings = load_settings(instance_path=os.environ.get("BILTEN_BENCH_INSTANCE"), log_level="WARNING")
    return create_app(settings, extra_plugins=[("flashbench", sys.modules[__name__])])


# --- HTTP clients ----------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection, as one browser tab would hold."""

    def __init__(self, port: int, host: str) -> None:
        self.port, self.host = port, host
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Host": self.host}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(3):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise
        if raw and response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(raw)
        return response.status, raw


@dataclass
class BuyerStats:
    reserve_ms: list[float] = field(default_factory=list)
    reserved: int = 0
    sold_out: int = 0
    orders: int = 0
    abandoned: int = 0
    other: dict[str, int] = field(default_factory=dict)
    last_abandoned_at: float = 0.0
    order_times: list[float] = field(default_factory=list)
    started_at: float = 0.0

    def merge(self, other: BuyerStats) -> None:
        self.reserve_ms += other.reserve_ms
        self.reserved += other.reserved
        self.sold_out += other.sold_out
        self.orders += other.orders
        self.abandoned += other.abandoned
        for key, n in other.other.items():
            self.other[key] = self.other.get(key, 0) + n
        self.last_abandoned_at = max(self.last_abandoned_at, other.last_abandoned_at)
        self.order_times += other.order_times


def _buyers(args: tuple[int, str, list[str], int, int, float, int]) -> BuyerStats:
    """A process of buyers: ``count`` buyers over ``threads`` connections (runs in a child process)."""
    port, host, type_ids, count, threads, checkout_share, seed = args
    rng = random.Random(seed)
    stats = BuyerStats()
    lock = threading.Lock()
    remaining = [count]

    def worker() -> None:
        client = Client(port, host)
        local = BuyerStats()
        while True:
            with lock:
                if remaining[0] == 0:
                    break
                remaining[0] -= 1
                type_id, checkout = rng.choice(type_ids), rng.random() < checkout_share
            started = time.perf_counter()
            status, body = client.request(
                "POST", "/api/v1/reservations", {"items": [{"ticket_type_id": type_id, "quantity": 1}]}
            )
            local.reserve_ms.append((time.perf_counter() - started) * 1000)
            if status == 409:
                local.sold_out += 1
                continue
            if status != 201:
                local.other[f"reserve {status}"] = local.other.get(f"reserve {status}", 0) + 1
                continue
            local.reserved += 1
            if not checkout:
                local.abandoned += 1
                local.last_abandoned_at = time.time()
                continue
            status, _order = client.request(
                "POST", "/api/v1/orders", {"reservation_id": body["id"], "email": "b@example.org", "name": "B"}
            )
            if status == 201:
                local.orders += 1
                local.order_times.append(time.time())
            else:
                local.other[f"order {status}"] = local.other.get(f"order {status}", 0) + 1
        with lock:
            stats.merge(local)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return stats


def _noop(args: tuple[int, str, int, int, str]) -> int:
    port, host, count, threads, path = args
    done = [0]
    lock = threading.Lock()

    def worker() -> None:
        client = Client(port, host)
        while True:
            with lock:
                if done[0] >= count:
                    return
                done[0] += 1
            status, _body = client.request("GET", path)
            assert status == 200, status

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return done[0]


def run_buyers(port: int, host: str, type_ids: list[str], buyers: int, processes: int, threads: int,
               checkout_share: float) -> tuple[BuyerStats, float]:
    context = multiprocessing.get_context("spawn")
    shares = [buyers // processes + (1 if i < buyers % processes else 0) for i in range(processes)]
    total = BuyerStats()
    total.started_at = time.time()
    started = time.perf_counter()
    with context.Pool(processes) as pool:
        results = pool.map(
            _buyers, [(port, host, type_ids, n, threads, checkout_share, i) for i, n in enumerate(shares)]
        )
    elapsed = time.perf_counter() - started
    for result in results:
        total.merge(result)
    return total, elapsed


def run_noop(port: int, host: str, requests: int, processes: int, threads: int, path: str) -> float:
    context = multiprocessing.get_context("spawn")
    shares = [requests // processes] * processes
    started = time.perf_counter()
    with context.Pool(processes) as pool:
        done = sum(pool.map(_noop, [(port, host, n, threads, path) for n in shares]))
    return done / (time.perf_counter() - started)


# --- the inventory step alone ----------------------------------------------------------------------


def inventory_ratio(app: Flask, tenant: Any, event: tuple[str, str, list[str]], attempts: int, threads: int) -> tuple[
        float, float]:
    """Claims per second (the reservation statement + commit) and hot-row UPDATEs per second, same threads."""
    import uuid

    from bilten_core.db import db
    from bilten_core.tenancy.context import tenant_context
    from plugins.ticketing import inventory

    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS public.flash_hot_row (id int PRIMARY KEY, n bigint)"))
        conn.execute(sa.text("INSERT INTO public.flash_hot_row VALUES (1, 0) ON CONFLICT DO NOTHING"))

    def timed(step: Callable[[], None]) -> float:
        def worker(n: int) -> None:
            with app.app_context(), tenant_context(tenant):
                for _ in range(n):
                    step()

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(worker, [attempts // threads] * threads))
        return (attempts // threads * threads) / (time.perf_counter() - started)

    event_id, quota_id, type_ids = event
    line = inventory.NewLine(type_ids[0], 1, 0, 0, 0, True)

    def claim() -> None:
        result = inventory.claim_reservation(str(uuid.uuid4()), event_id, {quota_id: 1}, 3600, [line])
        assert result.complete({quota_id: 1})
        db.session.commit()

    def hot_row() -> None:
        db.session.execute(sa.text("UPDATE public.flash_hot_row SET n = n + 1 WHERE id = 1"))
        db.session.commit()

    return timed(claim), timed(hot_row)


# --- orchestration ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _setup(app: Flask, tickets: int, reservation_seconds: int, spare: int) -> dict[str, Any]:
    from bilten_core.db import db
    from bilten_core.migrations import app_migrator
    from bilten_core.tenancy.context import tenant_context
    from bilten_core.tenant_settings import update_settings
    from plugins.ticketing.models import Event, Quota, TicketType
    from tenants.service import create_tenant

    with app.app_context():
        app_migrator().upgrade_shared()
        tenant = create_tenant("flash", "Flash sale")
        with tenant_context(tenant):
            update_settings("checkout", {"reservation_seconds": reservation_seconds})
            starts = datetime.now(UTC) + timedelta(days=30)
            ids: dict[str, Any] = {"tenant": tenant}
            for key, size in (("sale", tickets), ("spare", spare), ("inventory", spare)):
                event = Event(slug=f"{key}-night", title=f"{key} night", starts_at=starts,
                              ends_at=starts + timedelta(hours=4), status="published")
                quota = Quota(name="Floor", size=size)
                event.quotas.append(quota)
                types = [TicketType(name=name, kind="free", price_minor=0, max_per_order=4)
                         for name in ("Early", "Standard")]
                event.ticket_types.extend(types)
                quota.ticket_types.extend(types)
                db.session.add(event)
                db.session.flush()
                ids[key] = (event.id, quota.id, [t.id for t in types])
            db.session.commit()
    return ids


def _counts(app: Flask, tenant: Any, event_id: str, quota_id: str) -> tuple[int, int, int]:
    """(valid tickets, places sold, places free now) of an event's quota."""
    from bilten_core.db import db
    from bilten_core.tenancy.context import tenant_context
    from plugins.ticketing.inventory import InventoryPlace, free_by_pool
    from plugins.ticketing.orders import Order, Ticket

    with app.app_context(), tenant_context(tenant):
        tickets = db.session.scalar(
            sa.select(sa.func.count(Ticket.id)).join(Order, Order.id == Ticket.order_id)
            .where(Order.event_id == event_id, Ticket.valid.is_(True))
        )
        sold = db.session.scalar(
            sa.select(sa.func.count()).select_from(InventoryPlace)
            .where(InventoryPlace.pool_id == quota_id, InventoryPlace.order_id.is_not(None))
        )
        return int(tickets or 0), int(sold or 0), free_by_pool(event_id).get(quota_id, 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.flash_sale", description=__doc__.split("\n")[0])
    parser.add_argument("--buyers", type=int, default=30_000)
    parser.add_argument("--tickets", type=int, default=3_000)
    parser.add_argument("--quick", action="store_true", help="smoke run: 3,000 buyers, 300 tickets")
    parser.add_argument("--checkout-share", type=float, default=0.9, help="buyers who check out (default 0.9)")
    parser.add_argument("--reservation-seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--client-threads", type=int, default=32, help="connections per client process")
    parser.add_argument("--database", default="bilten_bench_flash")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    args = parser.parse_args(argv)
    if args.quick:
        args.buyers, args.tickets = min(args.buyers, 3_000), min(args.tickets, 300)
        args.reservation_seconds = min(args.reservation_seconds, 10)

    from bench.tenancy import server_urls
    from bilten_core.app import create_app
    from bilten_core.dbadmin import drop_database, recreate_database

    admin_url, redis_url, embedded = server_urls()
    database_url = recreate_database(admin_url, args.database)
    instance = tempfile.mkdtemp(prefix="bilten-flash-")
    settings = load_settings(database_url=database_url, redis_url=redis_url, instance_path=instance,
                             log_level="WARNING")
    app = create_app(settings, extra_plugins=[("flashbench", sys.modules[__name__])])
    spare = max(args.tickets * 4, 4_000)
    ids = _setup(app, args.tickets, args.reservation_seconds, spare)
    tenant = ids["tenant"]
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "BILTEN_BENCH_INSTANCE": instance}
    server = subprocess.Popen(  # noqa: S603 (a fixed command line)
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
         "--worker-class", "gthread", "--threads", str(args.threads), "--log-level", "warning",
         "--backlog", "2048", "bench.flash_sale:wsgi_app()"],
        cwd=PROJECT_ROOT, env=env,
    )
    host = tenant.primary_domain
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if Client(port, host).request("GET", "/bench/noop")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("gunicorn did not come up")
            time.sleep(0.5)
        procs, threads = args.client_processes, args.client_threads
        # Warm every worker's caches (tenant, settings, statements) before timing anything.
        run_noop(port, host, 200, procs, threads, "/bench/noop")

        print("no-op endpoint ... ", end="", file=sys.stderr, flush=True)
        noop_requests = max(1_000, args.buyers // 10)
        noop_rps = run_noop(port, host, noop_requests, procs, threads, "/bench/noop")
        print(f"{noop_rps:.0f} req/s", file=sys.stderr)

        print("reservations that all succeed (same server, same clients) ... ", end="", file=sys.stderr,
              flush=True)
        _spare_event, _spare_quota, spare_types = ids["spare"]
        reservation_only, reservation_elapsed = run_buyers(
            port, host, spare_types, min(noop_requests, spare), procs, threads, checkout_share=0.0
        )
        reservation_rps = (reservation_only.reserved + reservation_only.sold_out) / reservation_elapsed
        print(f"{reservation_rps:.0f} req/s", file=sys.stderr)

        event_id, quota_id, type_ids = ids["sale"]
        print(f"flash sale: {args.buyers} buyers for {args.tickets} tickets ... ", file=sys.stderr, flush=True)
        sale, sale_elapsed = run_buyers(port, host, type_ids, args.buyers, procs, threads, args.checkout_share)
        tickets_after_sale, sold_after_sale, _free = _counts(app, tenant, event_id, quota_id)
        wait = max(0.0, sale.last_abandoned_at + args.reservation_seconds + 1 - time.time())
        print(f"  {sale_elapsed:.1f} s; waiting {wait:.0f} s for abandoned reservations to expire",
              file=sys.stderr)
        time.sleep(wait)
        _t, _s, free_after_expiry = _counts(app, tenant, event_id, quota_id)
        # Late buyers take whatever the abandoned reservations gave back.
        late, _late_elapsed = run_buyers(port, host, type_ids, free_after_expiry * 2 + 50, procs, threads, 1.0)
        tickets, sold, free = _counts(app, tenant, event_id, quota_id)

        claims_per_s, hot_per_s = inventory_ratio(app, tenant, ids["inventory"], min(spare, 4_000), 16)

        latencies = sorted(sale.reserve_ms)
        oversold = max(0, tickets - args.tickets) + max(0, sold - args.tickets)
        print()
        print(f"Flash sale: {args.buyers} buyers, {args.tickets} tickets of one event (2 ticket types, one quota)")
        print(f"  gunicorn {args.workers} workers x {args.threads} threads; clients {procs} processes x "
              f"{threads} connections; {os.cpu_count()} CPUs")
        print(f"  sale phase               {sale_elapsed:8.1f} s, {sale.orders} orders, "
              f"{sale.abandoned} abandoned, {sale.sold_out} told sold out, other: {sale.other or 'none'}")
        times = sorted(sale.order_times)
        # Abandoned reservations lapse during the sale and are bought again at its end: the selling rate
        # is the time to the order that sold 90 % of the tickets; the whole phase is shown beside it.
        ninety = times[max(0, int(len(times) * 0.9) - 1)] - sale.started_at if times else 0.0
        print(f"  orders per minute        {len(times) * 0.9 / max(ninety, 1e-9) * 60:8.0f}   (90 % of the orders in "
              f"{ninety:.1f} s; {sale.orders / sale_elapsed * 60:.0f} over the whole sale phase)")
        print(f"  reservation latency      p50 {statistics.median(latencies):6.1f} ms, "
              f"p99 {latencies[int(len(latencies) * 0.99)]:6.1f} ms")
        print(f"  oversold                 {oversold:8d}   (tickets {tickets}, places sold {sold})")
        print(f"  sold right after sale    {tickets_after_sale:8d}   (places sold {sold_after_sale})")
        print(f"  late buyers after expiry {late.orders:8d} orders")
        print(f"  unsold after expiry      {args.tickets - sold:8d}   (free places now {free})")
        print(f"  reservation rps / no-op  {reservation_rps:8.0f} / {noop_rps:.0f} = {reservation_rps / noop_rps:.2f}")
        print(f"  inventory step / hot row {claims_per_s:8.0f} / {hot_per_s:.0f} per s = "
              f"{claims_per_s / hot_per_s:.2f}   (16 threads; claim 1 place and insert the reservation, commit;"
              " vs UPDATE n = n + 1, commit)")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        with app.app_context():
            from bilten_core.db import db

            db.engine.dispose()
        if not args.keep:
            drop_database(database_url)
        del embedded


if __name__ == "__main__":
    main()
