"""The gate watch: reminders, escalation and timeouts for open gates, and a nudge for any phase run
that is paused although the ledger says it can go on. Run on a schedule by `flows/gate_watch.py`;
a plain function of `now` so tests drive it with an injected clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from configs.schema import Engagement, TimeoutOutcome
from phasegate import calendar
from phasegate.errors import EXPECTED
from phasegate.ledger import audit, engagements, gates
from phasegate.ledger.db import transaction
from phasegate.ledger.models import GateRow
from phasegate.runtime import Runtime
from phasegate.states import AuditKind, EngagementState, GateState, Outcome


@dataclass
class WatchReport:
    reminded: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)
    woken: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def waiting_on(rt: Runtime, gate: GateRow, config: Engagement) -> list[str]:
    with transaction(rt.sessions) as session:
        answered = set(gates.latest_answers(gates.decisions(session, gate.id)))
    return [a.slack_user for a in config.phases.of(gate.phase).gate.approvers
            if a.slack_user not in answered and a.slack_user != gate.requested_by]


def act(rt: Runtime, gate: GateRow, config: Engagement, action: calendar.Action, now: dt.datetime,
        report: WatchReport) -> bool:
    """Carry out one due action; True when the gate was decided by it (a NO-GO timeout)."""
    policy = config.phases.of(gate.phase).gate
    mentions = " ".join(f"<@{u}>" for u in waiting_on(rt, gate, config))
    age = (now - gate.opened_at).days
    if action is calendar.Action.REMIND:
        text = f":bell: Reminder: {gate.name} has waited {age} days for {mentions or 'the quorum'}."
    elif action is calendar.Action.ESCALATE:
        contacts = " ".join(f"<@{c}>" for c in policy.escalation_contacts) or "the engagement's sponsor"
        text = (f":rotating_light: Escalation to {contacts}: {gate.name} has been open for "
                f"{policy.escalate_after_business_days} business days, still waiting for {mentions or 'the quorum'}.")
    elif policy.timeout_outcome is TimeoutOutcome.NO_GO:
        text = f":no_entry: {gate.name} timed out after {policy.timeout_business_days} business days: NO-GO, as the engagement file says."
    else:
        text = f":warning: {gate.name} is overdue ({policy.timeout_business_days} business days); it stays open."
    if gate.message_ts:
        rt.chat.post(gate.channel, text, thread_ts=gate.message_ts)
    with transaction(rt.sessions) as session:
        row = gates.by_id(session, gate.id, lock=True)
        if row.state is not GateState.OPEN:
            return False
        if action is calendar.Action.REMIND:
            row.reminders_sent += 1
            audit.record(session, row.engagement_id, AuditKind.REMINDER_SENT, row.name, number=row.reminders_sent)
            report.reminded.append(row.name)
        elif action is calendar.Action.ESCALATE:
            row.escalated_at = now
            audit.record(session, row.engagement_id, AuditKind.GATE_ESCALATED, row.name,
                         contacts=policy.escalation_contacts)
            report.escalated.append(row.name)
        else:
            row.overdue_at = now
            audit.record(session, row.engagement_id, AuditKind.GATE_OVERDUE, row.name,
                         outcome=policy.timeout_outcome.value)
            report.overdue.append(row.name)
            if policy.timeout_outcome is TimeoutOutcome.NO_GO:
                gates.settle(session, row, Outcome.NO_GO)
                return True
    return False


def watch(rt: Runtime, now: dt.datetime, wake: Callable[[str], object]) -> WatchReport:
    report = WatchReport()
    with transaction(rt.sessions) as session:
        open_gates = gates.open_gates(session)
        configs = {g.engagement_id: engagements.config_of(engagements.get(session, g.engagement_id))
                   for g in open_gates}
    for gate in open_gates:
        config = configs[gate.engagement_id]
        policy = config.phases.of(gate.phase).gate
        times = calendar.GateTimes(opened_at=gate.opened_at, reminders_sent=gate.reminders_sent,
                                   escalated=gate.escalated_at is not None, timed_out=gate.overdue_at is not None)
        actions = calendar.due(times, now, config.tz, every=policy.reminder_every_business_days,
                               hour=policy.reminder_hour, escalate_after=policy.escalate_after_business_days,
                               timeout_after=policy.timeout_business_days)
        for action in actions:
            try:
                if act(rt, gate, config, action, now, report) and gate.flow_run_id:
                    wake(gate.flow_run_id)
            except EXPECTED as exc:
                report.problems.append(f"{gate.name}: {exc}")
    for run_id in runs_that_can_go_on(rt, now):
        try:
            wake(run_id)
            report.woken.append(run_id)
        except EXPECTED as exc:
            report.problems.append(f"flow run {run_id}: {exc}")
    return report


def runs_that_can_go_on(rt: Runtime, now: dt.datetime) -> list[str]:
    """Phase runs the ledger says may continue: the timebox ended with no gate yet, or the gate was
    decided (unless a GO is waiting for the PM to start the next phase)."""
    ready: list[str] = []
    with transaction(rt.sessions) as session:
        for row in engagements.all_rows(session):
            if row.state is not EngagementState.ACTIVE or row.current_phase is None:
                continue
            config = engagements.config_of(row)
            run = engagements.phase_run(session, row.id, row.current_phase)
            box = engagements.current_timebox(session, row.id, row.current_phase)
            gate = gates.current(session, row.id, row.current_phase, box.number)
            if gate is None:
                due = box.due(now.astimezone(config.tz).date())
            elif gate.state is GateState.DECIDED:
                passed = gate.outcome is not None and gate.outcome.passes and gate.phase.next() is not None
                due = not (passed and not config.auto_advance and not run.advance_requested)
            else:
                due = False
            if due and run.flow_run_id:
                ready.append(run.flow_run_id)
    return ready
