"""Tasks around a gate: freeze the evidence and post the prompt, read where it stands, apply the
outcome. The waiting itself happens in the flow (Prefect suspends flows, not tasks)."""

from __future__ import annotations

import datetime as dt
import logging

from phasegate.changes import jira_import as cr_import
from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import PhasegateError, ServiceUnavailable
from phasegate.gates import answers, collection
from phasegate.ledger import audit, engagements, gates, phases, scope
from phasegate.ledger.db import transaction
from phasegate.ledger.models import utcnow
from phasegate.messages import marks as post_marks
from phasegate.messages.prompts import opened, refresh, render
from phasegate.orchestration.runtime import Runtime
from phasegate.rules import evidence, staleness
from phasegate.states import AuditKind, EngagementState, GateState, Outcome, Via
from phasegate.tasks import ledger_task, outside_task
from phasegate.text import literal

log = logging.getLogger(__name__)


def collect_evidence(rt: Runtime, engagement: Engagement, phase: Phase, timebox: int) -> evidence.Snapshot:
    """The evidence as it is now, scope drift included, read again after a passing outage
    (phasegate.gates.collection) before anything is shown as missing or drift as not checked."""
    with transaction(rt.sessions) as session:
        ledger_scope = scope.known(engagement.id, phase, session=session)
        facts = evidence.LedgerFacts(links=engagements.links(session, engagement.id, phase),
                                     attestations=engagements.attestations(session, engagement.id, phase),
                                     submitted=engagements.submitted_metrics(session, engagement.id),
                                     baseline=ledger_scope.baseline)

    def read(outages: collection.Outages) -> evidence.Snapshot:
        tracker, unreachable = None, evidence.NO_TRACKER
        try:
            tracker = collection.WatchedTracker(rt.tracker(engagement), outages)
        except ServiceUnavailable as exc:
            unreachable = str(exc)
            outages.append(exc)
        return evidence.collect(engagement, phase, timebox, tracker=tracker,
                                read_json=collection.watched_reader(rt.read_json, outages), facts=facts,
                                now=utcnow(), metrics_base_url=rt.settings.metrics_base_url, no_tracker=unreachable,
                                clock=utcnow)

    s = rt.settings
    snapshot = collection.collect_with_retries(read, attempts=s.evidence_attempts, wait=s.evidence_retry_seconds,
                                               max_wait=s.evidence_max_wait_seconds, sleep=rt.sleep)
    try:
        tracker = rt.tracker(engagement)
    except ServiceUnavailable:
        return snapshot
    imported = cr_import.import_requests(rt.sessions, engagement, tracker, rt.chat)  # filed in Jira: once each
    for line in imported.reported:  # also posted in the channel and recorded in the audit chain
        log.warning("%s", line)
    for problem in imported.problems:
        log.warning("%s", problem)
    return snapshot


@ledger_task
def timebox_due(rt: Runtime, engagement: Engagement, phase: Phase) -> tuple[int, bool]:
    """(current timebox, whether its gate is due: the timebox ended or the PM asked for the review)."""
    with transaction(rt.sessions) as session:
        box = phases.current_timebox(session, engagement.id, phase)
        return box.number, box.due(dt.datetime.now(engagement.tz).date())


def post_prompt(rt: Runtime, gate_id: int) -> None:
    """Post the gate's prompt unless this revision already has one (a re-run must not post twice, even
    when the first post's answer was lost: Slack's copy is found by its mark)."""
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        if gate.message_ts:
            return
        text, blocks = render(session, gate)
        channel, kickoff = gate.channel, phases.phase_run(session, gate.engagement_id, gate.phase).kickoff_ts
        notice = opened(gate, engagements.get(session, gate.engagement_id).name)
        mark, oldest = post_marks.gate_prompt(gate), post_marks.oldest(gate.opened_at)
    ts = rt.chat.post_marked(channel, text, blocks, mark, oldest=oldest)
    with transaction(rt.sessions) as session:
        gates.by_id(session, gate_id).message_ts = ts
    if kickoff:
        rt.chat.post(channel, notice, thread_ts=kickoff)


@outside_task
def open_gate(rt: Runtime, engagement: Engagement, phase: Phase, timebox: int, requested_by: str,
              flow_run_id: str | None) -> int:
    """The timebox's gate (latest revision): evidence collected and frozen once, prompt posted once."""
    with transaction(rt.sessions) as session:
        gate = gates.current(session, engagement.id, phase, timebox)
        gate_id = gate.id if gate is not None else None
    if gate_id is None:
        snapshot = collect_evidence(rt, engagement, phase, timebox)
        with transaction(rt.sessions) as session:
            gate = gates.current(session, engagement.id, phase, timebox)  # another run may have won the race
            gate = gate or gates.open_gate(session, snapshot, requested_by=requested_by, flow_run_id=flow_run_id,
                                           channel=engagement.slack_channel)
            gate_id = gate.id
    post_prompt(rt, gate_id)
    return gate_id


@ledger_task
def gate_outcome(rt: Runtime, gate_id: int) -> Outcome | None:
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        return gate.outcome if gate.state is GateState.DECIDED else None


