"""`GET /readyz`: whether this endpoint replica can do its work now, for a load balancer.

`/healthz` says the process is alive and its ledger takes a write; `/readyz` says its dependencies
answer: the ledger, proved by a committed write (the heartbeat row, phasegate.ledger.faults: a read
would answer on a full disk or a read-only ledger, where every click fails), and the Prefect API
(its `/health`), since a click is recorded in the one and wakes a run through the other. A replica that cannot reach them answers 503 with the reason, so the
balancer sends the clicks to a replica that can.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from phasegate.ledger.faults import write_problem
from phasegate.ledger.writers import deadline

PROBE_TIMEOUT = 2.0  # seconds; a balancer's probe should not wait longer than that for an answer


def ledger_problem(sessions: sessionmaker[Session]) -> str | None:
    """None once a write was committed; else what is wrong (disk full, read-only, unreachable, ...)."""
    with deadline(PROBE_TIMEOUT):
        problem = write_problem(sessions)
    return None if problem is None else f"ledger: {problem.fault.value}: {problem}"


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
