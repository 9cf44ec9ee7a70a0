"""Tenancy benchmark: what schema-per-tenant costs a request, a provisioning and a migration.

    .venv/bin/python -m bench.tenancy [--tenants 1000] [--requests 20000] [--quick]

Uses ``DATABASE_URL`` / ``REDIS_URL`` when set (a fresh database is created on that server and
dropped afterwards), else the embedded servers under ``instance/bench``. Every request figure is a
ratio against a baseline measured in the same process, interleaved request by request:

* tenant route: ``GET /bench/item`` on a tenant host reads one row of a tenant table through the
  kernel (host lookup, tenant context, ``schema_translate_map``);
* baseline: ``GET /bench-direct/<schema>/item`` on the platform host runs the same query against
  an explicitly schema-qualified table, with no tenancy at all.

Both are measured in-process (the WSGI app called directly: the strictest denominator) and over
HTTP/1.1 keep-alive on loopback to a real WSGI server in a separate process.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import http.client
import io
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from tqdm import tqdm
from werkzeug.test import EnvironBuilder

from bench import benchroute
from bilten_core.app import create_app
from bilten_core.config import PROJECT_ROOT, Settings, load_settings
from bilten_core.dbadmin import drop_database, recreate_database
from bilten_core.tenancy.context import TenantInfo

PLATFORM_HOST = "localhost"
GOAL_TENANCY_SHARE = 0.10  # tenancy under 10% of a minimal request
GOAL_SCALE_RATIO = 1.10  # "1,000 serve as fast as 1": within measurement noise, taken as 10%


@dataclass(frozen=True)
class Target:
    host: str
    schema: str
    slug: str


@dataclass
class Timing:
    baseline: list[int]
    tenant: list[int]
    host_cache_misses: int = 0

    @property
    def miss_rate(self) -> float:
        return self.host_cache_misses / len(self.tenant)

    @staticmethod
    def _stats(samples: list[int]) -> tuple[float, float]:
        ordered = sorted(samples)
        return statistics.median(ordered) / 1000, ordered[int(len(ordered) * 0.95)] / 1000

    @property
    def baseline_us(self) -> tuple[float, float]:
        return self._stats(self.baseline)

    @property
    def tenant_us(self) -> tuple[float, float]:
        return self._stats(self.tenant)

    @property
    def overhead_us(self) -> float:
        return self.tenant_us[0] - self.baseline_us[0]

    @property
    def share(self) -> float:
        return self.overhead_us / self.baseline_us[0]


# --- servers and database ---------------------------------------------------------------------


def server_urls() -> tuple[str, str, Any]:
    """(database server URL, Redis URL, handles that keep embedded servers alive)."""
    database_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    if database_url and redis_url:
        return database_url, redis_url, None
    from bilten_core.embedded import start_embedded

    embedded = start_embedded(PROJECT_ROOT / "instance" / "bench")
    return database_url or embedded.database_url, redis_url or embedded.redis_url, embedded


def bench_settings(database_url: str, redis_url: str, instance: str) -> Settings:
    return load_settings(
        database_url=database_url, redis_url=redis_url, instance_path=instance, log_level="WARNING"
    )


def bench_app(settings: Settings, *extra: tuple[str, Any]) -> Flask:
    return create_app(settings, extra_plugins=[("benchroute", benchroute), *extra])


# --- provisioning -------------------------------------------------------------------------------


def provision(app: Flask, count: int) -> tuple[list[TenantInfo], list[float]]:
    from bilten_core.migrations import app_migrator
    from tenants.service import create_tenant

    tenants, seconds = [], []
    with app.app_context():
        app_migrator().upgrade_shared()
        for number in tqdm(range(count), desc="provisioning", unit="tenant", file=sys.stderr):
            started = time.perf_counter()
            tenants.append(create_tenant(f"bench-{number:04d}"))
            seconds.append(time.perf_counter() - started)
    return tenants, seconds


# --- request timing -------------------------------------------------------------------------------

Send = Callable[[bool, Target], bytes]
Counter = Callable[[], int]


def measure(
    send: Send, misses: Counter, one: list[Target], many: list[Target], requests: int
) -> tuple[Timing, Timing]:
    """Time both scenarios (1 tenant, all tenants) in alternating blocks, so drift hits both alike.

    Within a block, baseline and tenant requests are interleaved, alternating which goes first.
    """
    for target in many:  # warm-up, and proof that every host reads its own tenant's row
        for tenanted in (False, True):
            body = send(tenanted, target)
            if body != target.slug.encode():
                raise RuntimeError(f"{target.host} answered {body!r}, expected {target.slug!r}")
    for number in range(min(requests, 2000)):
        send(number % 2 == 0, one[0])
    timings = Timing([], []), Timing([], [])
    clock = time.perf_counter_ns
    block = max(1, min(len(many), requests // 10))
    gc.collect()
    for start in range(0, requests, block):
        for targets, timing in zip((one, many), timings, strict=True):
            misses_before = misses()
            for number in range(start, min(start + block, requests)):
                target = targets[number % len(targets)]
                for tenanted in ((False, True) if number % 2 else (True, False)):
                    started = clock()
                    send(tenanted, target)
                    elapsed = clock() - started
                    (timing.tenant if tenanted else timing.baseline).append(elapsed)
            timing.host_cache_misses += misses() - misses_before
    return timings


def wsgi_misses(app: Flask) -> Counter:
    from bilten_core.kernel import kernel

    counter = kernel(app).registries["bench_host_cache_misses"]
    return lambda: int(counter[0])


def wsgi_sender(app: Flask) -> Send:
    """Call the WSGI app directly with prebuilt environs: no HTTP parsing in the figures."""
    environs: dict[tuple[bool, str], dict[str, Any]] = {}

    def environ_for(tenanted: bool, target: Target) -> dict[str, Any]:
        key = (tenanted, target.host)
        if key not in environs:
            path = "/bench/item" if tenanted else f"/bench-direct/{target.schema}/item"
            host = target.host if tenanted else PLATFORM_HOST
            environs[key] = EnvironBuilder(path=path, headers=[("Host", host)]).get_environ()
        return environs[key]

    def send(tenanted: bool, target: Target) -> bytes:
        environ = dict(environ_for(tenanted, target))
        environ["wsgi.input"] = io.BytesIO()
        statuses: list[str] = []

        def start_response(status: str, _headers: list[tuple[str, str]], _exc_info: Any = None) -> Any:
            statuses.append(status)
            return lambda _data: None

        result = app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        if not statuses[0].startswith("200"):
            raise RuntimeError(f"{statuses[0]} from {environ['HTTP_HOST']}{environ['PATH_INFO']}")
        return body

    return send


def serve(database_url: str, redis_url: str, instance: str, ports: Any) -> None:
    """The WSGI server process: the same app, single-threaded, HTTP/1.1 keep-alive, no access log."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class KeepAliveHandler(WSGIRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    app = bench_app(bench_settings(database_url, redis_url, instance))
    server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=KeepAliveHandler)
    ports.put(server.port)
    server.serve_forever()


