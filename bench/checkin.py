"""Check-in benchmark: how many signed ticket codes one core verifies a second, against HMAC.

    .venv/bin/python -m bench.checkin            # 9 rounds of 1 s per measurement
    .venv/bin/python -m bench.checkin --quick    # 3 rounds of 0.3 s

Pure CPU, no database or Redis. The process is pinned to one core (where the OS allows it) and
loops over pre-made codes of one event. Three measurements, interleaved round by round so that
drift in machine load hits them alike, each reported as its fastest round (on a shared machine
the fastest round is the one other work disturbed least) and the median of its rounds:

* ``verify()``: what a scanner does with a scanned code: decode the digits, check the version,
  pick the key by its id, check the Ed25519 signature, read the fields, check the window;
* the Ed25519 signature check alone, over the same signed bytes;
* the baseline: HMAC-SHA256 over the same signed bytes and a constant-time comparison of the tag,
  which is what a scanner holding a shared secret instead of public keys would do.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import platform
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import cryptography
from cryptography.hazmat.backends.openssl import backend

from plugins.scanner.ticket_codes import PAYLOAD_BYTES, SIGNATURE_BYTES, EventKeyRing, verify

DOORS_OPEN = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
_SIGNED_BYTES = PAYLOAD_BYTES - SIGNATURE_BYTES


def _pin_to_one_core() -> str:
    """Pin this process to the first core it may use, so every figure is one core's work."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned: this OS cannot pin a process"
    allowed = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {allowed[0]})
    return f"pinned to CPU {allowed[0]} of {os.cpu_count()}"


def _rate(step: Callable[[Any], object], items: Sequence[Any], seconds: float) -> float:
    """Calls of ``step`` per second, over ``items`` again and again for at least ``seconds``."""
    done = 0
    start = time.perf_counter()
    while True:
        for item in items:
            step(item)
        done += len(items)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.checkin", description=__doc__.split("\n")[0])
    parser.add_argument("--codes", type=int, default=1_000, help="distinct codes to loop over (default 1000)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one round of one measurement")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 rounds of 0.3 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = min(args.rounds, 3), min(args.seconds, 0.3)

    pinning = _pin_to_one_core()
    ring = EventKeyRing.generate(uuid.uuid4())
    codes = [
        ring.issue(
            ticket_id=uuid.uuid4(),
            ticket_type_id=uuid.uuid4(),
            not_before=DOORS_OPEN,
            not_after=DOORS_OPEN + timedelta(hours=8),
        )
        for _ in range(args.codes)
    ]
    public_keys = ring.public_keys()
    now = DOORS_OPEN + timedelta(hours=1)
    # The same payload bytes for the signature alone and for the baseline.
    raws = [int(code).to_bytes(PAYLOAD_BYTES, "big") for code in codes]
    public_key = public_keys[ring.active_kid]
    signatures = [(raw[_SIGNED_BYTES:], raw[:_SIGNED_BYTES]) for raw in raws]
    hmac_key = secrets.token_bytes(32)
    tagged = [(raw[:_SIGNED_BYTES], hmac.digest(hmac_key, raw[:_SIGNED_BYTES], hashlib.sha256)) for raw in raws]

    def full(code: str) -> object:
        return verify(code, public_keys, now)

    def signature_alone(item: tuple[bytes, bytes]) -> None:
        public_key.verify(*item)

    def baseline(item: tuple[bytes, bytes]) -> bool:
        signed, tag = item
        return hmac.compare_digest(hmac.digest(hmac_key, signed, hashlib.sha256), tag)

    # Every path must accept every code before any of them is timed.
    for code, item, pair in zip(codes, signatures, tagged, strict=True):
        full(code)
        signature_alone(item)
        if not baseline(pair):
            raise SystemExit("the HMAC baseline refused its own tag")

    measurements: dict[str, tuple[Callable[[Any], object], Sequence[Any]]] = {
        "verify": (full, codes),
        "signature": (signature_alone, signatures),
        "hmac": (baseline, tagged),
    }
    rates: dict[str, list[float]] = {name: [] for name in measurements}
    print(f"{args.rounds} rounds of {args.seconds:g} s per measurement ... ", end="", file=sys.stderr, flush=True)
    for round_number in range(args.rounds):
        # Alternate the order, so no measurement always runs first or last in a round.
        order = list(measurements) if round_number % 2 == 0 else list(reversed(measurements))
        for name in order:
            step, items = measurements[name]
            rates[name].append(_rate(step, items, args.seconds))
    print("done", file=sys.stderr)

    best = {name: max(values) for name, values in rates.items()}
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"Check-in: signed ticket codes on one core ({pinning}), {args.codes} codes of one event, "
        f"{args.rounds} interleaved rounds of {args.seconds:g} s"
    )
    print(
        f"  Python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"{backend.openssl_version_text()}"
    )
    print(f"  {'per second (fastest round / median)':<44} {'fastest':>11} {'median':>11}   µs each, fastest")
    rows = [
        ("verify(): decode, Ed25519, fields, window", "verify"),
        ("Ed25519 signature check alone", "signature"),
        ("HMAC-SHA256 + compare_digest (baseline)", "hmac"),
    ]
    for label, name in rows:
        print(f"  {label:<44} {best[name]:>11,.0f} {median[name]:>11,.0f}   {1e6 / best[name]:8.2f}")
    for label, name in (("verify() / HMAC", "verify"), ("Ed25519 alone / HMAC", "signature")):
        ratio, median_ratio = best[name] / best["hmac"], median[name] / median["hmac"]
        print(f"  {label:<44} {ratio:>11.4f} {median_ratio:>11.4f}   (HMAC does {1 / ratio:.0f} times as many)")


if __name__ == "__main__":
    main()
