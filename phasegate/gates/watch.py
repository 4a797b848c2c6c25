"""The gate watch: reminders, escalation and timeouts for open gates, and a nudge for any phase or
change-request run that is paused although the ledger says it can go on (or a new run for a dead one). Run on a schedule by `flows/gate_watch.py`;
a plain function of `now` so tests drive it with an injected clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from phasegate.configs.schema import Engagement, TimeoutOutcome
from phasegate.errors import EXPECTED
from phasegate.ledger import audit, engagements, gates
from phasegate.ledger.db import transaction
from phasegate.ledger.models import GateRow
from phasegate.messages.prompts import refresh
from phasegate.orchestration import recovery
from phasegate.orchestration.runs import RunControl
from phasegate.orchestration.runtime import Runtime
from phasegate.rules import calendar
from phasegate.states import AuditKind, EngagementState, GateState, Outcome

# What ends the follow-up of one engagement (and is reported) without ending the pass: a ledger
# hiccup on one engagement must not cost the others their nudges.
ONE_ENGAGEMENT: tuple[type[Exception], ...] = (*EXPECTED, SQLAlchemyError)


@dataclass
class WatchReport:
    reminded: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)
    woken: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)  # "engagement: new flow run id", "acme/CR-2: new id"
    cancelled: list[str] = field(default_factory=list)  # engagements and requests whose run was cancelled
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


def redraw(rt: Runtime, gate_id: int, report: WatchReport) -> None:
    """The gate's prompt drawn again from the ledger; a Slack failure is a problem of the pass (the
    woken run draws it again when it carries the outcome out)."""
    try:
        refresh(rt.sessions, rt.chat, gate_id)
    except EXPECTED as exc:
        report.problems.append(f"gate {gate_id}: could not update the Slack prompt ({exc})")


def watch(rt: Runtime, now: dt.datetime, wake: Callable[[str], object], *,
          runs: RunControl | None = None) -> WatchReport:
    """One pass. With `runs` (Prefect, in production) each active engagement's phase run and
    change-request runs are reconciled with the ledger (phasegate/orchestration/recovery.py); without it, runs that may go on are only
    nudged with `wake`. Each gate and each engagement is handled on its own: a failure is a line in
    `problems`, never the end of the pass."""
    report = WatchReport()
    with transaction(rt.sessions) as session:
        open_gates = [g for g in gates.open_gates(session)
                      if engagements.get(session, g.engagement_id).state is EngagementState.ACTIVE]
        configs = {g.engagement_id: engagements.config_of(engagements.get(session, g.engagement_id))
                   for g in open_gates}
        active = [row.id for row in engagements.all_rows(session) if row.state is EngagementState.ACTIVE]
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
                if act(rt, gate, config, action, now, report):  # decided: the prompt loses its buttons
                    redraw(rt, gate.id, report)
                    if gate.flow_run_id and runs is None:
                        wake(gate.flow_run_id)
            except EXPECTED as exc:
                report.problems.append(f"{gate.name}: {exc}")
    follow_ups(rt, active, now, wake, runs, report)
    return report


def catch_up(rt: Runtime, runs: RunControl, now: dt.datetime) -> WatchReport:
    """The watch's follow-ups alone, for every active engagement: what `phasegate up` does the
    moment the Prefect API is back, so that a decision recorded while it was down is acted on now
    rather than at the next watch."""
    report = WatchReport()
    with transaction(rt.sessions) as session:
        active = [row.id for row in engagements.all_rows(session) if row.state is EngagementState.ACTIVE]
    follow_ups(rt, active, now, runs.wake, runs, report)
    return report


def follow_ups(rt: Runtime, active: list[str], now: dt.datetime, wake: Callable[[str], object],
               runs: RunControl | None, report: WatchReport) -> None:
    for engagement_id in active:
        try:
            follow_up(rt, engagement_id, now, wake, runs, report)
        except ONE_ENGAGEMENT as exc:
            report.problems.append(f"{engagement_id}: {exc}")


def follow_up(rt: Runtime, engagement_id: str, now: dt.datetime, wake: Callable[[str], object],
              runs: RunControl | None, report: WatchReport) -> None:
    if runs is not None:
        phase_run = recovery.reconcile(rt, runs, engagement_id, now)
        for name, done in [(engagement_id, phase_run), *recovery.reconcile_changes(rt, runs, engagement_id)]:
            report.woken += [done.woken] if done.woken else []
            report.restarted += [f"{name}: {done.restarted}"] if done.restarted else []
            report.cancelled += [name] if done.cancelled else []
            report.problems += [done.problem] if done.problem else []
        return
    exp = recovery.expected(rt, engagement_id, now)
    if exp is not None and exp.can_go_on and exp.flow_run_id and wake(exp.flow_run_id) is not False:
        report.woken.append(exp.flow_run_id)
