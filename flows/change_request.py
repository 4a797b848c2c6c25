"""The change-request flow: assessed, put to its approvers in Slack, and carried out once decided.

Like the phase flow it waits with `suspend_flow_run` in a loop guarded by the ledger: answers are
recorded by the Slack endpoint or the CLI under the gate policy, and a decision only nudges this
run awake. What an approval changes (the baseline, the timebox, the file) is written in the same
transaction as the deciding answer; this flow tells people and wakes the phase run, which
re-reads its timebox and file from the ledger on every resume.

A request from Jira whose issue is edited while it waits gets a new revision without a prompt;
the import wakes this run, which starts again from the top and so posts that revision's prompt.
"""

from __future__ import annotations

from itertools import count

from prefect import flow
from prefect.flow_runs import suspend_flow_run
from prefect.runtime import flow_run

from phasegate.orchestration.names import CR_FLOW
from phasegate.orchestration.runtime import Runtime
from phasegate.settings import Settings
from phasegate.states import ChangeRequestState
from phasegate.tasks import change_requests as cr_tasks
from phasegate.tasks.status import load_engagement


def wait_for_decision(rt: Runtime, cr_id: int) -> ChangeRequestState:
    """Suspend until the request is approved, rejected or withdrawn."""
    for attempt in count():
        state = cr_tasks.state_of(rt, cr_id)
        if state.final:
            return state
        suspend_flow_run(key=f"cr-{cr_id}-{attempt}", timeout=None)
    raise AssertionError("unreachable")


@flow(name=CR_FLOW, log_prints=True)
def run_change_request(engagement_id: str, number: int) -> str:
    """Take change request `number` of the engagement from assessment to its announced outcome."""
    rt = Runtime(Settings())
    try:
        cr_id = cr_tasks.assess(rt, engagement_id, number, flow_run.get_id())
        cr_tasks.post_prompt(rt, cr_id)
        state = wait_for_decision(rt, cr_id)
        engagement = load_engagement(rt, engagement_id)  # the amended file, if the request changed it
        cr_tasks.update_jira(rt, engagement, cr_id)
        cr_tasks.announce(rt, engagement, cr_id)
        if state is ChangeRequestState.APPROVED:
            cr_tasks.wake_phase(rt, cr_id)
        return state.value
    finally:
        rt.close()
