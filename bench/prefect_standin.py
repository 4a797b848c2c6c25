"""A tiny stand-in for the part of the Prefect API that waking a run calls, for bench.ack:

    python -m bench.prefect_standin --port 4299      # PREFECT_API_URL=http://127.0.0.1:4299/api

`phasegate.orchestration.resume.resume_when_paused` opens a Prefect client (which asks for a CSRF
token before its first POST: answered as a server with CSRF protection off answers), reads the flow
run, and resumes it once paused. Here every flow run is paused until it is resumed, then running,
as a suspended phase run is; the JSON is Prefect's own schemas', so the client parses what a real
server sends. `GET /bench/wakes` says how many resumes were accepted, for how many runs.
"""

from __future__ import annotations

import argparse
import threading
import uuid
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def templates() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A paused flow run, a running one, and an accepted resume, as Prefect's schemas write them."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.client.schemas.responses import OrchestrationResult, SetStateStatus, StateAcceptDetails
    from prefect.states import Paused, Running

    paused = FlowRun(flow_id=uuid.uuid4(), name="bench-run", state=Paused(reschedule=True, key="gate"))
    running = paused.model_copy(update={"state": Running()})
    accepted = OrchestrationResult(state=Running(), status=SetStateStatus.ACCEPT, details=StateAcceptDetails())
    return paused.model_dump(mode="json"), running.model_dump(mode="json"), accepted.model_dump(mode="json")


def app() -> Starlette:
    paused, running, accepted = templates()
    lock = threading.Lock()
    resumed: dict[str, int] = {}  # flow run id -> resumes accepted
    reads, refused = [0], [0]

    async def read_flow_run(request: Request) -> Response:
        run_id = request.path_params["id"]
        with lock:
            reads[0] += 1
            was_resumed = run_id in resumed
        return JSONResponse({**(running if was_resumed else paused), "id": run_id})

    async def resume(request: Request) -> Response:
        run_id = request.path_params["id"]
        await request.body()
        with lock:
            if run_id in resumed:  # running already: Prefect refuses to resume it
                refused[0] += 1
                return JSONResponse({**accepted, "status": "ABORT", "details": {"type": "abort_details",
                                                                                "reason": "not paused"}})
            resumed[run_id] = 1
        return JSONResponse(accepted)

    async def csrf_token(_: Request) -> Response:
        return JSONResponse({"detail": "CSRF protection is disabled."}, status_code=422)

    async def health(_: Request) -> Response:
        return JSONResponse(True)

    async def wakes(_: Request) -> Response:
        with lock:
            return JSONResponse({"resumed": sum(resumed.values()), "runs": len(resumed), "reads": reads[0],
                                 "refused": refused[0]})

    return Starlette(routes=[
        Route("/api/flow_runs/{id}", read_flow_run, methods=["GET"]),
        Route("/api/flow_runs/{id}/resume", resume, methods=["POST"]),
        Route("/api/csrf-token", csrf_token, methods=["GET"]),
        Route("/api/health", health, methods=["GET"]),
        Route("/bench/wakes", wakes, methods=["GET"]),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
