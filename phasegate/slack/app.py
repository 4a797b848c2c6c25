"""The Slack endpoint over HTTP: `POST /slack/interactions`, `POST /slack/commands` and `GET /healthz`.

Verify, record, answer; everything slow happens after the answer, inside Slack's three seconds for
the answer itself: a modal or an ephemeral reply as a request background task, and the prompt
update and the run's wake-up marked in the ledger with the answer and done by the refresher
(phasegate.gates.refresher), in production a process of its own, so that they never slow the next
clicks' answers. This module checks the request (whole, signed, fresh, decodable) and
hands it to `phasegate.slack.interactions`, the one way in for interactions and slash commands alike
(`phasegate.slack.inbound` names its steps); `phasegate.slack.socket` hands Socket Mode's envelopes
to the same functions.
A click is answered within `SlackDeps.ack_within` (0.5 s) however busy the ledger is: past that it is
acknowledged and finishes after the answer (phasegate.slack.acknowledge). A form's or a slash
command's waits on the ledger (for its turn behind other clicks, for locks) end by a deadline within
those three seconds (phasegate.ledger.writers).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from phasegate.ledger.db import ENDPOINT_PATIENCE
from phasegate.ledger.faults import write_problem
from phasegate.ledger.writers import deadline
from phasegate.slack import gates as slack_gates
from phasegate.slack import inbound
from phasegate.slack.acknowledge import acknowledged, is_click
from phasegate.slack.deps import SlackDeps
from phasegate.slack.inbound import Refused
from phasegate.slack.interactions import on_command, on_request
from phasegate.slack.payloads import BodyRefused, Undecodable, decode_form, decode_payload, read_capped
from phasegate.slack.signature import verify


def create_app(deps: SlackDeps) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(deps.close)  # a refresher of this process's own ends with the endpoint

    app = FastAPI(title="phasegate Slack endpoint", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)

    @app.get("/healthz")
    def healthz() -> Response:
        """200 when the ledger takes a write (a committed heartbeat, phasegate.ledger.faults); 503
        saying what is wrong when it does not (a load balancer or `curl` sees at once why clicks are
        refused): disk full, read-only, unreachable, no answer, schema missing."""
        with deadline(ENDPOINT_PATIENCE):
            problem = write_problem(deps.sessions)
        if problem is not None:
            return JSONResponse({"status": "unavailable", "ledger": f"{problem.fault.value}: {problem}"},
                                status_code=503)
        return JSONResponse({"status": "ok", "ledger": "ok"})

    async def commands(request: Request, background: BackgroundTasks) -> Response:
        with deadline(ENDPOINT_PATIENCE):  # the ledger's waits end within Slack's 3 s, counted from here
            body, refusal = await verified_body(deps, request)
            if refusal is not None:
                return refusal
            try:
                fields = decode_form(body)
            except Undecodable:
                return JSONResponse({"error": "expected a form-encoded slash command"}, status_code=400)
            return await run_sync(on_command, deps, fields, background)

    async def interactions(request: Request, background: BackgroundTasks) -> Response:
        started = time.monotonic()
        with deadline(ENDPOINT_PATIENCE):  # the ledger's waits end within Slack's 3 s, counted from here
            body, refusal = await verified_body(deps, request)
            if refusal is not None:
                return refusal
            try:
                payload = decode_payload(body)
            except Undecodable as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            try:
                read = inbound.interaction(payload, decoded=True)  # once: the click line's hint is read from it too
            except Refused as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            if is_click(payload):  # answered within `ack_within` however busy the ledger is
                return await acknowledged(deps.clicks, deps.sessions, lambda later: on_request(deps, read, later),
                                          background, started=started, within=deps.ack_within,
                                          hint=slack_gates.hint(read))
            return await run_sync(on_request, deps, read, background)

    app.add_route("/slack/commands", plain_route(commands), methods=["POST"])
    app.add_route("/slack/interactions", plain_route(interactions), methods=["POST"])
    return app


def plain_route(handler: Callable[[Request, BackgroundTasks], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """A Slack route as Starlette serves it: the request and the answer's background tasks, without
    FastAPI's parameter solving, which cost each click about as much as its signature check and its
    decoding together (issue 23)."""
    async def endpoint(request: Request) -> Response:
        background = BackgroundTasks()
        response = await handler(request, background)
        response.background = background
        return response

    return endpoint


async def verified_body(deps: SlackDeps, request: Request) -> tuple[bytes, Response | None]:
    """The raw body if it is Slack's (whole, signed, fresh, not oversized); else the refusal to send."""
    try:
        body = await read_capped(request)
    except BodyRefused as exc:
        return b"", JSONResponse({"error": str(exc)}, status_code=exc.status)
    if not verify(deps.signing_secret, body, request.headers.get("x-slack-request-timestamp"),
                  request.headers.get("x-slack-signature"), now=deps.clock()):
        return b"", JSONResponse({"error": "invalid signature"}, status_code=401)
    return body, None


async def run_sync(handler: Callable[..., Response], *args: Any) -> Response:
    """Ledger work is blocking; keep it off the event loop."""
    return await run_in_threadpool(handler, *args)
