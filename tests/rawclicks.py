"""Signed clicks sent as a burst over raw keep-alive HTTP/1.1 connections, from a process of its own.

An httpx client costs a few milliseconds of CPU a request; on a loaded 2-core machine the client's
own process then falls behind, and the time it measures is mostly its own wait for the CPU (it even
leaves connections idle long enough for the server to close them). This client writes each request
with one `write` and reads the answer with the stream's buffered reads: a small fraction of that,
so what it measures is the endpoint's answer.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any
from urllib.parse import urlencode, urlsplit

from phasegate.slack.signature import sign

NO_ANSWER = 599  # the status recorded for a request that got no answer (connection lost, timeout)


def burst(url: str, secret: str, payloads: list[dict[str, Any]], concurrency: int) -> list[tuple[int, float]]:
    """(HTTP status, seconds to the answer) of each payload, `concurrency` in flight, sent from a
    process of its own (the endpoint's interpreter lock is not the client's)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as clients:
        return clients.submit(send, url, secret, payloads, concurrency).result(timeout=300)


def send(url: str, secret: str, payloads: list[dict[str, Any]], concurrency: int) -> list[tuple[int, float]]:
    return asyncio.run(sending(url, secret, payloads, concurrency))


async def sending(url: str, secret: str, payloads: list[dict[str, Any]],
                  concurrency: int) -> list[tuple[int, float]]:
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
    bodies = [urlencode({"payload": json.dumps(payload)}).encode() for payload in reversed(payloads)]
    answers: list[tuple[int, float]] = []

    async def clicker() -> None:
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while bodies:
            body = bodies.pop()
            stamp = str(int(time.time()))  # signed the moment it is sent, as Slack does
            request = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                       "Content-Type: application/x-www-form-urlencoded\r\n"
                       f"X-Slack-Request-Timestamp: {stamp}\r\nX-Slack-Signature: {sign(secret, stamp, body)}\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            started = time.perf_counter()
            try:
                if connection is None:
                    connection = await asyncio.open_connection(host, port)
                status, keep = await asyncio.wait_for(exchange(*connection, request), 30)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                status, keep = NO_ANSWER, False
            answers.append((status, time.perf_counter() - started))
            if not keep and connection is not None:
                connection[1].close()
                connection = None
        if connection is not None:
            connection[1].close()

    await asyncio.gather(*(clicker() for _ in range(concurrency)))
    return answers


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bool]:
    """Send one request and read its answer: (status, whether the connection stays open)."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while (size := int((await reader.readline()).strip() or b"0", 16)) > 0:
            await reader.readexactly(size + 2)
        await reader.readline()
    return status, headers.get("connection", "").lower() != "close"
