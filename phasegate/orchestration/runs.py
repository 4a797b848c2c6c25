"""What Prefect says of a phase's flow run, and the three things phasegate does to runs: start one,
wake one, cancel one. The recovery and the gate watch take these as an object (`PrefectRuns` in
production) so that their decisions read as ledger rules, with Prefect at the edge.

Every Prefect failure leaves here as ServiceUnavailable or as a RunStatus, never as a Prefect
exception: a command that meets a dead Prefect server says so in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

import httpx
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

from phasegate.configs.schema import Phase
from phasegate.errors import ServiceUnavailable
from phasegate.states import RunHealth

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

PREFECT_DOWN = (OSError, httpx.HTTPError, PrefectHTTPStatusError)


@dataclass(frozen=True)
class RunStatus:
    flow_run_id: str
    health: RunHealth
    why: str  # Prefect's state name and message, shown to people deciding what to do

    @property
    def line(self) -> str:
        return f"flow run {self.flow_run_id} is {self.health.value}" + (f" ({self.why})" if self.why else "")


class RunControl(Protocol):
    def status(self, flow_run_id: str) -> RunStatus: ...

    def start(self, engagement_id: str, phase: Phase, requested_by: str, *, key: str) -> str: ...

    def start_change_request(self, engagement_id: str, number: int, *, key: str) -> str: ...

    def wake(self, flow_run_id: str) -> bool: ...

    def cancel(self, flow_run_id: str, reason: str) -> None: ...

    def restore(self, flow_run_id: str) -> RunStatus | None: ...


def checked_status(runs: RunControl, flow_run_id: str) -> RunStatus:
    """What Prefect says of the run, with a false alarm put right first: a run marked Crashed while it
    was suspended (see `PrefectRuns.restore`) is suspended again and alive. Everything that decides
    whether a run is dead (the watch, `up`'s catch-up, `phase retry`, `cr prompt`) asks here."""
    status = runs.status(flow_run_id)
    if status.health is RunHealth.CRASHED:
        return runs.restore(flow_run_id) or status
    return status


_HEALTH = {"COMPLETED": RunHealth.COMPLETED, "FAILED": RunHealth.FAILED, "CRASHED": RunHealth.CRASHED,
           "CANCELLED": RunHealth.CANCELLED, "CANCELLING": RunHealth.CANCELLED}


class PrefectUnreachable(ServiceUnavailable):
    """The Prefect API did not answer: what was asked of it waits until it is back (the ledger keeps
    every decision; `phasegate up` and the gate watch act on them then). `refused`: nothing listens
    at its address (the server is down), rather than an answer that came too late or said busy."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


def unavailable(what: str, exc: BaseException) -> PrefectUnreachable:
    return PrefectUnreachable(f"cannot {what}: the Prefect API is not reachable ({type(exc).__name__}; "
                              "is `phasegate up` running?)",
                              refused=isinstance(exc, (httpx.ConnectError, ConnectionRefusedError)))


class PrefectRuns:
    """The Prefect API this process is configured for (see phasegate.ops.local.prefect_api)."""

    def __init__(self, *, wake_wait: float = 0, client: Callable[[], SyncPrefectClient] | None = None) -> None:
        self.wake_wait = wake_wait
        self.client = client  # a long-lived client for `wake` (phasegate.orchestration.resume.Waker); else one per call

    def status(self, flow_run_id: str) -> RunStatus:
        from prefect.client.orchestration import get_client

        try:
            with get_client(sync_client=True) as client:
                run = client.read_flow_run(UUID(flow_run_id))
        except ObjectNotFound:
            return RunStatus(flow_run_id, RunHealth.MISSING, "Prefect has no such flow run; it was deleted")
        except ValueError:  # not a UUID: a run id Prefect never issued
            return RunStatus(flow_run_id, RunHealth.MISSING, "not a Prefect flow run id")
        except PREFECT_DOWN as exc:
            raise unavailable(f"read flow run {flow_run_id}", exc) from None
        if run.state is None:
            return RunStatus(flow_run_id, RunHealth.ALIVE, "no state yet")
        why = (run.state.name or run.state.type.value) + (f": {run.state.message}" if run.state.message else "")
        return RunStatus(flow_run_id, _HEALTH.get(run.state.type.value, RunHealth.ALIVE), why)

    def start(self, engagement_id: str, phase: Phase, requested_by: str, *, key: str) -> str:
        """A new run of the phase flow. `key` is Prefect's idempotency key: the same key gives back the
        same run, so a retry after a timeout never starts two."""
        from phasegate.orchestration.names import PHASE_DEPLOYMENT

        return deploy(PHASE_DEPLOYMENT, {"engagement_id": engagement_id, "phase": phase.value,
                                         "requested_by": requested_by}, name=f"{engagement_id}-{phase.value}", key=key)

    def start_change_request(self, engagement_id: str, number: int, *, key: str) -> str:
        """A new run of the change-request flow, idempotent by `key` as `start` is."""
        from phasegate.orchestration.names import CR_DEPLOYMENT

        return deploy(CR_DEPLOYMENT, {"engagement_id": engagement_id, "number": number},
                      name=f"{engagement_id}-cr-{number}", key=key)

    def wake(self, flow_run_id: str) -> bool:
        """True only when the run was paused and Prefect accepted the resume."""
        from phasegate.orchestration.resume import resume_when_paused

        try:
            return resume_when_paused(flow_run_id, wait=self.wake_wait,
                                      client=self.client() if self.client is not None else None)
        except ObjectNotFound:
            return False
        except PREFECT_DOWN as exc:
            raise unavailable(f"wake flow run {flow_run_id}", exc) from None

    def cancel(self, flow_run_id: str, reason: str) -> None:
        """Move the run to Cancelled unless it already ended (forced: a paused run has no process to ask)."""
        from prefect.client.orchestration import get_client
        from prefect.states import Cancelled

        if self.status(flow_run_id).health is not RunHealth.ALIVE:
            return
        try:
            with get_client(sync_client=True) as client:
                client.set_flow_run_state(UUID(flow_run_id), Cancelled(message=reason[:200]), force=True)
        except PREFECT_DOWN as exc:
            raise unavailable(f"cancel flow run {flow_run_id}", exc) from None

    def restore(self, flow_run_id: str) -> RunStatus | None:
        """Suspend the run again if it was marked Crashed while suspended (a false alarm: a suspended
        run has no process to lose; phasegate.orchestration.resume says when Prefect gives one); its
        status then, else None."""
        from prefect.client.orchestration import get_client

        from phasegate.orchestration.resume import suspend_again

        try:
            with get_client(sync_client=True) as client:
                restored = suspend_again(client, flow_run_id)
        except (ObjectNotFound, ValueError):
            return None
        except PREFECT_DOWN as exc:
            raise unavailable(f"restore flow run {flow_run_id}", exc) from None
        if restored is None:
            return None
        crashed, before = restored
        return RunStatus(flow_run_id, RunHealth.ALIVE, f"{before.name}: suspended again after a false "
                         f"{crashed.name} ({crashed.message or 'no message'})")


def deploy(deployment: str, parameters: dict[str, object], *, name: str, key: str) -> str:
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    try:
        run = run_deployment(deployment, parameters=parameters, timeout=0, as_subflow=False, idempotency_key=key,
                             flow_run_name=name)
    except ObjectNotFound:
        raise ServiceUnavailable(f"the deployment {deployment} is not served (is `phasegate up` running?)") from None
    except (*PREFECT_DOWN, RuntimeError) as exc:
        raise unavailable("start a flow run", exc) from None
    if not isinstance(run, FlowRun):
        raise ServiceUnavailable(f"Prefect returned {type(run).__name__}, not a flow run")
    return str(run.id)


def wake(flow_run_id: str) -> None:
    """Nudge a suspended phase or change-request run; ServiceUnavailable when Prefect cannot."""
    from prefect.settings import PREFECT_API_URL

    from phasegate.orchestration.resume import resume_when_paused

    try:
        resume_when_paused(flow_run_id, wait=10)
    except ObjectNotFound:
        raise ServiceUnavailable(f"flow run {flow_run_id} is not known to the Prefect API at "
                                 f"{PREFECT_API_URL.value()}") from None
    except PREFECT_DOWN as exc:
        raise unavailable("wake the phase run", exc) from None
