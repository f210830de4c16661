"""An asyncio job worker instrumented with obskit: run ``python examples/asyncio_worker.py``.

A producer enqueues jobs, each carrying the producer's ``traceparent`` as a message broker would
carry it in message headers; a few workers consume them concurrently. Each job runs in an
``obskit.request`` that continues the producer's trace, checks stock with an instrumented httpx
client (a client span and an ``http`` breadcrumb per call, ``traceparent`` injected so the
inventory service continues the trace too), does blocking work in a thread with the job's
context (``obskit.contextstack.to_thread``), and logs. A refund job fails: its error event
carries that job's own breadcrumbs and no other's.

By default the worker starts a small inventory service of its own on loopback (uvicorn with
``ObskitASGIMiddleware``); ``--inventory URL`` points it at another one. It exits when the queue
is drained, after printing a summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import socket
from dataclasses import dataclass, field

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import obskit
from obskit import contextstack, propagation
from obskit.integrations import ObskitASGIMiddleware
from obskit.integrations.httpx import ObskitAsyncTransport

log = obskit.get_logger("worker")
KINDS = ("ship", "ship", "invoice", "refund")


@dataclass
class Job:
    id: str
    kind: str
    sku: str
    headers: dict[str, str] = field(default_factory=dict)  # as a broker carries them


async def stock(request: Request) -> JSONResponse:
    sku = request.path_params["sku"]
    obskit.get_logger("inventory").info("stock checked", sku=sku)
    return JSONResponse({"sku": sku, "available": 5})


inventory_app = Starlette(routes=[Route("/stock/{sku}", stock)])
inventory_app.add_middleware(ObskitASGIMiddleware)


def checksum(sku: str) -> str:
    """Blocking work (runs in a thread, still inside the job's context)."""
    log.info("checksum computed", sku=sku)
    return hashlib.sha256(sku.encode()).hexdigest()[:8]


async def handle(job: Job, client: httpx.AsyncClient) -> None:
    job_scope = obskit.request(f"job {job.kind}", request_id=job.id, kind=job.kind)
    job_scope.continue_trace(job.headers)
    async with job_scope:
        response = await client.get(f"/stock/{job.sku}")
        digest = await contextstack.to_thread(checksum, job.sku)
        if job.kind == "refund":
            raise ValueError(f"refund window closed for {job.sku}")
        log.info("job done", sku=job.sku, available=response.json()["available"], digest=digest)


async def work(queue: asyncio.Queue[Job], client: httpx.AsyncClient, failed: list[str]) -> None:
    while True:
        job = await queue.get()
        try:
            await handle(job, client)
        except Exception:
            failed.append(job.id)  # already an error event, with the job's context and trail
        finally:
            queue.task_done()


async def run(jobs: int, workers: int, inventory: str | None) -> tuple[int, int]:
    server = task = None
    if inventory is None:
        listener = socket.create_server(("127.0.0.1", 0))
        inventory = f"http://127.0.0.1:{listener.getsockname()[1]}"
        config = uvicorn.Config(inventory_app, log_level="critical", lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            await asyncio.sleep(0.01)

    queue: asyncio.Queue[Job] = asyncio.Queue()
    with obskit.request("enqueue jobs"):  # the producer: its trace travels with every job
        for number in range(jobs):
            job = Job(f"job-{number}", KINDS[number % len(KINDS)], f"sku-{number}")
            propagation.inject(job.headers)
            queue.put_nowait(job)
        log.info("jobs enqueued", count=jobs)

    failed: list[str] = []
    transport = ObskitAsyncTransport()
    async with httpx.AsyncClient(transport=transport, base_url=inventory, timeout=30) as client:
        consumers = [asyncio.create_task(work(queue, client, failed)) for _ in range(workers)]
        await queue.join()
        for consumer in consumers:
            consumer.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
    if server is not None and task is not None:
        server.should_exit = True
        await task
    return jobs - len(failed), len(failed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--inventory", help="base URL of the inventory service")
    args = parser.parse_args(argv)

    obskit.init(service="jobs-worker", environment="dev")
    try:
        done, failed = asyncio.run(run(args.jobs, args.workers, args.inventory))
        obskit.flush()
        print(f"processed {done + failed} jobs: {done} done, {failed} failed", flush=True)
    finally:
        obskit.shutdown()


if __name__ == "__main__":
    main()
