"""Waking a suspended phase run once the ledger says it can go on.

Every suspend in the phase flows sits in a loop guarded by the ledger, so a resume is only a
nudge: a run woken too early checks the ledger and suspends again. That makes it safe to retry
until the run is actually paused (it may still be on its way to the suspend).
"""

from __future__ import annotations

import time
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.responses import SetStateStatus


def resume_when_paused(flow_run_id: str, *, wait: float = 30.0, poll: float = 0.2) -> bool:
    """Resume the run as soon as it is paused; False if it finished or never paused within `wait`."""
    deadline = time.monotonic() + wait
    with get_client(sync_client=True) as client:
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
