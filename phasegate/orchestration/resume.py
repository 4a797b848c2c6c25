"""Waking a suspended phase run once the ledger says it can go on.

Every suspend in the phase flows sits in a loop guarded by the ledger, so a resume is only a
nudge: a run woken too early checks the ledger and suspends again. That makes it safe to retry
until the run is actually paused (it may still be on its way to the suspend).

A suspended run has no process: it waits for a resume, which starts a new one. So a Crashed state
right after a suspend is a false alarm, never a lost process, and `suspend_again` puts the suspend
back. Prefect's heartbeat automation (phasegate/ops/crash_detection.py) gives such alarms after a
Prefect server restart: its trigger service remembers the events it has seen in memory only, and a
state event that follows the run's previous state within 5 minutes names it (`follows`) and is held
until that one is seen, for up to 15 minutes. A run suspended before the restart and woken after it
has every state event held, its next suspend included, while its heartbeats (which follow nothing)
pass: the trigger sees beats, then silence, and marks the run Crashed 2.5 beats after the last one.

A Prefect client is costly to build (an SSL context each, some 34 ms of CPU, even for an http:// URL):
`Waker` keeps one for the life of the process that wakes many runs (the refresher,
phasegate.gates.refresher); `resume_when_paused` without a client builds one for a single call.
Prefect's client retries a refused connection, five times with a backoff that doubles from 2 s, once
it has connected before: a long-lived client would hold a wake for a minute while Prefect is down,
and the approver would not be told that the next step waits for it. So `Waker` turns Prefect's
retries off and keeps its own: an API that answered but failed (a 503 from a Prefect server whose
SQLite database was locked, a timeout) is asked again after each of `Waker.pauses` (Prefect's client
still waits about 2 s after a 429, 502 or 503 before it raises: some 15 s in all); a refused
connection fails the wake at once, and the run is left to `phasegate up`'s catch-up and the gate watch.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.responses import SetStateStatus
from prefect.context import SettingsContext, get_settings_context
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import State


def resume_when_paused(flow_run_id: str, *, wait: float = 30.0, poll: float = 0.2,
                       client: SyncPrefectClient | None = None) -> bool:
    """Resume the run as soon as it is paused; False if it finished or never paused within `wait`.
    A run marked Crashed while suspended is suspended again first (see the module doc)."""
    if client is None:
        with get_client(sync_client=True) as own:
            return resume_when_paused(flow_run_id, wait=wait, poll=poll, client=own)
    deadline = time.monotonic() + wait
    state = client.read_flow_run(UUID(flow_run_id)).state
    if state is not None and state.is_crashed():
        suspend_again(client, flow_run_id)
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


def suspended(state: State) -> bool:
    """Paused with its process freed (suspend_flow_run): nothing runs until it is resumed."""
    return state.is_paused() and bool(state.state_details.pause_reschedule)


def suspend_again(client: SyncPrefectClient, flow_run_id: str) -> tuple[State, State] | None:
    """If the run's latest state is Crashed and the one before it a suspend, put that suspend back
    as it was (its pause key and the input it waits for); the false Crashed state and the suspend
    when done, else None. Only while the Crashed state is still the run's latest."""
    states = client.read_flow_run_states(UUID(flow_run_id))
    if len(states) < 2 or not states[-1].is_crashed() or not suspended(states[-2]):
        return None
    crashed, before = states[-1], states[-2]
    current = client.read_flow_run(UUID(flow_run_id)).state
    if current is None or current.id != crashed.id:
        return None  # moved on meanwhile
    again = before.fresh_copy().model_copy(update={
        "message": f"suspended again by phasegate: marked {crashed.name} while suspended "
                   f"({crashed.message or 'no message'})"})
    result = client.set_flow_run_state(UUID(flow_run_id), again, force=True)
    return (crashed, before) if result.status == SetStateStatus.ACCEPT else None


BUSY_PAUSES = (0.5, 1.0, 2.0, 4.0)  # seconds before a wake that met a busy Prefect API asks again


class Waker:
    """Wakes runs through one long-lived sync Prefect client, built on the first wake (in the Prefect
    settings context of the thread that makes it) and reused by every thread after; its connections
    to the API are kept alive and opened again after a Prefect restart."""

    def __init__(self, *, wait: float = 30.0, pauses: tuple[float, ...] = BUSY_PAUSES) -> None:
        self.wait, self.pauses = wait, pauses
        self._client: SyncPrefectClient | None = None
        self._settings: SettingsContext | None = None
        self._lock = threading.Lock()

    def client(self) -> SyncPrefectClient:
        with self._lock:
            if self._client is None:
                client = get_client(sync_client=True)
                client.__enter__()
                self._client = client
            return self._client

    def no_retries(self) -> SettingsContext:
        """The settings of the thread that first wakes, with Prefect's client retries turned off."""
        with self._lock:
            if self._settings is None:
                here = get_settings_context()
                self._settings = SettingsContext(profile=here.profile, settings=here.settings.copy_with_update(
                    updates={PREFECT_CLIENT_MAX_RETRIES: 0}))
            return self._settings

    def wake(self, flow_run_id: str) -> bool:
        """True only when the run was paused and Prefect accepted the resume; PrefectUnreachable at
        the first refused connection, or when the API was still busy after `pauses`."""
        from phasegate.orchestration.runs import PrefectRuns, PrefectUnreachable

        pauses = iter(self.pauses)
        while True:
            try:
                with self.no_retries().model_copy():
                    return PrefectRuns(wake_wait=self.wait, client=self.client).wake(flow_run_id)
            except PrefectUnreachable as exc:
                pause = next(pauses, None)
                if exc.refused or pause is None:
                    raise
                time.sleep(pause)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.__exit__(None, None, None)