def http_sender(port: int) -> tuple[Send, Counter]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def misses() -> int:
        connection.request("GET", "/bench-direct/host-cache-misses", headers={"Host": PLATFORM_HOST})
        return int(connection.getresponse().read())

    def send(tenanted: bool, target: Target) -> bytes:
        path = "/bench/item" if tenanted else f"/bench-direct/{target.schema}/item"
        connection.request("GET", path, headers={"Host": target.host if tenanted else PLATFORM_HOST})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status} from {path}: {body[:200]!r}")
        return body

    return send, misses


def host_miss_us(app: Flask, targets: list[Target]) -> float:
    """Median cost of one host lookup that misses the cache (``TenantResolver.load_by_hosts``), in µs."""
    from bilten_core.kernel import kernel

    with app.app_context():
        load = kernel().resolver.load_by_hosts
        samples = []
        for target in (targets * 3)[:300]:
            started = time.perf_counter_ns()
            load([target.host])
            samples.append(time.perf_counter_ns() - started)
    return statistics.median(samples) / 1000


def host_lookup_ns(app: Flask, targets: list[Target], calls: int = 200_000) -> float:
    """Cost of one cached host -> tenant lookup (``TenantResolver.resolve``), in nanoseconds."""
    from bilten_core.kernel import kernel

    with app.app_context():
        resolve = kernel().resolver.resolve
        hosts = [t.host for t in targets]
        for host in hosts:
            resolve(host)
        started = time.perf_counter_ns()
        for number in range(calls):
            resolve(hosts[number % len(hosts)])
        return (time.perf_counter_ns() - started) / calls


