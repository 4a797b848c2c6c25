"""Change requests as plain data: what a request asks for, whether its fields are acceptable, and
what it would do to the current baseline (the assessment approvers decide on).

Pure functions, no ledger and no Slack: the CLI, the Slack modal and the Jira import all build a
`Draft` and get the same validation; the Slack form and the CLI (its options or a YAML file) read
their fields into one with the same `phasegate.rules.change_fields.draft_from_fields`. The ledger
(`phasegate.ledger.change_requests`) stores the result and the assessment. Limits follow what Slack
can show and the ledger can store, so a request filed from the CLI never produces a prompt Slack
would refuse, nor a value the ledger would.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from phasegate.configs import limits
from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import InvalidRequest
from phasegate.text import unstorable

TITLE_LIMIT = 150  # a Slack header
RATIONALE_LIMIT = 3000  # a Slack section
ITEM_LIMIT = 150
ITEMS_LIMIT = 25
MAX_SCHEDULE_DAYS = 365
MAX_AMOUNT = 1e12


@dataclass(frozen=True)
class Draft:
    """A change request as filed, before the ledger gives it a number."""

    title: str
    rationale: str = ""
    phase: Phase | None = None  # default: the engagement's current phase
    scope_added: tuple[str, ...] = ()
    scope_removed: tuple[str, ...] = ()
    effort_days: float = 0.0
    schedule_days: int = 0  # negative: the phase's timebox ends earlier
    cost: float = 0.0
    amendment: dict[str, Any] | None = field(default=None, compare=False)  # a whole new engagement file
    jira_issue: str | None = None
    not_estimated: tuple[str, ...] = ()  # of ESTIMATES: figures nobody gave (a Jira issue has no cost)


ESTIMATES = ("effort_days", "schedule_days", "cost")


def figure(value: float, name: str, not_estimated: tuple[str, ...] | list[str], unit: str = "") -> str:
    """A request's effort, schedule or cost as shown, or "not estimated" (never a 0 nobody gave)."""
    if name in not_estimated:
        return "not estimated"
    if name == "schedule_days":
        return f"{int(value):+d}{unit}"
    return f"{value:,.0f}{unit}" if name == "cost" else f"{value:g}{unit}"


def _storable(text: str, name: str, problems: dict[str, str]) -> None:
    problem = unstorable(text)
    if problem is not None:
        problems[name] = f"cannot be recorded: {problem}"


