"""Reading a health endpoint: ``obskit health URL``, usable as a container ``HEALTHCHECK``.

Standard library only (``urllib``). Any endpoint works: an ``application/health+json`` body is
read for its status and checks; any other body is judged by its HTTP status alone (2xx-3xx
pass, as Kubernetes HTTP probes judge). The exit status is 0 for pass and warn, 1 for fail,
an unreachable endpoint or a body that cannot be read (Docker reserves the code 2).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, TextIO

from obskit.health.model import Status

__all__ = ["check_endpoint", "fetch", "format_report"]


class EndpointError(Exception):
    """The endpoint could not be reached or answered something unreadable."""


def fetch(url: str, timeout_s: float = 5.0) -> tuple[int, dict[str, Any]]:
    """GET ``url``; its HTTP status and health document (built from the status if not JSON)."""
    if "://" not in url:
        url = "http://" + url
    request = urllib.request.Request(
        url, headers={"Accept": "application/health+json, application/json;q=0.9, */*;q=0.1"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            code, body = int(response.status), response.read()
    except urllib.error.HTTPError as exc:  # 503 still carries the report
        code, body = int(exc.code), exc.read()
    except (OSError, ValueError) as exc:
        raise EndpointError(f"cannot reach {url}: {exc}") from exc
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or "status" not in doc:
        doc = {"status": "pass" if 200 <= code < 400 else "fail"}
    return code, doc


def verdict(code: int, doc: Mapping[str, Any]) -> Status:
    """The endpoint's status: its document's, made fail by an HTTP error code."""
    try:
        status = Status.parse(doc.get("status", ""))
    except ValueError:
        return Status.FAIL
    return Status.FAIL if code >= 400 else status


def format_report(doc: Mapping[str, Any], http_status: int | None = None) -> str:
    """A health+json document as a few human lines: the status, then one line per check.

    >>> print(format_report({"status": "warn", "output": "cache: slow", "checks": {
    ...     "db:responseTime": [{"status": "pass", "observedValue": 1.5, "observedUnit": "ms"}],
    ...     "cache:responseTime": [{"status": "warn", "observedValue": 900, "observedUnit": "ms",
    ...                             "output": "slow"}]}}))
    health: WARN  cache: slow
      pass  db:responseTime     1.5 ms
      warn  cache:responseTime  900 ms  slow
    """
    head = f"health: {str(doc.get('status', '?')).upper()}"
    if http_status is not None:
        head += f" (HTTP {http_status})"
    if doc.get("output"):
        head += f"  {doc['output']}"
    lines = [head]
    checks = doc.get("checks") or {}
    width = max((len(str(key)) for key in checks), default=0)
    for key, entries in checks.items():
        for entry in entries if isinstance(entries, list) else [entries]:
            if not isinstance(entry, Mapping):
                continue
            shown = _observed(entry.get("observedValue"), entry.get("observedUnit"))
            line = f"  {entry.get('status', '?'):<4}  {key:<{width}}  {shown}"
            if entry.get("output"):
                line += f"  {entry['output']}"
            lines.append(line.rstrip())
    return "\n".join(lines)


def _observed(value: Any, unit: Any) -> str:
    """An observed value for people: bytes in binary units, the rest as given."""
    if value is None:
        return ""
    if unit == "bytes" and isinstance(value, int | float) and abs(value) >= 1024:
        for scale, name in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if abs(value) >= scale:
                return f"{value / scale:.1f} {name}"
    return f"{value} {unit or ''}".rstrip()


def check_endpoint(url: str, *, timeout_s: float, as_json: bool, out: TextIO) -> int:
    """Fetch, print and judge an endpoint; the process exit status (0 healthy, 1 not)."""
    try:
        code, doc = fetch(url, timeout_s)
    except EndpointError as exc:
        out.write(f"health: FAIL  {exc}\n")
        return 1
    out.write((json.dumps(doc, indent=2) if as_json else format_report(doc, code)) + "\n")
    return 1 if verdict(code, doc) is Status.FAIL else 0
