"""A phase's Jira scope in the ledger: the issue keys its baseline holds, the keys approved change
requests cover, and the drift between them and what Jira shows now (see phasegate.rules.drift)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import IntegrationError
from phasegate.ledger import audit
from phasegate.ledger.change_requests import baseline
from phasegate.ledger.engagements import links
from phasegate.ledger.models import BaselineRow, ChangeRequestRow
from phasegate.rules import drift
from phasegate.states import AuditKind, ChangeRequestState


def record_issues(engagement_id: str, phase: Phase, keys: list[str], *, session: Session) -> BaselineRow | None:
    """Store the phase's issue keys with the baseline, once. The first phase's go into the first
    baseline as it is recorded (see `phasegate.tasks.kickoff.record_baseline`); a later phase's, at its start,
    into a new baseline version, since a recorded version is never changed. None: no baseline yet."""
    current = baseline(session, engagement_id)
    if current is None or drift.baseline_keys(current.scope, phase) is not None:
        return current
    scope = dict(current.scope)
    scope["issues"] = {**scope.get("issues", {}), phase.value: keys}
    scope.pop("change_request", None)
    row = BaselineRow(engagement_id=engagement_id, version=current.version + 1, scope=scope)
    session.add(row)
    audit.record(session, engagement_id, AuditKind.BASELINE_RECORDED, f"v{row.version}", scope=scope,
                 reason=f"the {phase.value} scope in Jira at its start")
    return row


def covered(engagement_id: str, phase: Phase, *, session: Session) -> set[str]:
    """Issue keys named by the phase's approved change requests (scope items or Jira issue)."""
    return covered_by(session.scalars(select(ChangeRequestRow).where(ChangeRequestRow.engagement_id == engagement_id)),
                      phase)


def covered_by(requests: Iterable[ChangeRequestRow], phase: Phase) -> set[str]:
    keys: set[str] = set()
    for cr in requests:
        if cr.phase is phase and cr.state is ChangeRequestState.APPROVED:
            keys |= drift.keys_named(cr.scope_added["items"])
            if cr.jira_issue:
                keys.add(cr.jira_issue)
    return keys


@dataclass(frozen=True)
class Known:
    """What the ledger says about a phase's scope; read in a transaction, checked against Jira after
    it (no database lock is held while Jira answers)."""

    recorded: set[str] | None
    links: dict[str, str]
    covered: set[str]


def known(engagement_id: str, phase: Phase, *, session: Session) -> Known:
    current = baseline(session, engagement_id)
    return Known(recorded=drift.baseline_keys(current.scope, phase) if current is not None else None,
                 links=links(session, engagement_id, phase), covered=covered(engagement_id, phase, session=session))


def check(engagement: Engagement, phase: Phase, ledger: Known, tracker: drift.Searcher | None,
          unavailable: str = "Jira is not reachable",
          already: Mapping[str, Sequence[Any]] | None = None) -> drift.Drift:
    """The phase's drift now; a Drift with `error` when the baseline or Jira cannot say."""
    if ledger.recorded is None:
        return drift.Drift(engagement.id, phase, error=f"the {phase.value} baseline holds no Jira issue list")
    if tracker is None:
        return drift.Drift(engagement.id, phase, error=unavailable)
    try:
        found = drift.scope_issues(engagement, phase, ledger.links, tracker, already)
    except IntegrationError as exc:
        return drift.Drift(engagement.id, phase, error=str(exc))
    return drift.find(engagement.id, phase, found, ledger.recorded, ledger.covered)


def found_keys(engagement: Engagement, phase: Phase, milestone_links: Mapping[str, str],
               tracker: drift.Searcher) -> list[str] | None:
    """The keys in the phase's scope now, or None when Jira cannot say (the baseline then waits)."""
    try:
        return drift.keys_of(drift.scope_issues(engagement, phase, milestone_links, tracker))
    except IntegrationError:
        return None
