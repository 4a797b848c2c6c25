"""bench.load's raw HTTP/1.1 client against a hand-written server: answers with a length or in chunks
are read whole and the connection kept; a kept-alive connection the server closed while idle is
reopened and the request sent again; a server that never answers counts as 599 after the timeout."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from phasegate.slack.signature import verify

BENCH = Path(__file__).resolve().parent.parent / "bench"
if "bench" not in sys.modules:  # bench/ is not installed, and the repository root stays off sys.path (test_layout)
    spec = importlib.util.spec_from_file_location("bench", BENCH / "__init__.py", submodule_search_locations=[str(BENCH)])
    assert spec is not None and spec.loader is not None
    sys.modules["bench"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules["bench"])
load = importlib.import_module("bench.load")
Connection11, signed = load.Connection11, load.signed

Answer = Callable[[asyncio.StreamWriter, int], Awaitable[bool]]  # (writer, request number) -> keep the connection?


async def serve(answer: Answer, seen: list[bytes], connections: list[int]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                seen.append(head + await reader.readexactly(length))
                if not await answer(writer, len(seen)):
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def exchange(answer: Answer, requests: int) -> tuple[list[int], list[bytes], int]:
    """Post `requests` signed payloads on one Connection11; (statuses, requests seen, connections made)."""
    seen: list[bytes] = []
    connections: list[int] = []

    async def run() -> list[int]:
        server = await serve(answer, seen, connections)
        port = server.sockets[0].getsockname()[1]
        conn = Connection11("127.0.0.1", port)
        statuses = []
        for n in range(requests):
            statuses.append(await conn.post("/slack/interactions", *signed("s3cret", {"n": n})))
        conn.close()
        server.close()
        return statuses

    statuses = asyncio.run(run())
    return statuses, seen, len(connections)


async def with_length(writer: asyncio.StreamWriter, n: int) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    await writer.drain()
    return True


async def chunked(writer: asyncio.StreamWriter, n: int) -> bool:
    writer.write(b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
    await writer.drain()
    return True


async def closes_after_each(writer: asyncio.StreamWriter, n: int) -> bool:
    await with_length(writer, n)
    return False  # closed without saying so, as a server's keep-alive timeout does


def test_answers_read_whole_on_one_kept_connection_and_signed_as_slack_does() -> None:
    statuses, seen, connections = exchange(with_length, 3)
    assert statuses == [200, 200, 200] and connections == 1
    head, body = seen[0].split(b"\r\n\r\n", 1)
    fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    assert head.startswith(b"POST /slack/interactions HTTP/1.1\r\n") and body.startswith(b"payload=")
    assert verify("s3cret", body, fields["X-Slack-Request-Timestamp"], fields["X-Slack-Signature"],
                  now=float(fields["X-Slack-Request-Timestamp"]))


def test_chunked_answers_read_whole() -> None:
    statuses, _, connections = exchange(chunked, 2)
    assert statuses == [401, 401] and connections == 1


def test_a_connection_closed_while_idle_is_reopened_and_the_request_sent_again() -> None:
    statuses, seen, connections = exchange(closes_after_each, 3)
    assert statuses == [200, 200, 200] and len(seen) == 3 and connections == 3


def test_no_answer_within_the_timeout_is_599(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(writer: asyncio.StreamWriter, n: int) -> bool:
        await asyncio.sleep(5)
        return False

    monkeypatch.setattr(load, "TIMEOUT", 0.3)
    statuses, seen, _ = exchange(never, 1)
    assert statuses == [load.NO_ANSWER] and len(seen) == 1
