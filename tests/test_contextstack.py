"""The context stack: nesting, restoring, and isolation across tasks and threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

import obskit
from obskit.contextstack import ContextExecutor, run_in_executor, wrap
from obskit.exporters import InMemoryExporter


def test_nested_contexts_merge_inner_wins_and_restore() -> None:
    with obskit.context(a=1, b=1):
        with obskit.context(b=2, c=3):
            assert obskit.current_context() == {"a": 1, "b": 2, "c": 3}
        assert obskit.current_context() == {"a": 1, "b": 1}
    assert obskit.current_context() == {}


def test_exit_restores_outer_state_when_an_exception_passes() -> None:
    with obskit.context(a=1):
        with pytest.raises(RuntimeError), obskit.context(a=2, b=2):
            raise RuntimeError("boom")
        assert obskit.current_context() == {"a": 1}


def test_bind_and_unbind() -> None:
    with obskit.context(a=1):
        obskit.bind(b=2)
        assert obskit.current_context() == {"a": 1, "b": 2}
        obskit.unbind("a")
        assert obskit.current_context() == {"b": 2}
    assert obskit.current_context() == {}


def test_context_as_decorator_sync_and_async() -> None:
    @obskit.context(job="sync")
    def sync_job() -> dict[str, object]:
        return obskit.current_context()

    @obskit.context(job="async")
    async def async_job() -> dict[str, object]:
        return obskit.current_context()

    assert sync_job() == {"job": "sync"}
    assert asyncio.run(async_job()) == {"job": "async"}
    assert obskit.current_context() == {}


def test_new_threads_start_empty_and_wrap_carries_context() -> None:
    seen: dict[str, object] = {}
    with obskit.context(request_id="r-1"):
        plain = threading.Thread(target=lambda: seen.update(plain=obskit.current_context()))
        carried = threading.Thread(
            target=wrap(lambda: seen.update(carried=obskit.current_context()))
        )
        plain.start(), carried.start()
        plain.join(), carried.join()
    assert seen == {"plain": {}, "carried": {"request_id": "r-1"}}


def test_executors_carry_the_submitters_context() -> None:
    with ContextExecutor(max_workers=2) as pool, obskit.context(job="j-1"):
        assert pool.submit(obskit.current_context).result() == {"job": "j-1"}

    async def main() -> tuple[object, object]:
        with obskit.context(job="j-2"):
            from_to_thread = await asyncio.to_thread(obskit.current_context)
            from_executor = await run_in_executor(None, obskit.current_context)
        return from_to_thread, from_executor

    assert asyncio.run(main()) == ({"job": "j-2"}, {"job": "j-2"})


def test_1000_tasks_and_16_threads_each_see_only_their_own_fields(memory: InMemoryExporter) -> None:
    log = obskit.get_logger("iso")

    async def task(n: int) -> None:
        async with obskit.context(task=n, owner=f"task-{n}"):
            for step in range(3):
                log.info("step", step=step)
                await asyncio.sleep(0)
            with obskit.context(inner=n):
                await asyncio.sleep(0)
                log.info("inner")

    async def all_tasks() -> None:
        await asyncio.gather(*(task(n) for n in range(1000)))

    def thread_body(n: int) -> None:
        with obskit.context(thread=n, owner=f"thread-{n}"):
            for step in range(50):
                log.info("tick", step=step)

    threads = [threading.Thread(target=thread_body, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    asyncio.run(all_tasks())
    for thread in threads:
        thread.join()
    assert obskit.flush(timeout_s=30)
    records = memory.logs
    assert len(records) == 1000 * 4 + 16 * 50
    for record in records:
        fields = record.fields
        if "task" in fields:
            assert fields["owner"] == f"task-{fields['task']}"
            assert "thread" not in fields
            if record.event == "inner":
                assert fields["inner"] == fields["task"]
            else:
                assert "inner" not in fields
        else:
            assert fields["owner"] == f"thread-{fields['thread']}"
    assert obskit.pipeline_stats()["exporters"]["InMemoryExporter"]["dropped"] == 0
