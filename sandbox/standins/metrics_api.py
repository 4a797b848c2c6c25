"""A stand-in for an MLflow tracking server's `runs/get` endpoint: the metric source of the demo
and the tests. `set("poc-run", f1=0.87)` changes what the next read sees."""

from __future__ import annotations

import threading
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from phasegate.sandbox.standins.loopback import LoopbackServer


class MetricsStandin(LoopbackServer):
    def __init__(self) -> None:
        self._runs: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()
        self.down = False  # answer 503 to everything, as an outage would
        self._failures: list[tuple[int, int | None]] = []  # (status, Retry-After) for the next requests
        self.app = Starlette(routes=[Route("/api/2.0/mlflow/runs/get", self._get_run)])

    def set(self, run_id: str, **metrics: float) -> None:
        with self._lock:
            self._runs.setdefault(run_id, {}).update(metrics)

    def fail_next(self, status: int = 503, retry_after: int | None = None, times: int = 1) -> None:
        """The next `times` reads answer `status`, with Retry-After when given."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * times)

    async def _get_run(self, request: Request) -> JSONResponse:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            headers = {"Retry-After": str(failure[1])} if failure[1] is not None else {}
            return JSONResponse({"error_code": "TEMPORARILY_UNAVAILABLE"}, status_code=failure[0], headers=headers)
        if self.down:
            return JSONResponse({"error_code": "TEMPORARILY_UNAVAILABLE"}, status_code=503)
        run_id = request.query_params.get("run_id", "")
        with self._lock:
            metrics = dict(self._runs.get(run_id, {}))
        if run_id not in self._runs:
            return JSONResponse({"error_code": "RESOURCE_DOES_NOT_EXIST",
                                 "message": f"Run '{run_id}' not found"}, status_code=404)
        stamp = int(time.time() * 1000)
        return JSONResponse({"run": {"info": {"run_id": run_id, "status": "FINISHED"},
                                     "data": {"metrics": [{"key": k, "value": v, "timestamp": stamp, "step": 0}
                                                          for k, v in metrics.items()]}}})
