"""A load generator in its own process, so that the clients do not share the servers' GIL.

The parent sends a job (where to POST, which Slack payloads, how), the child signs each payload
the moment it sends it, as Slack would, and sends back the answer times and status codes.

    gen = Generator(secret); result = gen.run(Job(url, payloads, concurrency=50)); gen.close()
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import statistics
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlencode

import httpx

from phasegate.slack.signature import sign


@dataclass
class Job:
    url: str
    payloads: list[dict[str, Any]]
    concurrency: int = 50  # a burst: this many requests in flight at any time
    rate: float | None = None  # open loop instead: this many requests a second, whatever the answers


@dataclass
class Result:
    latencies: list[float]  # seconds, one per request
    statuses: dict[int, int] = field(default_factory=dict)
    wall: float = 0.0  # first send to last answer
    server_cpu: float = 0.0  # CPU seconds the serving process spent meanwhile (set by the parent)

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.latencies) if self.latencies else 0.0

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)


async def _send(client: httpx.AsyncClient, secret: str, url: str, payload: dict[str, Any]) -> tuple[float, int]:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
               "X-Slack-Signature": sign(secret, stamp, body)}
    started = time.perf_counter()
    try:
        status = (await client.post(url, content=body, headers=headers)).status_code
    except httpx.HTTPError:
        status = 599
    return time.perf_counter() - started, status


async def _run(secret: str, job: Job) -> Result:
    limits = httpx.Limits(max_connections=job.concurrency, max_keepalive_connections=job.concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await _send(client, secret, job.url.replace("/slack/interactions", "/healthz"), {})  # connect once
        started = time.perf_counter()
        if job.rate:
            async def at(i: int, payload: dict[str, Any]) -> tuple[float, int]:
                await asyncio.sleep(max(0.0, started + i / float(job.rate or 1) - time.perf_counter()))
                return await _send(client, secret, job.url, payload)
            answers = await asyncio.gather(*(at(i, p) for i, p in enumerate(job.payloads)))
        else:
            queue = list(reversed(job.payloads))
            answers = []

            async def worker() -> None:
                while queue:
                    answers.append(await _send(client, secret, job.url, queue.pop()))
            await asyncio.gather(*(worker() for _ in range(job.concurrency)))
        wall = time.perf_counter() - started
    statuses: dict[int, int] = {}
    for _, status in answers:
        statuses[status] = statuses.get(status, 0) + 1
    return Result(latencies=[latency for latency, _ in answers], statuses=statuses, wall=wall)


def _child(secret: str, conn: Connection) -> None:
    while (job := conn.recv()) is not None:
        conn.send(asyncio.run(_run(secret, job)))


class Generator:
    def __init__(self, secret: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self._process = context.Process(target=_child, args=(secret, theirs), daemon=True)
        self._process.start()

    def run(self, job: Job) -> Result:
        """Run the job; also measures the CPU time this (the serving) process spends meanwhile, all
        threads together: a figure that the machine's other load disturbs far less than wall time."""
        started = time.process_time()
        self._conn.send(job)
        result: Result = self._conn.recv()
        result.server_cpu = time.process_time() - started
        return result

    def close(self) -> None:
        self._conn.send(None)
        self._process.join(timeout=10)
