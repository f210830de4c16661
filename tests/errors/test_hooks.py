"""Global hooks: chained (never replaced), capture uncaught errors, and come out cleanly."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from typing import Any

import pytest

import obskit
from obskit import diagnostics
from obskit.exporters import InMemoryExporter

HOOK_NAMES = [
    "sys.excepthook",
    "threading.excepthook",
    "sys.unraisablehook",
    "asyncio exception handler",
]


class Recorder:
    """Stands in for whatever hook was installed before obskit's."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)


def current_hooks() -> list[Any]:
    return [
        sys.excepthook,
        threading.excepthook,
        sys.unraisablehook,
        asyncio.BaseEventLoop.call_exception_handler,
    ]


def test_init_chains_the_hooks_silently_and_shutdown_restores_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = current_hooks()
    memory = InMemoryExporter()
    obskit.init(exporters=[memory])
    assert obskit.errors.installed_hooks() == HOOK_NAMES
    assert all(now is not then for now, then in zip(current_hooks(), before, strict=True))
    assert capsys.readouterr() == ("", "")  # init prints nothing unless debug=True
    obskit.init(exporters=[memory], debug=True)  # re-init replaces, never stacks
    assert sys.excepthook.previous is before[0]  # type: ignore[attr-defined]
    said = capsys.readouterr().err
    assert "obskit: chained sys.excepthook, threading.excepthook" in said
    assert "exporters InMemoryExporter" in said
    obskit.shutdown()
    assert current_hooks() == before
    assert obskit.errors.installed_hooks() == []


def test_install_hooks_false_installs_nothing() -> None:
    before = current_hooks()
    obskit.init(exporters=[InMemoryExporter()], install_hooks=False)
    assert current_hooks() == before and obskit.errors.installed_hooks() == []


def test_uncaught_exception_is_captured_then_the_previous_excepthook_runs(
    memory: InMemoryExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = Recorder()
    monkeypatch.setattr(sys, "excepthook", previous)
    obskit.init(exporters=[memory])
    try:
        raise LookupError("nobody caught me")
    except LookupError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    obskit.flush()
    (event,) = memory.errors
    assert event.title == "LookupError: nobody caught me"
    assert event.exceptions[0]["mechanism"] == {"type": "sys.excepthook", "handled": False}
    assert len(previous.calls) == 1 and previous.calls[0][0] is LookupError


def test_uncaught_thread_exception_is_captured_then_the_previous_hook_runs(
    memory: InMemoryExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = Recorder()
    monkeypatch.setattr(threading, "excepthook", previous)
    obskit.init(exporters=[memory])

    def work() -> None:
        raise ConnectionError("worker lost the database")

    thread = threading.Thread(target=work, name="worker-1")
    thread.start()
    thread.join()
    obskit.flush()
    (event,) = memory.errors
    assert event.title == "ConnectionError: worker lost the database"
    assert event.context["thread"] == "worker-1"
    assert event.exceptions[0]["mechanism"]["type"] == "threading.excepthook"
    assert len(previous.calls) == 1


def test_unraisable_exception_is_captured_then_the_previous_hook_runs(
    memory: InMemoryExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = Recorder()
    monkeypatch.setattr(sys, "unraisablehook", previous)
    obskit.init(exporters=[memory])

    class Leaky:
        def __del__(self) -> None:
            raise OSError("could not close the file")

    Leaky()
    gc.collect()
    obskit.flush()
    (event,) = memory.errors
    assert event.title == "OSError: could not close the file"
    assert "Leaky" in event.context["object"]
    assert len(previous.calls) == 1


def test_asyncio_loop_errors_are_captured_then_the_loops_handler_runs(
    memory: InMemoryExporter,
) -> None:
    obskit.init(exporters=[memory])
    handled: list[dict[str, Any]] = []

    def explode() -> None:
        raise ArithmeticError("bad callback")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: handled.append(context))
        loop.call_soon(explode)
        await asyncio.sleep(0.01)
        loop.call_exception_handler({"message": "socket went away"})

    asyncio.run(main())
    obskit.flush()
    (event,) = memory.errors  # a report without an exception is a warning: not captured
    assert event.title == "ArithmeticError: bad callback"
    assert event.exceptions[0]["mechanism"]["type"] == "asyncio"
    assert [context["message"] for context in handled][1] == "socket went away"


def test_errors_already_captured_by_instrument_are_not_captured_twice(
    memory: InMemoryExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "excepthook", Recorder())
    obskit.init(exporters=[memory])

    @obskit.instrument
    def job() -> None:
        raise ValueError("once")

    try:
        job()
    except ValueError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    obskit.flush()
    assert len(memory.errors) == 1


def test_a_hook_installed_on_top_of_obskits_survives_uninstall(
    memory: InMemoryExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Recorder()
    monkeypatch.setattr(sys, "excepthook", original)
    obskit.init(exporters=[memory])
    ours = sys.excepthook
    later = Recorder()

    def someone_elses(*args: Any) -> None:
        later(*args)
        ours(*args)

    sys.excepthook = someone_elses
    obskit.shutdown()
    assert sys.excepthook is someone_elses  # not clobbered
    exc = ValueError("after shutdown")
    sys.excepthook(ValueError, exc, None)
    assert len(later.calls) == 1 and len(original.calls) == 1  # the chain still runs
    assert obskit.errors.groups() == []  # ours is now a pass-through


def test_a_failing_capture_never_breaks_the_chain(
    memory: InMemoryExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = Recorder()
    monkeypatch.setattr(sys, "excepthook", previous)
    obskit.init(exporters=[memory])

    def broken_capture(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("capture bug")

    monkeypatch.setattr(obskit.errors, "current", broken_capture)
    exc = ValueError("x")
    sys.excepthook(ValueError, exc, None)
    assert len(previous.calls) == 1
    assert diagnostics.problem_counts()["hook.sys.excepthook"] == 1


def test_loops_obskit_cannot_reach_can_use_its_exception_handler(
    memory: InMemoryExporter,
) -> None:
    obskit.init(exporters=[memory], install_hooks=False)
    loop = asyncio.new_event_loop()
    try:
        loop.set_exception_handler(obskit.errors.asyncio_exception_handler)
        loop.call_soon(lambda: 1 / 0)
        loop.run_until_complete(asyncio.sleep(0.01))
    finally:
        loop.close()
    obskit.flush()
    (event,) = memory.errors
    assert event.title == "ZeroDivisionError: division by zero"


def test_a_task_exception_never_retrieved_is_captured(memory: InMemoryExporter) -> None:
    obskit.init(exporters=[memory])
    reported: list[str] = []

    async def lost() -> None:
        raise KeyError("nobody awaited me")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: reported.append(context["message"]))
        task = loop.create_task(lost())
        await asyncio.sleep(0.01)
        del task
        gc.collect()

    asyncio.run(main())
    obskit.flush()
    (event,) = memory.errors
    assert event.title == "KeyError: 'nobody awaited me'"
    assert reported == ["Task exception was never retrieved"]
