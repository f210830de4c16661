"""The ``obskit`` command: ``demo``; ``report``, ``logs``, ``errors`` and ``dashboard`` read the
SQLite store; ``health`` reads a health endpoint; ``export`` writes alert rules and routing for
Prometheus and Alertmanager."""

from __future__ import annotations

import argparse
import os
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

    _add_store_commands(commands)

    _add_dashboard_command(commands)

    health = commands.add_parser(
        "health",
        help="read a health endpoint; exit 1 unless it passes or warns (a HEALTHCHECK command)",
    )
    health.add_argument("url", help="the endpoint, e.g. http://127.0.0.1:8081/health")
    health.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    health.add_argument("--json", action="store_true", help="print the health+json document")

    _add_export_commands(commands)

    args = parser.parse_args(argv)
    if args.command == "export":
        return _run_export(args)
    if args.command in ("report", "logs", "errors"):
        return _run_store_command(args)
    if args.command == "dashboard":
        return _run_dashboard(args)
    if args.command == "health":
        from obskit.health.client import check_endpoint

        return check_endpoint(args.url, timeout_s=args.timeout, as_json=args.json, out=sys.stdout)
    if args.command == "demo":
        from obskit.demo import run_demo

        return run_demo(seconds=args.seconds, rps=args.rps, seed=args.seed, out_dir=args.out)
    parser.error(f"unknown command {args.command!r}")
    return 2


def _add_store_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``report``, ``logs`` and ``errors``: read the SQLite store (``obskit.store``)."""
    default_db = os.environ.get("OBSKIT_SQLITE_PATH", "obskit.db")
    db_help = f"the SQLite database to read (default {default_db}; env OBSKIT_SQLITE_PATH)"
    report = commands.add_parser("report", help="summarise what the SQLite store holds")
    logs = commands.add_parser("logs", help="show recent log records from the SQLite store")
    errors = commands.add_parser("errors", help="show error groups from the SQLite store")
    for sub in (report, logs, errors):
        sub.add_argument("--db", default=default_db, help=db_help)
    for sub in (report, logs):
        sub.add_argument("--since", help="only records newer than this: 30s, 15m, 2h, 1d")
    logs.add_argument("--level", help="minimum level: debug, info, warning, error, critical")
    logs.add_argument("--logger", help="only this logger (and its children)")
    logs.add_argument("--grep", help="only messages containing this text (case-insensitive)")
    logs.add_argument("--trace", help="only records of this trace id")
    logs.add_argument("-n", "--limit", type=int, default=50, help="how many (default 50)")
    logs.add_argument("--json", action="store_true", help="print JSON lines")
    errors.add_argument("-n", "--limit", type=int, default=20, help="how many (default 20)")
    errors.add_argument(
        "--by", choices=("count", "last_seen"), default="count", help="order (default count)"
    )
    errors.add_argument(
        "--resolve",
        metavar="FINGERPRINT",
        help="mark a group resolved for every process (a unique prefix will do); its next "
        "event marks it regressed",
    )


def _add_export_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser(
        "export", help="write alert rules or routing for Prometheus and Alertmanager"
    )
    kinds = export.add_subparsers(dest="what", required=True)
    for name, text in (
        ("prometheus-rules", "a Prometheus rule file (recording and alerting rules)"),
        ("alertmanager-config", "an Alertmanager configuration (routes, receivers, inhibition)"),
    ):
        sub = kinds.add_parser(name, help=text)
        sub.add_argument(
            "source",
            help="a rule file (.yaml, .yml, .json) or a Python file that sets up alerts (its "
            "AlertEngine, or the default engine)",
        )
        sub.add_argument("-o", "--output", help="write here (default: standard output)")
        sub.add_argument(
            "--strict", action="store_true", help="exit 1 if anything has no equivalent"
        )
        sub.add_argument(
            "--import",
            dest="modules",
            action="append",
            default=[],
            metavar="MODULE",
            help="import this module first (where the app declares its metrics); repeatable",
        )


def _run_export(args: argparse.Namespace) -> int:
    import importlib

    from obskit.alerts import source_engine
    from obskit.diagnostics import ConfigError

    try:
        for module in args.modules:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ConfigError(f"--import {module}: {exc}") from None
        engine = source_engine(args.source)
        try:
            if args.what == "prometheus-rules":
                export = engine.export_prometheus_rules(strict=args.strict)
            else:
                export = engine.export_alertmanager_config(strict=args.strict)
        finally:
            engine.close(timeout_s=1.0)
    except ConfigError as exc:
        print(f"obskit export {args.what}: {exc}", file=sys.stderr)
        return 1
    if args.output:
        export.write(args.output)
    else:
        sys.stdout.write(export.text)
    if export.report():
        print(export.report(), file=sys.stderr)
    return 0


def _add_dashboard_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    default_db = os.environ.get("OBSKIT_SQLITE_PATH", "obskit.db")
    dashboard = commands.add_parser(
        "dashboard", help="serve a read-only web dashboard over the SQLite store"
    )
    dashboard.add_argument(
        "--db", default=default_db, help=f"the SQLite database to read (default {default_db})"
    )
    dashboard.add_argument("--port", type=int, default=8050, help="port (default 8050; 0: any)")
    dashboard.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine)"
    )
    dashboard.add_argument(
        "--token",
        default=os.environ.get("OBSKIT_DASHBOARD_TOKEN"),
        help="required on every request; needed to bind a non-loopback host "
        "(env OBSKIT_DASHBOARD_TOKEN)",
    )


def _run_dashboard(args: argparse.Namespace) -> int:
    from obskit.dashboard import DashboardServer
    from obskit.diagnostics import ConfigError

    try:
        server = DashboardServer(args.db, host=args.host, port=args.port, token=args.token)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"obskit dashboard: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"obskit dashboard: reading {os.path.abspath(args.db)}")
    if args.token:
        print(f"obskit dashboard: every request needs the token (host {args.host})")
    print(f"obskit dashboard: open {server.url}  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def _run_store_command(args: argparse.Namespace) -> int:
    import sqlite3

    from obskit import _store_report as views
    from obskit import store

    try:
        since = views.parse_since(args.since) if getattr(args, "since", None) else None
    except ValueError:
        print(f"obskit {args.command}: --since {args.since!r} is not like 30s, 15m, 2h or 1d")
        return 2
    try:
        with store.open(args.db) as db:
            if args.command == "report":
                views.print_report(db, sys.stdout, since=since)
            elif args.command == "errors" and args.resolve:
                found = db.resolve(args.resolve)
                if found is None:
                    print(f"obskit errors: no single group matches {args.resolve!r}")
                    return 1
                print(f"resolved {found}")
            elif args.command == "errors":
                views.print_errors(db, sys.stdout, limit=args.limit, order_by=args.by)
            else:
                views.print_logs(
                    db,
                    sys.stdout,
                    as_json=args.json,
                    limit=args.limit,
                    level=args.level,
                    logger=args.logger,
                    contains=args.grep,
                    trace_id=args.trace,
                    since=since,
                )
    except (FileNotFoundError, sqlite3.Error) as exc:
        print(f"obskit {args.command}: cannot read {args.db}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
