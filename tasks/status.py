"""Small read-only tasks the phase flow asks the ledger."""

from __future__ import annotations

from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import engagements, gates, phases
from phasegate.ledger.db import transaction
from phasegate.orchestration.runtime import Runtime
from phasegate.rules import policy
from phasegate.tasks import ledger_task


@ledger_task
def load_engagement(rt: Runtime, engagement_id: str) -> Engagement:
    """The engagement as registered in the ledger (the file is frozen once the engagement runs)."""
    with transaction(rt.sessions) as session:
        return engagements.config_of(engagements.get(session, engagement_id))


@ledger_task
def phase_to_run(rt: Runtime, engagement: Engagement, phase: Phase, flow_run_id: str | None) -> Phase | None:
    """Where this flow run picks up. A run started for `phase` that carried on into a later phase is
    re-run from the top by Prefect after each suspend: it goes straight to the engagement's current
    phase when that phase's record names this run, and redoes nothing behind it. None when a later
    phase is under another flow run (this run was replaced, by `phase retry` or the gate watch)."""
    order = list(Phase)
    with transaction(rt.sessions) as session:
        current = engagements.get(session, engagement.id).current_phase
        if current is None or order.index(current) <= order.index(phase):
            return phase
        run = phases.phase_run(session, engagement.id, current)
        return current if flow_run_id is not None and run.flow_run_id == flow_run_id else None


@ledger_task
def advance_requested(rt: Runtime, engagement: Engagement, phase: Phase) -> bool:
    with transaction(rt.sessions) as session:
        return phases.phase_run(session, engagement.id, phase).advance_requested


def gate_summary(rt: Runtime, gate_id: int) -> str:
    """Markdown for the Prefect UI's resume form: the evidence the answer is given on."""
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        snapshot = gates.snapshot_of(session, gate)
        engagement = engagements.config_of(engagements.get(session, gate.engagement_id))
    config = engagement.phases.of(gate.phase).gate
    lines = [f"## {gate.phase.gate} {engagement.name}: {gate.phase.question}",
             f"Decided by {policy.describe(config)}. Answer as one of: "
             + ", ".join(f"`{a.slack_user}` ({a.name}, {a.side.value})" for a in config.approvers),
             f"Outcomes: {', '.join(o.value for o in policy.OUTCOMES[gate.phase])}. Evidence digest `{gate.digest}`.",
             "", "| exit criterion | result | seen |", "|---|---|---|"]
    lines += [f"| {c.label} | {c.result.value} | {c.seen} |" for c in snapshot.criteria]
    lines += ["", "| milestone | done |", "|---|---|"]
    lines += [f"| {m.title} | {'yes' if m.done else ('no' if m.done is False else 'missing: ' + (m.error or ''))} |"
              for m in snapshot.milestones]
    lines += [f"\n**Warning:** {w}" for w in snapshot.warnings]
    for heading, found in snapshot.selection.sections() if snapshot.selection else ():
        lines += [f"\n**{heading}**", *(f"- {line}" for line in found)]
    return "\n".join(lines)
