"""Tasks of the change-request flow: assess, post the prompt, read where it stands, and carry out
the decision (announce, update Jira, wake the phase run). Each finds its earlier result in the
ledger, so a flow re-run from the top after a suspend does nothing twice."""

from __future__ import annotations

import logging

from phasegate.changes import jira_import
from phasegate.configs.schema import Engagement
from phasegate.errors import EXPECTED, ServiceUnavailable
from phasegate.ledger import audit, engagements, jira_requests, phases
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import transaction
from phasegate.messages import changes as cr_messages
from phasegate.messages import marks as post_marks
from phasegate.messages import witness
from phasegate.orchestration.resume import resume_when_paused
from phasegate.orchestration.runtime import Runtime
from phasegate.states import AuditKind, ChangeRequestState
from phasegate.tasks import ledger_task, outside_task

log = logging.getLogger(__name__)


@ledger_task
def assess(rt: Runtime, engagement_id: str, number: int, flow_run_id: str | None) -> int:
    """The request's id, assessed against the current baseline once, with this run noted on it."""
    with transaction(rt.sessions) as session:
        cr = crs.by_number(session, engagement_id, number)
        if cr.state is ChangeRequestState.SUBMITTED:
            crs.assess(session, cr)
        if flow_run_id and cr.flow_run_id != flow_run_id:
            cr.flow_run_id = flow_run_id
        return cr.id


@outside_task
def post_prompt(rt: Runtime, cr_id: int) -> None:
    """Post the approval prompt in the engagement channel unless it is posted already (in the ledger, or
    in Slack with its answer lost)."""
    with transaction(rt.sessions) as session:
        cr = crs.by_id(session, cr_id)
        if cr.message_ts or cr.state.final:
            return
        text, blocks = cr_messages.render(session, cr)
        channel, mark, oldest = cr.channel, post_marks.change_request(cr), post_marks.oldest(cr.created_at)
        superseded = jira_requests.superseded_prompt(session, cr)
        old_text, old_blocks = cr_messages.superseded(session, cr)
    ts = rt.chat.post_marked(channel, text, blocks, mark, oldest=oldest)
    with transaction(rt.sessions) as session:
        cr = crs.by_id(session, cr_id)
        cr.message_ts = ts
        audit.record(session, cr.engagement_id, AuditKind.CR_PROMPT_POSTED, cr.name, ts=ts, revision=cr.revision)
    if superseded:  # the revision before's prompt loses its buttons (a click on it is refused anyway)
        try:
            rt.chat.update(channel, superseded, old_text, old_blocks)
        except EXPECTED as exc:
            log.warning("change request %s: the superseded prompt %s was not redrawn: %s", cr_id, superseded, exc)


@ledger_task
def state_of(rt: Runtime, cr_id: int) -> ChangeRequestState:
    with transaction(rt.sessions) as session:
        return crs.by_id(session, cr_id).state


@outside_task
def update_jira(rt: Runtime, engagement: Engagement, cr_id: int) -> None:
    """A request filed with a Jira issue: label the issue with the outcome and link it to the
    milestones the request touches, only while the issue is in the engagement's own project (an
    issue moved away may now be another client's; the import reports the move)."""
    with transaction(rt.sessions) as session:
        cr = crs.by_id(session, cr_id)
        if not cr.jira_issue or cr.announced:
            return
        assessment = crs.assessment_of(cr)
        links = engagements.links(session, cr.engagement_id, cr.phase)
        key, state, name, frozen = cr.jira_issue, cr.state, cr.name, jira_requests.latest(session, cr.id)
    touched = [links[m] for m in (assessment.milestones if assessment else []) if m in links]
    tracker = rt.tracker(engagement)
    issue = jira_import.labelled_here(tracker, engagement, key, frozen.issue_id if frozen else None)
    if issue is None:
        log.warning("%s: %s is not labelled: it is deleted or no longer in %s", name, key, engagement.jira.project)
        return
    tracker.label_and_link(issue.key, f"phasegate-cr-{state.value}", touched)


@outside_task
def announce(rt: Runtime, engagement: Engagement, cr_id: int) -> None:
    """Show the outcome on the prompt and tell the channel (and the requester) once."""
    with transaction(rt.sessions) as session:
        cr = crs.by_id(session, cr_id)
        if cr.announced:
            return
        thread = cr.message_ts
    cr_messages.refresh(rt.sessions, rt.chat, cr_id)
    with transaction(rt.sessions, write=False) as session:  # the head after the decision, as the prompt shows
        cr = crs.by_id(session, cr_id)
        mark = witness.stamp(session, post_marks.cr_announcement(cr), cr.engagement_id)
        text = f"{cr_messages.announcement(cr, engagement.name)}\n_{witness.line(mark)}_"
    rt.chat.post(engagement.slack_channel, text, thread_ts=thread, mark=mark)
    with transaction(rt.sessions) as session:
        cr = crs.by_id(session, cr_id)
        cr.announced = True
        audit.record(session, cr.engagement_id, AuditKind.CR_ANNOUNCED, cr.name, state=cr.state.value)


@outside_task
def wake_phase(rt: Runtime, cr_id: int) -> bool:
    """Nudge the running phase run so it re-reads its timebox and file from the ledger now."""
    with transaction(rt.sessions) as session:
        cr = crs.by_id(session, cr_id)
        run = phases.find_phase_run(session, cr.engagement_id, cr.phase)
        run_id = run.flow_run_id if run is not None else None
    if not run_id:
        return False
    try:
        return resume_when_paused(run_id, wait=10)
    except OSError as exc:
        raise ServiceUnavailable(f"cannot wake the phase run {run_id}: {exc}") from None
