"""The ``obskit`` command: ``demo`` (more subcommands arrive with the store and health)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``obskit`` console script; returns the exit status."""
    parser = argparse.ArgumentParser(prog="obskit", description="obskit command line")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run a simulated service and show what obskit saw")
    demo.add_argument("--seconds", type=float, default=4.0, help="how long to run (default 4)")
    demo.add_argument("--rps", type=float, default=60.0, help="requests per second (default 60)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument(
        "--out", default=None, help="directory for the demo's files (default: a temp dir)"
    )

    health = commands.add_parser(
        "health",
        help="read a health endpoint; exit 1 unless it passes or warns (a HEALTHCHECK command)",
    )
    health.add_argument("url", help="the endpoint, e.g. http://127.0.0.1:8081/health")
    health.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    health.add_argument("--json", action="store_true", help="print the health+json document")

    args = parser.parse_args(argv)
    if args.command == "health":
        from obskit.health.client import check_endpoint

        return check_endpoint(args.url, timeout_s=args.timeout, as_json=args.json, out=sys.stdout)
    if args.command == "demo":
        from obskit.demo import run_demo

        return run_demo(seconds=args.seconds, rps=args.rps, seed=args.seed, out_dir=args.out)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
