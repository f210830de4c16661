"""The real Prometheus, promtool, Alertmanager and amtool (Debian packages ``prometheus`` and
``prometheus-alertmanager``) on loopback ports, started per test and always stopped.

Tests that need a binary skip with the reason when it is missing; ``.ci/run`` installs both
packages when they are missing, so CI runs them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
}
_NAMES = {"alertmanager": ("prometheus-alertmanager", "alertmanager")}


def find(tool: str) -> str | None:
    for name in _NAMES.get(tool, (tool,)):
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def need(tool: str) -> str:
    """The path of ``tool``, or skip the test saying which Debian package provides it."""
    path = find(tool)
    if path is None:
        pytest.skip(
            f"needs the real {tool} binary (Debian package {PACKAGES[tool]}; .ci/run installs "
            f"it with apt-get install -y {PACKAGES[tool]})"
        )
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(tool: str, *args: str, cwd: Path | None = None, timeout_s: float = 60) -> tuple[int, str]:
    """Run a command-line tool; its exit status and combined output."""
    done = subprocess.run(
        [need(tool), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def get_json(url: str, timeout_s: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.loads(response.read())


def wait_for(condition: Any, timeout_s: float, what: str, interval_s: float = 0.1) -> Any:
    """Poll ``condition()`` until it returns something truthy (a real server's own timing)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(interval_s)


class _PortTaken(Exception):
    """The server could not bind the port it was given (taken since it was found free)."""


@contextmanager
def _server(argv_for: Callable[[int], list[str]], ready_path: str, workdir: Path) -> Iterator[str]:
    """Start ``argv_for(port)`` on a free loopback port; yield its base URL once it answers
    ``ready_path``. A port another process took between the probe and the bind is replaced
    (three tries)."""
    for attempt in range(3):
        try:
            with _one_server(argv_for, ready_path, workdir) as url:
                yield url
                return
        except _PortTaken:
            if attempt == 2:
                raise


@contextmanager
def _one_server(
    argv_for: Callable[[int], list[str]], ready_path: str, workdir: Path
) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = argv_for(port)
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def ready() -> bool:
        if process.poll() is not None:
            output = (workdir / "server.log").read_text(errors="replace")
            if "address already in use" in output:
                raise _PortTaken(output)
            raise AssertionError(f"{argv[0]} exited with {process.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(url + ready_path, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_for(ready, 60, f"{Path(argv[0]).name} to be ready", 0.05)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        log.close()


@contextmanager
def alertmanager(config: str) -> Iterator[str]:
    """Alertmanager with ``config`` (YAML) on a free loopback port; yields its base URL."""
    binary = need("alertmanager")
    with tempfile.TemporaryDirectory(prefix="obskit-am-") as tmp:
        workdir = Path(tmp)
        (workdir / "alertmanager.yml").write_text(config)

        def argv(port: int) -> list[str]:
            return [
                binary,
                f"--config.file={workdir / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ]

        with _server(argv, "/-/ready", workdir) as url:
            yield url


@contextmanager
def prometheus(
    config: str, files: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Iterator[str]:
    """Prometheus with ``config`` (YAML) and extra ``files`` (rule files, by name) beside it,
    and extra command-line ``args``, on a free loopback port; yields its base URL."""
    binary = need("prometheus")
    with tempfile.TemporaryDirectory(prefix="obskit-prom-") as tmp:
        workdir = Path(tmp)
        (workdir / "prometheus.yml").write_text(config)
        for name, text in (files or {}).items():
            (workdir / name).write_text(text)

        def argv(port: int) -> list[str]:
            return [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
                *args,
            ]

        with _server(argv, "/-/ready", workdir) as url:
            yield url


def alertmanager_webhook_config(
    receiver_url: str,
    *,
    group_by: tuple[str, ...] = ("alertname",),
    group_wait: str = "1s",
    group_interval: str = "1s",
    repeat_interval: str = "1h",
) -> str:
    """An Alertmanager config that sends every group to one webhook, quickly."""
    return json.dumps(
        {
            "route": {
                "receiver": "hook",
                "group_by": list(group_by),
                "group_wait": group_wait,
                "group_interval": group_interval,
                "repeat_interval": repeat_interval,
            },
            "receivers": [
                {"name": "hook", "webhook_configs": [{"url": receiver_url, "send_resolved": True}]}
            ],
        }
    )
