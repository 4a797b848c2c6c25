"""A raw keep-alive HTTP/1.1 client in a process of its own, so that the clients share no GIL, no event
loop and no HTTP library's overhead with the servers they measure.

The parent sends a job (where to POST, which Slack payloads, how), the child writes each request by
hand on one of its open connections, signing the payload the moment it sends it as Slack does
(phasegate/slack/signature.py), and sends back the answer times and status codes.

    gen = Generator(secret); result = gen.run(Job(url, payloads, concurrency=50), server_pid); gen.close()

A burst (`concurrency`) keeps that many requests in flight, one connection each. An open-loop run
(`rate`) sends request i at start + i / rate whatever the answers, on a pool of connections, and times
each from its scheduled moment, so a slow answer delays no later measurement (no coordinated omission).
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
from urllib.parse import urlencode, urlsplit

from bench.procs import cpu_seconds, machine_busy_seconds
from phasegate.slack.signature import sign

TIMEOUT = 30.0  # seconds: an answer not complete by then counts as status 599
NO_ANSWER = 599


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
    machine_cpu: float = 0.0  # CPU seconds the whole machine spent busy meanwhile, client included (the parent)

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

    @property
    def cpu_per_request(self) -> float:
        return self.server_cpu / len(self.latencies) if self.latencies else 0.0


class Connection11:
    """One keep-alive HTTP/1.1 connection; reopened after a timeout or a `Connection: close`."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> int:
        """Send one request and read its whole answer; its status, or NO_ANSWER. A kept-alive connection
        the server closed while idle (nothing of an answer read) is reopened and the request sent again,
        once, as an HTTP client library does."""
        reused = self.writer is not None
        try:
            return await asyncio.wait_for(self._exchange(path, headers, body), TIMEOUT)
        except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
            self.close()
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                return NO_ANSWER
        except (TimeoutError, OSError, ValueError):
            self.close()
            return NO_ANSWER
        try:
            return await asyncio.wait_for(self._exchange(path, headers, body), TIMEOUT)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            self.close()
            return NO_ANSWER

    async def _exchange(self, path: str, headers: dict[str, str], body: bytes) -> int:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        self.writer.write(head.encode("latin-1") + body)
        await self.writer.drain()
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {name.strip().lower(): value.strip() for name, _, value in
                  (line.partition(":") for line in lines[1:] if line)}
        if fields.get("transfer-encoding", "").lower() == "chunked":
            while (size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)) > 0:
                await self.reader.readexactly(size + 2)
            await self.reader.readuntil(b"\r\n")  # the empty trailer
        else:
            await self.reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status


def signed(secret: str, payload: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """The headers and body Slack sends for an interaction, signed now."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()))
    return ({"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
             "X-Slack-Signature": sign(secret, stamp, body)}, body)


async def _run(secret: str, job: Job) -> Result:
    parts = urlsplit(job.url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
    pool = [Connection11(host, port) for _ in range(job.concurrency)]
    await asyncio.gather(*(conn.open() for conn in pool))  # connected before the clock starts
    answers: list[tuple[float, int]] = []
    started = time.perf_counter()
    if job.rate:
        free: asyncio.Queue[Connection11] = asyncio.Queue()
        for conn in pool:
            free.put_nowait(conn)

        async def at(i: int, payload: dict[str, Any]) -> None:
            due = started + i / float(job.rate or 1)
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            conn = await free.get()
            status = await conn.post(path, *signed(secret, payload))
            answers.append((time.perf_counter() - due, status))
            free.put_nowait(conn)
        await asyncio.gather(*(at(i, p) for i, p in enumerate(job.payloads)))
    else:
        queue = list(reversed(job.payloads))

        async def worker(conn: Connection11) -> None:
            while queue:
                payload = queue.pop()
                sent = time.perf_counter()
                status = await conn.post(path, *signed(secret, payload))
                answers.append((time.perf_counter() - sent, status))
        await asyncio.gather(*(worker(conn) for conn in pool))
    wall = time.perf_counter() - started
    for conn in pool:
        conn.close()
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

    def run(self, job: Job, server_pid: int) -> Result:
        """Run the job; also measures the CPU time the serving process (all its threads) spends
        meanwhile: a figure that the machine's other load disturbs far less than wall time."""
        before, machine_before = cpu_seconds(server_pid), machine_busy_seconds()
        self._conn.send(job)
        result: Result = self._conn.recv()
        result.server_cpu = cpu_seconds(server_pid) - before
        result.machine_cpu = machine_busy_seconds() - machine_before
        return result

    def close(self) -> None:
        self._conn.send(None)
        self._process.join(timeout=10)
