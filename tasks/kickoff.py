"""Tasks that start a phase: the run record, the kickoff post, the Jira milestones, the baseline.

Each is safe to run again: a re-executed flow (Prefect re-runs a suspended flow from the top)
finds what the first run recorded in the ledger and does nothing twice.
"""

from __future__ import annotations

import datetime as dt

from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import IntegrationError
from phasegate.ledger import audit, engagements, phases
from phasegate.ledger import scope as scope_ledger
from phasegate.ledger.db import transaction
from phasegate.messages import gates as messages
from phasegate.messages import marks as post_marks
from phasegate.orchestration.runtime import Runtime
from phasegate.states import AuditKind
from phasegate.tasks import ledger_task, outside_task
from phasegate.text import literal

HANDOVER_SHARE = (0.15, 0.20)


def handover_warning(engagement: Engagement, weeks_before: int) -> str | None:
    """The guide budgets 15–20 % of total project time for the handover."""
    handover = engagement.phases.handover.planned_weeks
    share = handover / (weeks_before + handover)
    low, high = HANDOVER_SHARE
    if low <= share <= high:
        return None
    side = "under" if share < low else "over"
    return (f"handover is planned at {share:.0%} of total project time ({handover} of {weeks_before + handover} "
            f"weeks), {side} the 15–20 % the guide recommends")


@ledger_task
def begin_phase(rt: Runtime, engagement: Engagement, phase: Phase, requested_by: str, flow_run_id: str | None) -> None:
    with transaction(rt.sessions) as session:
        phases.start_phase(session, engagement, phase, requested_by=requested_by, flow_run_id=flow_run_id,
                           today=dt.datetime.now(engagement.tz).date())


@outside_task
def post_kickoff(rt: Runtime, engagement: Engagement, phase: Phase) -> str:
    """Post the kickoff once per phase and return its ts (the thread for everything that follows); a
    kickoff Slack has but the ledger lacks (its answer was lost) is found in the channel, not posted again."""
    with transaction(rt.sessions) as session:
        run = phases.phase_run(session, engagement.id, phase)
        if run.kickoff_ts:
            return run.kickoff_ts
        started_at = run.started_at
        box = phases.current_timebox(session, engagement.id, phase)
        before = sum(phases.weeks_used(session, engagement.id, p) or engagement.phases.of(p).planned_weeks
                     for p in (Phase.POC, Phase.DEVELOPMENT))  # booked weeks, or the plan where none are
    config = engagement.phases.of(phase)
    lines = [f":rocket: *{phase.heading}* started for *{literal(engagement.name)}* (vendor {literal(engagement.vendor)}).",
             f"Planned: {config.planned_weeks} weeks, gate {phase.gate} “{phase.question}” due by {box.ends_on}.",
             "Milestones: " + (", ".join(literal(m.title) for m in config.milestones) or "none")]
    warning = handover_warning(engagement, before) if phase is Phase.HANDOVER else None
    if warning:
        lines.append(f":warning: {warning}")
    attestable = [(m.key, m.title) for m in config.milestones if m.attestation]
    if attestable:
        lines.append("Items that accept an attestation can be attested with the buttons below (approvers only).")
    text = "\n".join(lines)
    ts = rt.chat.post_marked(engagement.slack_channel, text, messages.kickoff(text, engagement.id, phase.value, attestable),
                             post_marks.kickoff(engagement.id, phase), oldest=post_marks.oldest(started_at))
    with transaction(rt.sessions) as session:
        phases.phase_run(session, engagement.id, phase).kickoff_ts = ts
        audit.record(session, engagement.id, AuditKind.KICKOFF_POSTED, phase.value, ts=ts, warning=warning)
    return ts


@outside_task
def link_milestones(rt: Runtime, engagement: Engagement, phase: Phase) -> list[str]:
    """Find or create one Jira issue per milestone that names none; returns the problems met."""
    with transaction(rt.sessions) as session:
        known = engagements.links(session, engagement.id, phase)
    wanted = [m for m in engagement.phases.of(phase).milestones if m.jql is None and m.key not in known]
    if not wanted:
        return []
    problems: list[str] = []
    for milestone in wanted:
        try:
            if milestone.jira_issue:
                key = milestone.jira_issue
            else:
                tracker = rt.tracker(engagement)
                key = tracker.ensure_issue(engagement.jira.project, f"[{engagement.id}] {milestone.title}",
                                           marker_label=f"phasegate-{engagement.id}-{milestone.key}").key
        except IntegrationError as exc:
            problems.append(f"{milestone.key}: {exc}")
            continue
        with transaction(rt.sessions) as session:
            engagements.link_milestone(session, engagement.id, phase, milestone.key, key)
    return problems


@ledger_task
def record_baseline(rt: Runtime, engagement: Engagement, phase: Phase = Phase.POC) -> int:
    """The first baseline (once), and the phase's Jira issue keys with it, so that scope drift can
    be told apart later. Jira down: the keys are recorded by the next run of this step."""
    scope = {
        "phases": {p.value: {"planned_weeks": engagement.phases.of(p).planned_weeks,
                             "milestones": [m.key for m in engagement.phases.of(p).milestones]}
                   for p in engagement.phases.present()},
        "budget": engagement.budget.model_dump(mode="json"),
        "start_date": engagement.start_date.isoformat(),
    }
    with transaction(rt.sessions) as session:
        milestone_links = engagements.links(session, engagement.id, phase)
    try:
        found = scope_ledger.found_keys(engagement, phase, milestone_links, rt.tracker(engagement))
    except IntegrationError:
        found = None
    if found is not None:
        scope = scope_ledger.with_issues(scope, phase, found)
    with transaction(rt.sessions) as session:
        row = engagements.record_baseline(session, engagement.id, scope)
        if found is not None:
            row = scope_ledger.record_issues(engagement.id, phase, found, session=session) or row
        return row.version
