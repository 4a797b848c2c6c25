"""The Slack endpoint over HTTP: `POST /slack/interactions`, `POST /slack/commands` and `GET /healthz`.

Verify, record, answer; everything slow happens after the answer, inside Slack's three seconds for
the answer itself: a modal or an ephemeral reply as a request background task, and the prompt
update and the run's wake-up on threads of their own (phasegate.slack.followups), so that they never
slow the next clicks' answers. A click's waits on the ledger (for its turn behind other clicks, for
locks) end by a deadline within those three seconds (phasegate.ledger.writers). This module checks the request (whole, signed, fresh) and hands the
payload on: interactions to `phasegate.slack.interactions`, which routes them to the gate handlers
(`phasegate.slack.gates`) and the change-request ones (`phasegate.slack.change_requests`); slash
commands to `phasegate.slack.change_requests`. `phasegate.slack.socket` serves the same handlers
over Socket Mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from phasegate.ledger.db import ENDPOINT_PATIENCE, LEDGER_DOWN, transaction
from phasegate.ledger.writers import deadline
from phasegate.slack import change_requests as slack_cr
from phasegate.slack.deps import NOT_RECORDED, SlackDeps, log
from phasegate.slack.interactions import on_interaction
from phasegate.slack.payloads import BadPayload, BodyRefused, parse_payload, read_capped
from phasegate.slack.signature import verify


def create_app(deps: SlackDeps) -> FastAPI:
    app = FastAPI(title="phasegate Slack endpoint", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    def healthz() -> Response:
        """200 when the ledger answers; 503 naming the ledger when it does not (a load balancer or
        `curl` sees at once why clicks are refused)."""
        try:
            with transaction(deps.sessions, write=False) as session:  # a read: never queues behind writers
                session.execute(text("SELECT 1"))
        except LEDGER_DOWN as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return JSONResponse({"status": "unavailable", "ledger": f"unreachable: {reason}"}, status_code=503)
        return JSONResponse({"status": "ok", "ledger": "ok"})

    @app.post("/slack/commands")
    async def commands(request: Request, background: BackgroundTasks) -> Response:
        with deadline(ENDPOINT_PATIENCE):  # the ledger's waits end within Slack's 3 s, counted from here
            body, refusal = await verified_body(deps, request)
            if refusal is not None:
                return refusal
            try:
                return await run_sync(slack_cr.on_command, deps, body, background)
            except LEDGER_DOWN as exc:
                log.warning("slash command not recorded, the ledger is unavailable: %s", exc)
                return JSONResponse({"response_type": "ephemeral", "text": NOT_RECORDED})

    @app.post("/slack/interactions")
    async def interactions(request: Request, background: BackgroundTasks) -> Response:
        with deadline(ENDPOINT_PATIENCE):  # the ledger's waits end within Slack's 3 s, counted from here
            body, refusal = await verified_body(deps, request)
            if refusal is not None:
                return refusal
            try:
                payload = parse_payload(body)
            except BadPayload as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return await run_sync(on_interaction, deps, payload, background)

    return app


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