@ledger_task
def redraw_prompt(rt: Runtime, gate_id: int) -> None:
    """The decided gate's prompt drawn again from the ledger before the run carries the outcome out:
    the process that recorded the deciding answer may have died before it redrew it (the timeout's
    NO-GO and a click on a decided gate redraw it too). Slack down: logged; the run goes on."""
    try:
        refresh(rt.sessions, rt.chat, gate_id)
    except PhasegateError as exc:
        log.warning("gate %s: could not update the Slack prompt (%s)", gate_id, exc)


@ledger_task
def record_ui_answer(rt: Runtime, gate_id: int, approver: str, outcome: Outcome, reason: str,
                     delivery_id: str) -> str:
    """An answer typed into the Prefect UI's resume form, under the same policy as Slack."""
    try:
        with transaction(rt.sessions) as session:
            result = gates.answer(session, gate_id, approver=approver, outcome=outcome, reason=reason,
                                  via=Via.PREFECT_UI, delivery_id=delivery_id)
    except PhasegateError as exc:
        return f"not recorded: {exc}"
    if not result.recorded:
        return "already recorded"
    # wake=None: this answer came in through the run itself, which reads the ledger next
    problems = answers.after_answer(rt.sessions, rt.chat, gate_id, decided=result.decided is not None,
                                    wake=None).problems
    return "recorded, but " + "; ".join(problems) if problems else "recorded"


@outside_task
def recheck_evidence(rt: Runtime, engagement: Engagement, gate_id: int) -> int | None:
    """Before the next phase starts: read the evidence again. A stale approval reopens the gate
    (the new revision's id is returned) and the approvers are told why."""
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        if gate.state is not GateState.DECIDED:
            return None
        approved, phase, timebox = gates.snapshot_of(session, gate), gate.phase, gate.timebox
    fresh = collect_evidence(rt, engagement, phase, timebox)
    reasons = staleness.staleness(approved, fresh)
    if not reasons:
        tell_unconfirmed(rt, engagement, gate_id, staleness.unconfirmed(approved, fresh))
        return None
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id, lock=True)
        if gate.state is not GateState.DECIDED:
            return None
        reopened = gates.mark_stale(session, gate, fresh, reasons).id
        approvers = " ".join(f"<@{a.slack_user}>" for a in engagement.phases.of(phase).gate.approvers)
        old_ts = gate.message_ts
    refresh(rt.sessions, rt.chat, gate_id)
    post_prompt(rt, reopened)
    if old_ts:
        rt.chat.post(engagement.slack_channel, f"{approvers} the {phase.gate} approval went stale and the gate is "
                     f"reopened: {literal('; '.join(reasons))}", thread_ts=old_ts)
    return reopened


def tell_unconfirmed(rt: Runtime, engagement: Engagement, gate_id: int, lines: list[str]) -> None:
    """An approval given on missing evidence that is still missing holds on its written waiver; said in
    the gate's thread and the audit log, never passed silently. Said once per gate revision."""
    if not lines:
        return
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        if audit.exists(session, gate.engagement_id, AuditKind.GATE_RECHECKED, gate.name, gate_id=gate_id):
            return
        audit.record(session, gate.engagement_id, AuditKind.GATE_RECHECKED, gate.name, gate_id=gate_id,
                     unconfirmed=lines)
        channel, ts, name = gate.channel, gate.message_ts, gate.name
    if ts:
        rt.chat.post(channel, f"Re-check of {name} before the next phase: still unknown: {literal('; '.join(lines))}. "
                     "The approval stands on the waiver given with it.", thread_ts=ts)


@outside_task
def extend_timebox(rt: Runtime, engagement: Engagement, phase: Phase, gate_id: int) -> None:
    """EXTEND / NOT YET: open the next timebox (the answer was refused earlier if it would pass the maximum)."""
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        reasons = [d.reason for d in gates.decisions(session, gate_id) if d.outcome is gate.outcome and d.reason]
        box, created = phases.extend(session, engagement, phase, after=gate.timebox, reason="; ".join(reasons),
                                     today=dt.datetime.now(engagement.tz).date())
        ends_on, weeks = box.ends_on, box.weeks
    if not created:
        return None
    what = "supervised operation extended" if phase is Phase.HANDOVER else f"{phase.value} extended"
    rt.chat.post(engagement.slack_channel, f":hourglass: {literal(engagement.name)}: {what} by {weeks} weeks, "
                 f"next {phase.gate} review by {ends_on}.")
    return None


@outside_task
def close_engagement(rt: Runtime, engagement: Engagement, gate_id: int | None, state: EngagementState,
                     reason: str = "") -> None:
    """Announce, then record, the end of the engagement (a retry after a failed post announces again)."""
    with transaction(rt.sessions) as session:
        current = engagements.get(session, engagement.id).state
        if current is state:
            return
        current.check_can_become(state, f"engagement {engagement.id}")  # before announcing it
        if gate_id is not None:
            gate = gates.by_id(session, gate_id)
            reasons = [d.reason for d in gates.decisions(session, gate_id) if d.outcome is gate.outcome and d.reason]
            reason = reason or "; ".join(reasons) or (gate.outcome.label if gate.outcome else "")
    icon = ":checkered_flag:" if state is EngagementState.COMPLETED else ":no_entry:"
    rt.chat.post(engagement.slack_channel, f"{icon} {literal(engagement.name)} is {state.value}: {literal(reason)}")
    with transaction(rt.sessions) as session:
        engagements.close(session, engagement.id, state, reason)