# --- migrations -------------------------------------------------------------------------------------


def migrate_all(app: Flask, parallelism: int) -> tuple[float, str]:
    """Run ``bilten migrate`` (shared schema, then every tenant); return seconds and its summary line."""
    from bilten_core.cli import cli

    output = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(output):
        try:
            cli.main(["migrate", "-j", str(parallelism)], obj=app, standalone_mode=False)
        except SystemExit as exc:
            raise RuntimeError(f"bilten migrate failed:\n{output.getvalue()[-2000:]}") from exc
    seconds = time.perf_counter() - started
    summary = [line for line in output.getvalue().splitlines() if " tenants: " in line]
    return seconds, summary[-1] if summary else output.getvalue().strip()[-300:]


# --- report -----------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def request_rows(label: str, one: Timing, many: Timing, tenants: int, ttl: float) -> list[str]:
    rows = [f"\nPer request, {label} (median / p95, µs; baseline and tenant route interleaved)"]
    rows.append(f"  {'':<14}{'baseline':>18}{'tenant route':>18}{'tenancy cost':>16}{'share':>9}   goal <10%")
    for name, timing in (("1 tenant", one), (f"{tenants} tenants", many)):
        base, ten = timing.baseline_us, timing.tenant_us
        rows.append(
            f"  {name:<14}{base[0]:>10.0f} / {base[1]:<5.0f}{ten[0]:>10.0f} / {ten[1]:<5.0f}"
            f"{timing.overhead_us:>+13.1f} µs{timing.share:>+8.1%}   {verdict(timing.share < GOAL_TENANCY_SHARE)}"
        )
    rows.append(
        f"  host-cache misses: {one.miss_rate:.1%} of tenant requests at 1 tenant, "
        f"{many.miss_rate:.1%} at {tenants} (cache_ttl {ttl:g} s)"
    )
    scale = many.tenant_us[0] / one.tenant_us[0]
    base_scale = many.baseline_us[0] / one.baseline_us[0]
    rows.append(
        f"  {tenants} vs 1 tenant: tenant route x{scale:.2f}, baseline x{base_scale:.2f}"
        f"   goal: as fast as 1 -> {verdict(scale < GOAL_SCALE_RATIO)}"
    )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tenancy", description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=1000, help="tenants to provision (default 1000)")
    parser.add_argument("--requests", type=int, default=20000, help="timed requests per route and scenario")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 tenants, 1000 requests")
    parser.add_argument("--database", default="bilten_bench", help="database to (re)create on the server")
    parser.add_argument("--parallelism", type=int, default=None, help="tenants migrated at once")
    parser.add_argument("--no-http", action="store_true", help="skip the loopback HTTP measurement")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    args = parser.parse_args(argv)
    if args.quick:
        args.tenants, args.requests = min(args.tenants, 20), min(args.requests, 1000)

    server_url, redis_url, embedded = server_urls()
    database_url = recreate_database(server_url, args.database)
    instance = tempfile.mkdtemp(prefix="bilten-bench-")
    settings = bench_settings(database_url, redis_url, instance)
    parallelism = args.parallelism or settings.tenancy.migrate_parallelism
    app = bench_app(settings)
    try:
        tenants, provision_seconds = provision(app, args.tenants)
        targets = [Target(t.primary_domain, t.schema, t.slug) for t in tenants]
        random.Random(7).shuffle(targets)
        one, many = targets[:1], targets

        print(f"timing {args.requests} requests per route in-process ...", file=sys.stderr)
        send = wsgi_sender(app)
        wsgi_one, wsgi_many = measure(send, wsgi_misses(app), one, many, args.requests)
        lookup_one, lookup_many = host_lookup_ns(app, one), host_lookup_ns(app, many)
        lookup_miss = host_miss_us(app, many)

        http_timings = None
        if not args.no_http:
            print("timing over HTTP on loopback ...", file=sys.stderr)
            context = multiprocessing.get_context("spawn")
            ports = context.Queue()
            server = context.Process(target=serve, args=(database_url, redis_url, instance, ports), daemon=True)
            server.start()
            try:
                send, misses = http_sender(ports.get(timeout=60))
                http_timings = measure(send, misses, one, many, args.requests)
            finally:
                server.terminate()
                server.join()

        idle_seconds, idle_summary = migrate_all(app, parallelism)
        folder = benchroute.write_pending_revision(Path(instance, "pending_revision"))
        pending_app = bench_app(settings, ("benchpending", benchroute.PendingMigration(folder)))
        pending_seconds, pending_summary = migrate_all(pending_app, parallelism)
        after_seconds, _ = migrate_all(pending_app, parallelism)
    finally:
        with app.app_context():
            from bilten_core.db import db

            db.engine.dispose()
        if not args.keep:
            drop_database(database_url)
        del embedded

    n = args.tenants
    provision_ms = [s * 1000 for s in provision_seconds]
    rows = [f"\nBilten tenancy benchmark: {n} tenants, {args.requests} timed requests per route, "
            f"{os.cpu_count()} CPUs, PostgreSQL at {sa.make_url(database_url).host or 'embedded'}"]
    ttl = settings.tenancy.cache_ttl
    rows += request_rows("in-process WSGI call", wsgi_one, wsgi_many, n, ttl)
    if http_timings:
        rows += request_rows("HTTP/1.1 keep-alive on loopback", *http_timings, n, ttl)
    rows.append(
        f"\nHost lookup (TenantResolver.resolve): a cache hit costs {lookup_one:.0f} ns at 1 host, "
        f"{lookup_many:.0f} ns rotating over {n} hosts; a miss (database) {lookup_miss:.0f} µs"
    )
    rows.append("\nProvisioning and migrations")
    rows.append(
        f"  provision one tenant (create_tenant)     median {statistics.median(provision_ms):6.0f} ms, "
        f"p95 {sorted(provision_ms)[int(len(provision_ms) * 0.95)]:.0f} ms, all {n} in "
        f"{sum(provision_seconds):.1f} s   goal <1 s: {verdict(statistics.median(provision_ms) < 1000)}"
    )
    rows.append(
        f"  bilten migrate, nothing pending          {idle_seconds:6.2f} s "
        f"({idle_seconds / n * 1000:.2f} ms per tenant)   goal: seconds -> {verdict(idle_seconds < 10)}"
    )
    rows.append(f"      {idle_summary}")
    rows.append(
        f"  bilten migrate, one revision pending     {pending_seconds:6.2f} s "
        f"({pending_seconds / n * 1000:.1f} ms per tenant, -j {parallelism}; add_column on every tenant)"
    )
    rows.append(f"      {pending_summary}")
    rows.append(f"  bilten migrate again, nothing pending    {after_seconds:6.2f} s")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
