"""Red, amber, green: the rules that set a weekly report's status, in one place, as data.

Each rule has a key, the colour it sets and one line a sponsor can read. The report shows every
rule that fired; its status is the worst of them, and green when none fired. The rules look only
at the finished report, so `phasegate status` can apply the ledger-only ones to a report built
without Jira or metrics.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from phasegate.states import Rag

if TYPE_CHECKING:  # the report's pydantic models load only where reports are built; `status` applies the
    from phasegate.reports.model import Finding, WeeklyReport  # rules to its own columns (status_view)

SOON = dt.timedelta(weeks=2)  # "the timebox ends soon"
BEHIND = 0.25  # done share this far under the elapsed share of the timebox is "behind plan"


@dataclass(frozen=True)
class Rule:
    key: str
    rag: Rag
    reason: str
    applies: Callable[[WeeklyReport], bool]


def _elapsed_share(r: WeeklyReport) -> float | None:
    if r.timebox_ends_on is None or not r.booked_weeks:
        return None
    total = r.booked_weeks * 7
    left = (r.timebox_ends_on - r.today).days
    return min(1.0, max(0.0, (total - left) / total))


def _behind_plan(r: WeeklyReport) -> bool:
    elapsed, totals = _elapsed_share(r), r.totals
    if elapsed is None or totals.total == 0:
        return False
    return totals.done / totals.total < elapsed - BEHIND


def _failing(r: WeeklyReport) -> bool:
    return any(m.passes is False for m in r.metrics)


def _ends_soon(r: WeeklyReport) -> bool:
    return r.timebox_ends_on is not None and r.timebox_ends_on - r.today <= SOON


RULES: tuple[Rule, ...] = (
    Rule("gate-overdue", Rag.RED, "A gate decision is overdue: the work is waiting on approvers.",
         lambda r: any(g.overdue for g in r.gates)),
    Rule("timebox-passed", Rag.RED, "The timebox has ended and no gate is open to decide what happens next.",
         lambda r: r.timebox_ends_on is not None and r.today > r.timebox_ends_on and not r.gates),
    Rule("criterion-failing-late", Rag.RED, "An exit criterion is not met and the timebox ends within two weeks.",
         lambda r: _failing(r) and _ends_soon(r)),
    Rule("criterion-failing", Rag.AMBER, "An exit criterion is not met yet.", _failing),
    Rule("metric-worsening", Rag.AMBER, "A metric moved the wrong way since last week.",
         lambda r: any(m.worsening for m in r.metrics)),
    Rule("behind-plan", Rag.AMBER, "Less work is done than the time used would suggest.", _behind_plan),
    Rule("over-budget", Rag.AMBER, "Spend or changes are over a budget line in the engagement file.",
         lambda r: bool(r.budget.over)),
    Rule("data-deletion-overdue", Rag.RED, "The data-deletion deadline has passed without the client attesting it.",
         lambda r: r.sponsor.deletion == "overdue"),
    Rule("near-cap", Rag.AMBER, "PoC spend has passed 80 % of its time-and-materials cap.", lambda r: bool(r.budget.near)),
    Rule("knowledge-transfer", Rag.AMBER, "The client says a knowledge-transfer check does not hold this week.",
         lambda r: any(c.holds is False for c in r.sponsor.checks or [])),
    Rule("scope-drift", Rag.AMBER, "Work entered the phase's scope in Jira without an approved change request.",
         lambda r: r.change_requests.drift_count > 0),
    Rule("gate-waiting", Rag.AMBER, "A gate is open and waiting for answers.", lambda r: bool(r.gates)),
    Rule("evidence-missing", Rag.AMBER, "Some evidence could not be read, so this report is incomplete.",
         lambda r: bool(r.missing)),
)


def fired(report: WeeklyReport, rules: tuple[Rule, ...] = RULES) -> list[Rule]:
    """The rules that apply to `report`, in order."""
    return [rule for rule in rules if rule.applies(report)]


def evaluate(report: WeeklyReport, rules: tuple[Rule, ...] = RULES) -> tuple[Rag, list[Finding]]:
    """The worst colour among the rules that apply, and those rules' findings (green when none)."""
    from phasegate.reports.model import Finding

    findings = [Finding(rule=rule.key, rag=rule.rag, reason=rule.reason) for rule in fired(report, rules)]
    rag = max((f.rag for f in findings), key=lambda c: c.rank, default=Rag.GREEN)
    return rag, findings


GREEN_REASON = "On track: no rule for amber or red applies."