def _items(values: tuple[str, ...], name: str, problems: dict[str, str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(v.strip() for v in values if v.strip()))
    if len(cleaned) > ITEMS_LIMIT:
        problems[name] = f"at most {ITEMS_LIMIT} items (got {len(cleaned)})"
    long = next((v for v in cleaned if len(v) > ITEM_LIMIT), None)
    if long is not None:
        problems[name] = f"an item is longer than {ITEM_LIMIT} characters: {long[:40]!r}…"
    for item in cleaned:
        _storable(item, name, problems)
    return cleaned


def _amount(value: float, name: str, problems: dict[str, str], *, negative_ok: bool = False) -> None:
    if not math.isfinite(value):
        problems[name] = "must be a number"
    elif value < 0 and not negative_ok:
        problems[name] = f"must not be negative (got {value:g})"
    elif abs(value) > MAX_AMOUNT:
        problems[name] = "is implausibly large"


def validate(draft: Draft) -> Draft:
    """The draft with whitespace trimmed, or InvalidRequest naming every problem at once."""
    problems: dict[str, str] = {}
    title, rationale = draft.title.strip(), draft.rationale.strip()
    if not title:
        problems["title"] = "a change request needs a title"
    elif len(title) > TITLE_LIMIT:
        problems["title"] = f"at most {TITLE_LIMIT} characters (got {len(title)})"
    if len(rationale) > RATIONALE_LIMIT:
        problems["rationale"] = f"at most {RATIONALE_LIMIT} characters (got {len(rationale)})"
    _storable(title, "title", problems)
    _storable(rationale, "rationale", problems)
    if draft.jira_issue is not None:
        _storable(draft.jira_issue, "jira_issue", problems)
        if len(draft.jira_issue) > limits.ISSUE_KEY:
            problems["jira_issue"] = f"at most {limits.ISSUE_KEY} characters"
    added = _items(draft.scope_added, "scope_added", problems)
    removed = _items(draft.scope_removed, "scope_removed", problems)
    both = set(added) & set(removed)
    if both:
        problems["scope_removed"] = f"added and removed at once: {', '.join(sorted(both))}"
    _amount(draft.effort_days, "effort_days", problems)
    _amount(draft.cost, "cost", problems)
    if abs(draft.schedule_days) > MAX_SCHEDULE_DAYS:
        problems["schedule_days"] = f"at most {MAX_SCHEDULE_DAYS} days either way"
    for name in draft.not_estimated:
        if name not in ESTIMATES or getattr(draft, name):
            problems[name] = "given and not estimated at once" if name in ESTIMATES else "not an estimate"
    if problems:
        raise InvalidRequest(problems)
    return Draft(title=title, rationale=rationale, phase=draft.phase, scope_added=added, scope_removed=removed,
                 effort_days=draft.effort_days, schedule_days=draft.schedule_days, cost=draft.cost,
                 amendment=draft.amendment, jira_issue=draft.jira_issue,
                 not_estimated=tuple(dict.fromkeys(draft.not_estimated)))


def items_of(scope: dict[str, Any]) -> dict[str, list[str]]:
    """The scope items per phase a baseline holds; the first baseline's are its milestone keys."""
    if "items" in scope:
        return {p: list(v) for p, v in scope["items"].items()}
    return {p: list(v.get("milestones", [])) for p, v in scope.get("phases", {}).items()}


def count_items(scope: dict[str, Any]) -> int:
    return sum(len(v) for v in items_of(scope).values())


def scope_after(scope: dict[str, Any], draft: Draft, phase: Phase, engagement: Engagement,
                amended: Engagement | None) -> dict[str, list[str]]:
    """The scope items per phase once the request is approved: the phase's items with the removed
    ones taken out and the added ones put in, and, for a file amendment, milestones that left or
    joined any phase's list likewise (one rule for the assessment and the new baseline)."""
    items = items_of(scope)
    mine = [i for i in items.get(phase.value, []) if i not in draft.scope_removed]
    items[phase.value] = mine + [i for i in draft.scope_added if i not in mine]
    if amended is not None:
        for p in amended.phases.present():
            old = {m.key for m in engagement.phases.of(p).milestones} if p in engagement.phases.present() else set()
            new = [m.key for m in amended.phases.of(p).milestones]
            kept = [i for i in items.get(p.value, []) if i not in old - set(new)]
            items[p.value] = kept + [k for k in new if k not in old and k not in kept]
    return items


class Timebox(BaseModel):
    """Where the phase stands in the ledger: its current timebox's end and the days booked so far."""

    ends_on: dt.date
    days_booked: int  # every timebox's weeks plus every approved schedule change


class Assessment(BaseModel):
    """What a change request does to the baseline, in numbers; `lines()` says it in plain words."""

    baseline_version: int
    phase: Phase
    schedule_days: int
    ends_on: dt.date | None
    new_ends_on: dt.date | None
    days_after: int | None
    planned_days: int
    max_days: int | None
    cost: float
    currency: str
    change_budget: float
    spent: float
    items_original: int
    items_after: int
    milestones: list[str]
    exit_criteria: list[str]
    amendment: list[str]
    not_estimated: list[str] = []  # figures the request does not give: said so, never counted as 0

    @property
    def remaining_after(self) -> float:
        return self.change_budget - self.spent - self.cost

    @property
    def over_budget(self) -> bool:
        return self.remaining_after < 0

    @property
    def past_plan(self) -> bool:
        return self.days_after is not None and self.days_after > self.planned_days

    @property
    def past_max(self) -> bool:
        return self.days_after is not None and self.max_days is not None and self.days_after > self.max_days

    @property
    def growth_percent(self) -> float:
        if not self.items_original:
            return 0.0
        return (self.items_after - self.items_original) / self.items_original * 100

    def lines(self) -> list[str]:
        days = self.schedule_days
        if "schedule_days" in self.not_estimated:
            schedule = "Schedule: not estimated" + (f"; the {self.phase.value} ends {self.ends_on}."
                                                    if self.ends_on else ".")
        elif days and self.new_ends_on is not None:
            where = (f"past its maximum of {(self.max_days or 0) // 7} weeks" if self.past_max
                     else f"past its planned {self.planned_days // 7} weeks" if self.past_plan else "within its plan")
            schedule = (f"Schedule: {self.phase.value} {'slips' if days > 0 else 'is pulled in'} by {abs(days)} "
                        f"days, now ending {self.new_ends_on} (was {self.ends_on}); {self.days_after} days "
                        f"in all with approved changes, {where}.")
        else:
            schedule = f"Schedule: no change to {self.phase.value}."
        remaining = self.change_budget - self.spent
        money = (f"Cost: {self.cost:,.0f} {self.currency} against {remaining:,.0f} {self.currency} left of the "
                 f"{self.change_budget:,.0f} change budget")
        money += (f"; *over budget by {-self.remaining_after:,.0f} {self.currency}*." if self.over_budget
                  else f"; {self.remaining_after:,.0f} {self.currency} left after it.")
        if "cost" in self.not_estimated:
            money = (f"Cost: not estimated; {remaining:,.0f} {self.currency} left of the {self.change_budget:,.0f} "
                     "change budget.")
        scope = (f"Scope: {self.items_after} items after it against {self.items_original} in the first baseline "
                 f"({self.growth_percent:+.0f} % cumulative growth).")
        touched = (f"Touches milestones: {', '.join(self.milestones) or 'none'}; exit criteria: "
                   f"{', '.join(self.exit_criteria) or 'none'}.")
        lines = [schedule, money, scope, touched]
        if self.amendment:
            lines.append("File amendments: " + "; ".join(self.amendment[:20])
                         + (f" (+{len(self.amendment) - 20} more)" if len(self.amendment) > 20 else ""))
        return lines


def assess(draft: Draft, phase: Phase, engagement: Engagement, *, scope: dict[str, Any], version: int,
           original: dict[str, Any], timebox: Timebox | None, max_weeks: int | None,
           spent: float | None = None) -> Assessment:
    """Compare the request with the current baseline (`scope`, version `version`) and the first one.
    `spent`: what the change budget has paid for so far (approved changes and extensions); by
    default the approved changes the baseline counts."""
    new = Engagement.model_validate(draft.amendment) if draft.amendment is not None else None
    after = sum(len(v) for v in scope_after(scope, draft, phase, engagement, new).values())
    config = engagement.phases.of(phase)
    keys = {m.key for m in config.milestones}
    touched = [i for i in (*draft.scope_removed, *draft.scope_added) if i in keys]
    criteria = []
    required = {m.key for m in config.milestones if m.required}
    if any(i in required for i in draft.scope_removed) and any(c.all_required_milestones_done
                                                              for c in config.exit_criteria):
        criteria.append("all required milestones done")
    changes: list[str] = []
    if new is not None:
        changes = diff(engagement.model_dump(mode="json"), new.model_dump(mode="json"))
        touched += sorted(keys ^ {m.key for m in new.phases.of(phase).milestones})
        criteria += [c.label for c in new.phases.of(phase).exit_criteria if c not in config.exit_criteria]
        criteria += [c.label for c in config.exit_criteria if c not in new.phases.of(phase).exit_criteria]
    days_after = new_end = None
    if timebox is not None:
        days_after = timebox.days_booked + draft.schedule_days
        new_end = timebox.ends_on + dt.timedelta(days=draft.schedule_days)
    budget = engagement.budget
    return Assessment(
        baseline_version=version, phase=phase, schedule_days=draft.schedule_days,
        ends_on=timebox.ends_on if timebox else None, new_ends_on=new_end, days_after=days_after,
        planned_days=config.planned_weeks * 7, max_days=max_weeks * 7 if max_weeks else None, cost=draft.cost,
        currency=budget.currency, change_budget=budget.change_budget, spent=float(scope.get("change_spent", 0.0)) if spent is None else spent,
        items_original=count_items(original), items_after=after, milestones=list(dict.fromkeys(touched)),
        exit_criteria=list(dict.fromkeys(criteria)), amendment=changes, not_estimated=list(draft.not_estimated))


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for index, item in enumerate(value):
            name = next((str(item[k]) for k in ("key", "slack_user", "name", "metric") if k in item), str(index))
            _flatten(item, f"{path}[{name}]", out)
    else:
        out[path] = value


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One line per changed field between two engagement files, e.g. `phases.poc.planned_weeks: 8 → 10`."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    _flatten(old, "", before)
    _flatten(new, "", after)
    lines = []
    for path in sorted(before.keys() | after.keys()):
        if path not in after:
            lines.append(f"{path}: {before[path]} removed")
        elif path not in before:
            lines.append(f"{path}: {after[path]} added")
        elif before[path] != after[path]:
            lines.append(f"{path}: {before[path]} → {after[path]}")
    return lines
