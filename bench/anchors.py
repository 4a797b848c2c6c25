"""B-ACK's anchors, each served by uvicorn in a process of its own (`bench.ack` starts them):

    python -m bench.anchors bare --port 8101                              # signature check only
    python -m bench.anchors floor --port 8102 --url sqlite:////tmp/x.db   # + one durable write a click
    python -m bench.anchors floor --port 8103 --url postgresql://postgres@127.0.0.1:5432/NAME

The durable-write floor is the least an endpoint that records decisions can do: read the body, verify
the signature (phasegate/slack/signature.py), read the payload, and commit one decision row keyed by
the delivery id (the interaction's trigger_id) before answering. On SQLite: WAL, synchronous FULL, one
writer connection the requests queue behind; on PostgreSQL: ten connections, each insert its own
committed transaction (synchronous_commit on, the server's default).
"""

from __future__ import annotations

import argparse
import json
import queue
import sqlite3
import time
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
import uvicorn
from anyio import CapacityLimiter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

SECRET = "bench-secret"
PG_CONNECTIONS = 10
TABLE = ("CREATE TABLE IF NOT EXISTS floor_decisions (delivery_id VARCHAR(64) PRIMARY KEY, gate_id INTEGER NOT NULL, "
         "approver VARCHAR(32) NOT NULL, decided_at DOUBLE PRECISION NOT NULL)")


class SqliteFloor:
    """One connection, WAL, synchronous FULL: each click its own BEGIN IMMEDIATE ... COMMIT."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute(TABLE)
        self.limiter = CapacityLimiter(1)

    def write(self, row: tuple[str, int, str, float]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("INSERT INTO floor_decisions VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", row)
        self.conn.execute("COMMIT")


class PostgresFloor:
    """A pool of PG_CONNECTIONS connections; each click one autocommitted (durable) insert."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.pool: queue.Queue[Any] = queue.Queue()
        for _ in range(PG_CONNECTIONS):
            self.pool.put(psycopg.connect(url, autocommit=True))
        conn = self.pool.get()
        conn.execute(TABLE)
        self.pool.put(conn)
        self.limiter = CapacityLimiter(PG_CONNECTIONS)

    def write(self, row: tuple[str, int, str, float]) -> None:
        conn = self.pool.get()
        try:
            conn.execute("INSERT INTO floor_decisions VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING", row)
        finally:
            self.pool.put(conn)


def app(store: SqliteFloor | PostgresFloor | None) -> Starlette:
    """Verify the signature; with a store, also commit the click's decision row before answering."""
    from phasegate.slack.signature import verify

    async def interactions(request: Request) -> Response:
        body = await request.body()
        if not verify(SECRET, body, request.headers.get("x-slack-request-timestamp"),
                      request.headers.get("x-slack-signature"), now=time.time()):
            return PlainTextResponse("invalid signature", status_code=401)
        if store is not None:
            payload = json.loads(parse_qs(body.decode())["payload"][0])
            row = (payload["trigger_id"], int(payload["actions"][0]["value"]), payload["user"]["id"], time.time())
            await anyio.to_thread.run_sync(store.write, row, limiter=store.limiter)
        return Response(status_code=200)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/slack/interactions", interactions, methods=["POST"]),
                             Route("/healthz", healthz)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["bare", "floor"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--url", help="the floor's database: sqlite:///PATH or postgresql://...")
    args = parser.parse_args()
    store: SqliteFloor | PostgresFloor | None = None
    if args.kind == "floor":
        if not args.url:
            parser.error("floor needs --url")
        store = SqliteFloor(args.url.split("///", 1)[1]) if args.url.startswith("sqlite") else PostgresFloor(args.url)
    uvicorn.run(app(store), host="127.0.0.1", port=args.port, log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
