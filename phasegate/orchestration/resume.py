"""Waking a suspended phase run once the ledger says it can go on.

Every suspend in the phase flows sits in a loop guarded by the ledger, so a resume is only a
nudge: a run woken too early checks the ledger and suspends again. That makes it safe to retry
until the run is actually paused (it may still be on its way to the suspend).

A Prefect client is costly to build (an SSL context each, some 34 ms of CPU, even for an http:// URL):
`Waker` keeps one for the life of the process that wakes many runs (the refresher,
phasegate.gates.refresher); `resume_when_paused` without a client builds one for a single call.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.responses import SetStateStatus

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient


def resume_when_paused(flow_run_id: str, *, wait: float = 30.0, poll: float = 0.2,
                       client: SyncPrefectClient | None = None) -> bool:
    """Resume the run as soon as it is paused; False if it finished or never paused within `wait`."""
    if client is None:
        with get_client(sync_client=True) as own:
            return resume_when_paused(flow_run_id, wait=wait, poll=poll, client=own)
    deadline = time.monotonic() + wait
    while True:
        state = client.read_flow_run(UUID(flow_run_id)).state
        if state is not None and state.is_paused():
            result = client.resume_flow_run(UUID(flow_run_id), run_input={})
            if result.status == SetStateStatus.ACCEPT:
                return True
        if state is not None and state.is_final():
            return False
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)


class Waker:
    """Wakes runs through one long-lived sync Prefect client, built on the first wake (in the Prefect
    settings context of the thread that makes it) and reused by every thread after; its connections
    to the API are kept alive and opened again after a Prefect restart."""

    def __init__(self, *, wait: float = 30.0) -> None:
        self.wait = wait
        self._client: SyncPrefectClient | None = None
        self._lock = threading.Lock()

    def client(self) -> SyncPrefectClient:
        with self._lock:
            if self._client is None:
                client = get_client(sync_client=True)
                client.__enter__()
                self._client = client
            return self._client

    def wake(self, flow_run_id: str) -> bool:
        """True only when the run was paused and Prefect accepted the resume; ServiceUnavailable
        (PrefectUnreachable) when the API does not answer (phasegate.orchestration.runs.PrefectRuns.wake)."""
        from phasegate.orchestration.runs import PrefectRuns

        return PrefectRuns(wake_wait=self.wait, client=self.client).wake(flow_run_id)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.__exit__(None, None, None)
