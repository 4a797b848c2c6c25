"""`GET /readyz`: whether this endpoint replica can do its work now, for a load balancer.

`/healthz` says the process is alive; `/readyz` says its dependencies answer: the ledger (a
`SELECT 1`) and the Prefect API (its `/health`), since a click is recorded in the one and wakes a
run through the other. A replica that cannot reach them answers 503 with the reason, so the
balancer sends the clicks to a replica that can.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from phasegate.ledger.db import transaction

PROBE_TIMEOUT = 2.0  # seconds; a balancer's probe should not wait longer than that for an answer


def ledger_problem(sessions: sessionmaker[Session]) -> str | None:
    try:
        with transaction(sessions, write=False) as session:  # a read: never queues behind writers
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return f"ledger: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return None


def prefect_problem(api_url: str, get: Callable[..., httpx.Response] = httpx.get) -> str | None:
    try:
        response = get(api_url.rstrip("/") + "/health", timeout=PROBE_TIMEOUT)
    except httpx.HTTPError as exc:
        return f"prefect: {api_url} unreachable ({type(exc).__name__})"
    if response.status_code != 200:
        return f"prefect: {api_url}/health answered {response.status_code}"
    return None


def add_readiness(app: FastAPI, sessions: sessionmaker[Session], prefect_api_url: str) -> None:
    """Register `/readyz` on the Slack endpoint's app."""

    @app.get("/readyz")
    def readyz() -> JSONResponse:  # sync: FastAPI runs it in its thread pool, off the event loop
        problems = [p for p in (ledger_problem(sessions), prefect_problem(prefect_api_url)) if p]
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})
