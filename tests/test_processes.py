"""Exit, signals and processes: what was logged arrives, each scenario in a real subprocess.

Each script logs through real exporters (JSON lines, SQLite files) and ends the way real
programs end: falling off the end, SIGTERM, ``os.fork``, ``multiprocessing`` pools, several
processes sharing one rotated file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

import obskit
from obskit import pipeline, store
from obskit.spool import Spool

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals and fork are POSIX")


def run(script: str, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter (bounded in time, children included)."""
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a hang is killed with its children
    )
    try:
        out, err = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        raise
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def lines(path: Path) -> list[dict[str, object]]:
    """The log lines of ``path`` and its rotated files (each process' final metric collection
    writes metric lines too)."""
    found: list[dict[str, object]] = []
    for file in sorted(path.parent.glob(path.name + "*")):
        found += [json.loads(line) for line in file.read_text("utf-8").splitlines()]
    return [line for line in found if line["signal"] == "log"]


# -- SIGTERM and SIGINT ------------------------------------------------------------------------


SIGTERM_SCRIPT = """
    import os, signal, sys, time
    import obskit
    from obskit.exporters import JsonLinesExporter
    {before}
    obskit.init(exporters=[JsonLinesExporter(sys.argv[1])], install_hooks=False, {options})
    log = obskit.get_logger("worker")
    for n in range(300):
        log.info("line", n=n)
    {stop}
    time.sleep(30)  # only reached if the signal did not end the process
"""


