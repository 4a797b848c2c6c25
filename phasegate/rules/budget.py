"""Budget in the open: what has been spent against what the engagement file allows.

Three lines a sponsor reads, each against its own limit:

- the PoC's recorded spend against its time-and-materials cap (`budget.poc_cap`);
- development's recorded spend against the team cost (`budget.development_team_cost`);
- the change budget (`budget.change_budget`) against the cost of every approved change request
  plus every extension. An EXTEND (or NOT YET) buys more weeks of the same team, so its cost is
  the phase's weekly rate times the weeks added: the PoC cap or the development team cost divided
  by the phase's planned weeks. Handover has no priced budget line, so its extensions cost 0 here.

Pure arithmetic, no ledger: `phasegate.ledger.spend` gathers the numbers, and the CLI, the gate
prompt and the weekly report all print the same `lines()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from phasegate.configs.schema import Engagement, Phase

WARN_SHARE = 0.8  # the PoC's time-and-materials spend past this share of its cap is warned about
BUILD_SHARE = (0.30, 0.40)  # the guide: the initial build is typically 30-40 % of the first-year cost
EXTENSION_WORDS = {2: "first", 3: "second", 4: "third", 5: "fourth"}
PHASE_WORDS = {Phase.SELECTION: "vendor selection", Phase.POC: "PoC", Phase.DEVELOPMENT: "development", Phase.HANDOVER: "handover"}


def extension_name(phase: Phase, number: int) -> str:
    """Timebox 2 of the PoC is "the PoC's first extension": what a sponsor calls it."""
    nth = EXTENSION_WORDS.get(number, f"{number - 1}th")
    return f"the {PHASE_WORDS[phase]}'s {nth} extension"


@dataclass(frozen=True)
class Extension:
    """A timebox after a phase's first: an EXTEND or NOT YET answer bought these weeks."""

    phase: Phase
    number: int
    weeks: int


@dataclass(frozen=True)
class Line:
    """One amount against its limit."""

    label: str
    used: float
    limit: float

    @property
    def left(self) -> float:
        return self.limit - self.used

    @property
    def over(self) -> bool:
        return self.used > self.limit

    @property
    def share(self) -> float | None:
        return self.used / self.limit if self.limit > 0 else None


@dataclass(frozen=True)
class BudgetStatus:
    currency: str
    spent: dict[Phase, float]  # recorded spend per phase
    poc: Line
    development: Line
    changes: Line  # approved change requests + extensions against the change budget
    approved_changes: float
    extensions: list[tuple[Extension, float]] = field(default_factory=list)  # each with its cost

    @property
    def total_spent(self) -> float:
        return sum(self.spent.values())

    @property
    def over(self) -> list[Line]:
        return [line for line in (self.poc, self.development, self.changes) if line.over]

    @property
    def near(self) -> list[Line]:
        """The PoC's time-and-materials spend at or past WARN_SHARE of its cap, not over it yet."""
        share = self.poc.share
        return [self.poc] if share is not None and WARN_SHARE <= share and not self.poc.over else []

    def line(self, line: Line) -> str:
        state = (f"*over by {money(-line.left)} {self.currency}*" if line.over
                 else f"{money(line.left)} {self.currency} left")
        if line in self.near and line.share is not None:
            state += f"; {line.share:.0%} used, past the {WARN_SHARE:.0%} warning mark"
        return f"{line.label}: {money(line.used)} of {money(line.limit)} {self.currency} ({state})"

    def lines(self) -> list[str]:
        """The budget in plain words, one line per limit (Slack mrkdwn; bold marks an overrun)."""
        out = [self.line(self.poc), self.line(self.development), self.line(self.changes)]
        parts = [f"{money(self.approved_changes)} {self.currency} in approved change requests"]
        parts += [f"{money(cost)} {self.currency} for {extension_name(e.phase, e.number)} (+{e.weeks} weeks)"
                  for e, cost in self.extensions]
        out.append("Change budget used by: " + "; ".join(parts) + ".")
        return out


def money(amount: float) -> str:
    return f"{amount:,.0f}" if float(amount).is_integer() or abs(amount) >= 100 else f"{amount:,.2f}"


def ownership_line(engagement: Engagement) -> str:
    """The first-year total cost of ownership: the planned build (PoC cap and development team cost)
    plus the file's run estimate, with the build's share against the guide's 30-40 %."""
    b = engagement.budget
    build = b.poc_cap + b.development_team_cost
    low, high = BUILD_SHARE
    if b.first_year_run_cost is None:
        return (f"First-year cost of ownership: not estimated; the build alone is {money(build)} {b.currency}, "
                f"and the guide puts the build at only {low:.0%}–{high:.0%} of the first year's cost "
                "(add budget.first_year_run_cost).")
    total = build + b.first_year_run_cost
    share = build / total if total else 0.0
    verdict = "as the guide expects" if low <= share <= high else f"the guide expects {low:.0%}–{high:.0%}"
    return (f"First-year cost of ownership: {money(total)} {b.currency} = build {money(build)} + run "
            f"{money(b.first_year_run_cost)} {b.currency}; the build is {share:.0%} of it ({verdict}).")


def weekly_rate(engagement: Engagement, phase: Phase) -> float:
    """What one more week of a phase costs: its budget line over its planned weeks (0 for handover)."""
    b, weeks = engagement.budget, engagement.phases.of(phase).planned_weeks
    total = {Phase.POC: b.poc_cap, Phase.DEVELOPMENT: b.development_team_cost}.get(phase, 0.0)
    return total / weeks


def status(engagement: Engagement, *, spent: dict[Phase, float], approved_changes: float,
           extensions: list[Extension]) -> BudgetStatus:
    """The engagement's budget lines from recorded spend, approved change costs and extensions."""
    b = engagement.budget
    priced = [(e, weekly_rate(engagement, e.phase) * e.weeks) for e in extensions]
    used = approved_changes + sum(cost for _, cost in priced)
    return BudgetStatus(
        currency=b.currency, spent={p: spent.get(p, 0.0) for p in Phase},
        poc=Line("PoC spend against its time-and-materials cap", spent.get(Phase.POC, 0.0), b.poc_cap),
        development=Line("Development spend against the team cost", spent.get(Phase.DEVELOPMENT, 0.0),
                         b.development_team_cost),
        changes=Line("Change budget (approved changes and extensions)", used, b.change_budget),
        approved_changes=approved_changes, extensions=[(e, cost) for e, cost in priced])
