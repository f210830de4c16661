"""Error capture cost: obskit vs sentry-sdk vs a bare raise/catch, measured in one run.

    python benchmarks/bench_errors.py [--quick]

Every capture row raises a fresh exception two application frames deep, catches it and
captures it, with the same 20-breadcrumb trail in both SDKs. sentry-sdk runs with a null
transport (the envelope is built and handed over, nothing is sent) and its default
integrations off. obskit runs with an exporter that drops batches and no per-group export
limit (so every event is built, scrubbed, grouped and queued). "capture cost" subtracts the
bare raise/catch; the ratio column compares that cost with sentry-sdk's.
Needs ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import sentry_sdk
from sentry_sdk.transport import Transport

import obskit
from obskit.exporting import ExportResult

TRAIL = 20


class NullTransport(Transport):
    """Accepts every envelope and sends nothing."""

    envelopes = 0

    def capture_envelope(self, envelope: Any) -> None:
        NullTransport.envelopes += 1


class NullExporter:
    """Accepts every batch and writes nothing."""

    exported = 0

    def export(self, batch: Sequence[Any]) -> ExportResult:
        NullExporter.exported += len(batch)
        return ExportResult.SUCCESS

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        return True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        return None


class PaymentDeclined(Exception):
    pass


def charge(order_id: int) -> None:
    raise PaymentDeclined(f"card declined for order {order_id}")


def checkout(order_id: int) -> None:
    charge(order_id)


def bare_raise_catch() -> None:
    try:
        checkout(42)
    except PaymentDeclined:
        pass


def obskit_capture() -> None:
    try:
        checkout(42)
    except PaymentDeclined as exc:
        obskit.capture_exception(exc)


def sentry_capture() -> None:
    try:
        checkout(42)
    except PaymentDeclined as exc:
        sentry_sdk.capture_exception(exc)


def obskit_breadcrumb() -> None:
    obskit.add_breadcrumb("db", "SELECT cart", data={"rows": 3})


def sentry_breadcrumb() -> None:
    sentry_sdk.add_breadcrumb(category="db", message="SELECT cart", data={"rows": 3})


def per_call_us(fn: Callable[[], None], calls: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean time per call, in microseconds."""
    for _ in range(min(calls, 200)):  # warm caches
        fn()
    samples = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
        obskit.flush()
    return statistics.median(samples)


def setup_sentry(include_locals: bool) -> None:
    sentry_sdk.init(
        dsn="https://public@sentry.invalid/1",  # reserved TLD; the null transport sends nothing
        transport=NullTransport,
        default_integrations=False,
        auto_enabling_integrations=False,
        include_local_variables=include_locals,
        max_breadcrumbs=100,
    )
    sentry_sdk.get_isolation_scope().clear_breadcrumbs()
    for number in range(TRAIL):
        sentry_sdk.add_breadcrumb(category="app", message=f"step {number}", data={"n": number})


def setup_obskit(include_locals: bool) -> None:
    obskit.init(
        exporters=[NullExporter()],
        install_hooks=False,
        include_locals=include_locals,
        max_events_per_group_per_minute=None,
        max_queue_size=1_000_000,
        max_breadcrumbs=100,
    )
    for number in range(TRAIL):
        obskit.add_breadcrumb("app", f"step {number}", data={"n": number})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke test)")
    args = parser.parse_args(argv)
    calls, repeats = (200, 3) if args.quick else (2000, 7)

    rows: list[tuple[str, float]] = []
    bare = per_call_us(bare_raise_catch, calls * 5, repeats)
    rows.append(("bare raise/catch", bare))
    results: dict[str, float] = {}
    for locals_on in (False, True):
        label = "locals on" if locals_on else "locals off"
        setup_sentry(locals_on)
        results[f"sentry {label}"] = per_call_us(sentry_capture, calls, repeats)
        setup_obskit(locals_on)
        results[f"obskit {label}"] = per_call_us(obskit_capture, calls * 5, repeats)
    setup_sentry(False)
    crumb_sentry = per_call_us(sentry_breadcrumb, calls * 20, repeats)
    setup_obskit(False)
    crumb_obskit = per_call_us(obskit_breadcrumb, calls * 20, repeats)
    obskit.shutdown()
    sentry_sdk.get_client().close()
    assert NullTransport.envelopes > 0 and NullExporter.exported > 0, "nothing was captured"

    print(
        f"Error capture, per call (median of {repeats} runs), Python "
        f"{platform.python_version()}, sentry-sdk {sentry_sdk.VERSION}, obskit "
        f"{obskit.__version__}, trail of {TRAIL} breadcrumbs\n"
    )
    header = f"{'operation':<46}{'per call':>12}{'capture cost':>15}{'obskit/sentry':>16}"
    print(header)
    print("-" * len(header))
    print(f"{'bare raise/catch (2 frames)':<46}{bare:>9.2f} us{'':>15}{'':>16}")
    for label in ("locals off", "locals on"):
        sentry = results[f"sentry {label}"]
        ours = results[f"obskit {label}"]
        sentry_cost, our_cost = sentry - bare, ours - bare
        ratio = f"1/{sentry_cost / our_cost:.0f}" if our_cost > 0 else "-"
        print(
            f"{'sentry-sdk capture_exception (' + label + ')':<46}"
            f"{sentry:>9.2f} us{sentry_cost:>12.2f} us{'':>16}"
        )
        print(
            f"{'obskit capture_exception (' + label + ')':<46}"
            f"{ours:>9.2f} us{our_cost:>12.2f} us{ratio:>16}"
        )
    crumb_ratio = crumb_obskit / crumb_sentry
    print(f"{'sentry-sdk add_breadcrumb':<46}{crumb_sentry:>9.2f} us")
    print(f"{'obskit add_breadcrumb':<46}{crumb_obskit:>9.2f} us{'':>15}{crumb_ratio:>15.2f}x")
    print(
        "\nTargets (issue 4): capture cost <= 1/20 of sentry-sdk's; breadcrumb <= 1.00x.",
        file=sys.stderr if args.quick else sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