def test_sigterm_right_after_logging_delivers_300_of_300(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    script = SIGTERM_SCRIPT.format(
        before="", options="", stop="os.kill(os.getpid(), signal.SIGTERM)"
    )
    result = run(script, str(out))
    assert result.returncode == -signal.SIGTERM  # still ends by the signal, as without obskit
    assert sorted(line["n"] for line in lines(out)) == list(range(300))


def test_sigterm_from_outside_while_the_app_sleeps_delivers_everything(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    script = SIGTERM_SCRIPT.format(before="", options="", stop="print('ready', flush=True)")
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == -signal.SIGTERM
    finally:
        child.kill()
        child.wait()
    assert len(lines(out)) == 300


def test_sigterm_runs_the_apps_own_handler_after_the_flush(tmp_path: Path) -> None:
    out, marker = tmp_path / "out.jsonl", tmp_path / "marker"
    before = f"""
    def graceful(signum, frame):
        open({str(marker)!r}, "w").write(str(len(open(sys.argv[1]).readlines())))
        sys.exit(3)
    signal.signal(signal.SIGTERM, graceful)
    """
    script = SIGTERM_SCRIPT.format(
        before=textwrap.indent(textwrap.dedent(before), "    ").strip(),
        options="",
        stop="os.kill(os.getpid(), signal.SIGTERM)",
    )
    result = run(script, str(out))
    assert result.returncode == 3, result.stderr
    assert marker.read_text() == "300"  # the app's handler saw every line already written


def test_sigint_still_raises_keyboard_interrupt_after_the_flush(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    script = SIGTERM_SCRIPT.format(
        before="",
        options="",
        stop="""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except KeyboardInterrupt:
        print("interrupted", len(open(sys.argv[1]).readlines()))
        sys.exit(0)""",
    )
    result = run(script, str(out))
    assert result.returncode == 0 and result.stdout.split() == ["interrupted", "300"]


def test_flush_on_signals_can_be_turned_off() -> None:
    before = signal.getsignal(signal.SIGTERM)
    obskit.init(exporters=[], flush_on_signals=False)
    assert signal.getsignal(signal.SIGTERM) is before
    obskit.init(exporters=[])
    assert signal.getsignal(signal.SIGTERM) is pipeline._on_signal
    obskit.shutdown()
    assert signal.getsignal(signal.SIGTERM) is before  # shutdown puts the handler back


# -- fork ------------------------------------------------------------------------------------


FORK_SCRIPT = """
    import os, sys, threading, time
    import obskit
    from obskit.exporters import JsonLinesExporter, SQLiteExporter
    exporter = {exporter}
    obskit.init(exporters=[exporter], install_hooks=False, schedule_delay_s=0.001)
    log = obskit.get_logger("fork")
    stop = threading.Event()

    def parent_writes():
        n = 0
        while not stop.is_set():
            log.info("parent", who="parent", n=n)
            n += 1
            if n % 10 == 0:
                time.sleep(0.001)  # busy, yet leaving SQLite's lock to other writers at times

    writer = threading.Thread(target=parent_writes)
    writer.start()
    children = []
    for child in range(5):
        time.sleep(0.05)  # the worker is mid-export, holding the exporter's lock, often
        pid = os.fork()
        if pid == 0:
            for n in range(20):
                log.info("child", who=f"child{{child}}", n=n)
            sys.exit(0)  # a normal exit: atexit flushes the child's pipeline
        children.append(pid)
    deadline = time.monotonic() + 30
    for pid in children:
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                print("HANG", flush=True)
                os._exit(9)
            time.sleep(0.01)
    stop.set()
    writer.join()
"""


def test_fork_while_json_lines_writes_keeps_child_and_parent_lines(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    exporter = f"JsonLinesExporter({str(out)!r})"
    result = run(FORK_SCRIPT.format(exporter=exporter), timeout_s=90)
    assert result.returncode == 0, result.stdout + result.stderr
    who = Counter(str(line["who"]) for line in lines(out))
    assert all(who[f"child{c}"] == 20 for c in range(5)), who
    assert who["parent"] > 0


def test_fork_while_sqlite_writes_keeps_child_and_parent_rows(tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    exporter = f"SQLiteExporter({str(db)!r})"
    result = run(FORK_SCRIPT.format(exporter=exporter), timeout_s=90)
    assert result.returncode == 0, result.stdout + result.stderr
    with store.open(db) as database:
        who = Counter(str(r.fields["who"]) for r in database.logs(limit=10**7))
    assert all(who[f"child{c}"] == 20 for c in range(5)), who
    assert who["parent"] > 0


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_multiprocessing_pool_delivers_every_line(method: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    script = tmp_path / "pool_app.py"  # spawn and forkserver re-import the main module's file
    script.write_text(
        textwrap.dedent("""
        import multiprocessing, sys
        import obskit
        from obskit.exporters import JsonLinesExporter
        obskit.init(exporters=[JsonLinesExporter(sys.argv[1])], install_hooks=False)
        log = obskit.get_logger("pool")

        def work(n):
            log.info("task", n=n)
            return n

        if __name__ == "__main__":
            context = multiprocessing.get_context(sys.argv[2])
            with context.Pool(4) as pool:  # leaving the block terminates the workers (SIGTERM)
                assert sorted(pool.map(work, range(200))) == list(range(200))
            with context.Pool(2) as pool:  # close and join: the workers end by themselves
                pool.map(work, range(200, 300))
                pool.close()
                pool.join()
        """)
    )
    result = subprocess.run(
        [sys.executable, str(script), str(out), method],
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )
    assert result.returncode == 0, result.stderr
    numbers = sorted(int(str(line["n"])) for line in lines(out))
    assert numbers == list(range(300))


def test_several_processes_rotating_one_file_rotate_once_and_lose_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "shared.jsonl"
    script = """
        import os, sys
        import obskit
        from obskit.exporters import JsonLinesExporter
        exporter = JsonLinesExporter(sys.argv[1], max_bytes=50_000, backup_count=1000)
        obskit.init(exporters=[exporter], install_hooks=False, max_batch_size=50)
        log = obskit.get_logger("rot")
        for n in range(3000):
            log.info("line", who=os.getpid(), n=n)
    """
    children = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), str(out)])
        for _ in range(4)
    ]
    for child in children:
        assert child.wait(timeout=120) == 0
    found = lines(out)
    assert len(found) == 4 * 3000
    assert len({(line["who"], line["n"]) for line in found}) == 4 * 3000
    sizes = [p.stat().st_size for p in tmp_path.glob("shared.jsonl.*")]
    # rotation happened where it should, once per size step, each file near max_bytes
    assert len(sizes) >= 10 and all(size <= 50_000 for size in sizes)


# -- the spool at exit -----------------------------------------------------------------------


def test_the_spool_takes_what_is_logged_while_the_process_exits(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    script = """
        import atexit, sys
        atexit.register(lambda: obskit.get_logger("late").info("after the flush"))
        import obskit
        from obskit.exporters import WebhookExporter
        obskit.init(exporters=[WebhookExporter("http://127.0.0.1:9/down")],
                    spool_dir=sys.argv[1], shutdown_timeout_s=1, install_hooks=False)
        for n in range(50):
            obskit.get_logger("app").info("line", n=n)
    """
    result = run(script, str(spool))
    assert result.returncode == 0, result.stderr
    reader = Spool(spool / "WebhookExporter")
    events = []
    while (claim := reader.claim()) is not None:
        events += [record.event for record in claim[1] if record.kind == "log"]
        reader.release(claim[0])
    assert Counter(events) == {"line": 50, "after the flush": 1}
