"""Prefect's own zombie detection, switched on: a flow run whose process died without a word (its
runner killed, the machine lost) stays RUNNING for ever unless something notices its silence.

Flow runs send `prefect.flow-run.heartbeat` events every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds
(`phasegate up` sets it for its runner, see phasegate/ops/local.py). The automation installed here is
the one Prefect documents for this: a proactive trigger that fires when a run which sent a heartbeat
sends neither another one nor a final or paused state within 2.5 beats, and marks the run Crashed.
The gate watch then replaces the crashed run from the ledger (phasegate/orchestration/recovery.py).

After a Prefect server restart the trigger also marks Crashed runs that are only suspended (their
"Suspended" event is held back by Prefect's event ordering, phasegate/orchestration/resume.py says
how); those are suspended again rather than replaced (`resume.suspend_again`).
"""

from __future__ import annotations

from datetime import timedelta

NAME = "phasegate: mark flow runs with no heartbeat as crashed"
# Events that end a run's silence legitimately: another beat, an end, or a suspend (which frees the
# process, so the beats stop on purpose).
QUIET_ENDS = {"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
              "prefect.flow-run.Cancelled", "prefect.flow-run.Cancelling", "prefect.flow-run.Crashed",
              "prefect.flow-run.Paused", "prefect.flow-run.Suspended"}


def silence_allowed(heartbeat_seconds: int) -> timedelta:
    return timedelta(seconds=heartbeat_seconds * 5 / 2)


def ensure_crash_detection(heartbeat_seconds: int) -> bool:
    """Install the automation on the configured Prefect server unless it is there; True if installed now."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    with get_client(sync_client=True) as client:
        if client.read_automations_by_name(NAME):
            return False
        trigger = EventTrigger(match={"prefect.resource.id": "prefect.flow-run.*"},
                               after={"prefect.flow-run.heartbeat"}, expect=QUIET_ENDS,
                               for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1,
                               within=silence_allowed(heartbeat_seconds))
        action = ChangeFlowRunState(state=StateType.CRASHED, name="Crashed",
                                    force=False, message=f"no heartbeat for {silence_allowed(heartbeat_seconds).seconds} s: "
                                            "its process was lost")
        client.create_automation(AutomationCore(name=NAME, description=__doc__ or "", trigger=trigger,
                                                actions=[action]))
    return True
