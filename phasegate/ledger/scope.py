"""A phase's Jira scope in the ledger: the issue keys its baseline holds (per milestone), the keys
approved change requests add or remove, and the drift between them and what Jira shows now (see
phasegate.rules.drift)."""

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


def record_issues(engagement_id: str, phase: Phase, found: Mapping[str, list[str]], *,
                  session: Session) -> BaselineRow | None:
    """Store the phase's issue keys (`found`: per milestone) with the baseline, once. The first
    phase's go into the first baseline as it is recorded (see `phasegate.tasks.kickoff.record_baseline`);
    a later phase's, at its start, into a new baseline version, since a recorded version is never
    changed. None: no baseline yet."""
    current = baseline(session, engagement_id)
    if current is None or drift.baseline_keys(current.scope, phase) is not None:
        return current
    scope = with_issues(current.scope, phase, found)
    scope.pop("change_request", None)
    row = BaselineRow(engagement_id=engagement_id, version=current.version + 1, scope=scope)
    session.add(row)
    audit.record(session, engagement_id, AuditKind.BASELINE_RECORDED, f"v{row.version}", covers=row, scope=scope,
                 reason=f"the {phase.value} scope in Jira at its start")
    return row


def with_issues(scope: Mapping[str, Any], phase: Phase, found: Mapping[str, list[str]]) -> dict[str, Any]:
    """`scope` holding the phase's keys: all of them (`issues`) and under each milestone
    (`issues_by_milestone`), which tells later under which milestone an issue that left was."""
    keys = sorted({k for milestone_keys in found.values() for k in milestone_keys})
    return {**scope, "issues": {**scope.get("issues", {}), phase.value: keys},
            "issues_by_milestone": {**scope.get("issues_by_milestone", {}), phase.value: dict(found)}}


def covered(engagement_id: str, phase: Phase, *, session: Session) -> set[str]:
    """Issue keys named by the phase's approved change requests (scope items or Jira issue)."""
    return covered_by(_requests(engagement_id, session=session), phase)


def _requests(engagement_id: str, *, session: Session) -> list[ChangeRequestRow]:
    return list(session.scalars(select(ChangeRequestRow).where(ChangeRequestRow.engagement_id == engagement_id)))


def covered_by(requests: Iterable[ChangeRequestRow], phase: Phase) -> set[str]:
    keys: set[str] = set()
    for cr in requests:
        if cr.phase is phase and cr.state is ChangeRequestState.APPROVED:
            keys |= drift.keys_named(cr.scope_added["items"])
            if cr.jira_issue:
                keys.add(cr.jira_issue)
    return keys


def removed_by(requests: Iterable[ChangeRequestRow], phase: Phase) -> set[str]:
    """Issue keys the phase's approved change requests took out of its scope (removed scope items)."""
    return {k for cr in requests if cr.phase is phase and cr.state is ChangeRequestState.APPROVED
            for k in drift.keys_named(cr.scope_removed["items"])}


@dataclass(frozen=True)
class Known:
    """What the ledger says about a phase's scope; read in a transaction, checked against Jira after
    it (no database lock is held while Jira answers). `baseline` None: it holds no issue list."""

    baseline: drift.Baseline | None
    links: dict[str, str]


def known(engagement_id: str, phase: Phase, *, session: Session) -> Known:
    current = baseline(session, engagement_id)
    return known_from(current.scope if current is not None else {}, phase, links(session, engagement_id, phase),
                      _requests(engagement_id, session=session))


def known_from(scope: Mapping[str, Any], phase: Phase, milestone_links: Mapping[str, str],
               requests: Sequence[ChangeRequestRow]) -> Known:
    """Known from a baseline's scope, the phase's milestone links and the engagement's change requests."""
    return Known(baseline=drift.baseline_of(scope, phase, covered_by(requests, phase), removed_by(requests, phase)),
                 links=dict(milestone_links))


def check(engagement: Engagement, phase: Phase, ledger: Known, tracker: drift.Searcher | None,
          unavailable: str = "Jira is not reachable",
          already: Mapping[str, Sequence[Any]] | None = None) -> drift.Drift:
    """The phase's drift now; a Drift with `error` when the baseline or Jira cannot say."""
    if ledger.baseline is None:
        return drift.Drift(engagement.id, phase, error=f"the {phase.value} baseline holds no Jira issue list")
    if tracker is None:
        return drift.Drift(engagement.id, phase, error=unavailable)
    try:
        found = drift.scope_issues(engagement, phase, ledger.links, tracker, already)
    except IntegrationError as exc:
        return drift.Drift(engagement.id, phase, error=str(exc))
    return drift.find(engagement.id, phase, found, ledger.baseline,
                      [m.key for m in engagement.phases.of(phase).milestones])


def found_keys(engagement: Engagement, phase: Phase, milestone_links: Mapping[str, str],
               tracker: drift.Searcher) -> dict[str, list[str]] | None:
    """The keys in the phase's scope now, per milestone, or None when Jira cannot say (the baseline
    then waits)."""
    try:
        return drift.keys_by_milestone(drift.scope_issues(engagement, phase, milestone_links, tracker))
    except IntegrationError:
        return None
