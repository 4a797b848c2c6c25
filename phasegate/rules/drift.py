"""Scope drift (R-CR-4): Jira issues that entered a phase's scope after its baseline, or left it,
with no approved change request.

A phase's scope in Jira is what its milestones point at: the issues a milestone's JQL filter
matches (epic, labels, fix version, component), and the children of a milestone's own issue (the
issues in its epic and its sub-tasks). When a phase's baseline is recorded, these keys are stored
with it (`issues` in the baseline's scope, per phase, and `issues_by_milestone`, per phase and
milestone). Later, anything in scope that the baseline did not hold is drift ("entered") unless
an approved change request of that phase names its key in an added scope item ("ACME-42 SHAP
report") or as its Jira issue; and anything the baseline held that is no longer in scope
(relabelled out of a filter, moved to another project, deleted) is drift ("left") unless an
approved change request of the phase names it in a removed scope item. Drift is how "just one
more model" shows up before it has quietly eaten the timebox, and how descoping shows up before
it passes a gate: an issue that left counts as not done for its milestone
(`phasegate.rules.evidence`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from phasegate.configs.schema import Engagement, Phase
from phasegate.rules import jira_scope
from phasegate.rules.change_requests import ITEM_LIMIT, ITEMS_LIMIT, RATIONALE_LIMIT, TITLE_LIMIT, Draft
from phasegate.text import literal

ISSUE_KEY = re.compile(r"\b[A-Z][A-Z0-9_]{0,9}-[0-9]+\b")
SHOWN = 10  # drift lines in a prompt or report; the count covers them all


Searcher = jira_scope.Searcher


@dataclass(frozen=True)
class DriftItem:
    key: str
    summary: str
    milestone: str  # "" for an issue that left, when the baseline does not say under which milestone


@dataclass(frozen=True)
class Baseline:
    """What the ledger holds of a phase's scope in Jira: the keys its baseline recorded, under each
    milestone where the baseline says (`by_milestone`; baselines recorded before it was kept say
    nothing), and the keys the phase's approved change requests added or removed."""

    keys: frozenset[str]
    by_milestone: Mapping[str, frozenset[str]] = field(default_factory=dict)
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()

    def home(self, key: str) -> str:
        """The milestone the baseline recorded `key` under ("" when it does not say)."""
        return next((m for m, keys in sorted(self.by_milestone.items()) if key in keys), "")


@dataclass(frozen=True)
class Drift:
    """A phase's drift: issues that entered its scope (`items`) and issues that left it (`left`),
    or why it could not be checked (`error`)."""

    engagement_id: str
    phase: Phase
    items: list[DriftItem] = field(default_factory=list)
    error: str | None = None
    left: list[DriftItem] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.items) + len(self.left)

    def lines(self, browse_url: str = "") -> list[str]:
        """One warning line per drifted issue (the first SHOWN), or the reason it was not checked.

        Plain text; with `browse_url` each key is a link to it and the lines are Slack mrkdwn, the
        Jira summaries and the reason rendered by `phasegate.text.literal`."""
        def shown_as(text: str) -> str:
            return literal(text) if browse_url else text

        if self.error:
            return [f"scope drift not checked: {shown_as(self.error)}"]
        entered = [f"{_link(i.key, browse_url)}{' ' + shown_as(i.summary) if i.summary else ''} (under {i.milestone}) "
                   f"entered the {self.phase.value} scope after the baseline, with no approved change request"
                   for i in self.items]
        left = [f"{_link(i.key, browse_url)}{f' (under {i.milestone})' if i.milestone else ''} left the "
                f"{self.phase.value} scope after the baseline, with no approved change request removing it"
                for i in self.left]
        shown = (left + entered)[:SHOWN]
        if self.count > SHOWN:
            shown.append(f"… and {self.count - SHOWN} more (`phasegate cr drift {self.engagement_id}`)")
        return shown


def _link(key: str, browse_url: str) -> str:
    return f"<{literal(browse_url + key)}|{literal(key)}>" if browse_url else key


def scope_issues(engagement: Engagement, phase: Phase, links: Mapping[str, str], tracker: Searcher,
                 already: Mapping[str, Sequence[Any]] | None = None) -> dict[str, list[Any]]:
    """milestone key -> the Jira issues in its scope now (IntegrationError when Jira cannot say).
    `already`: JQL milestones' issues searched moments ago (the weekly report's progress), not
    searched twice."""
    found: dict[str, list[Any]] = {}
    for m in engagement.phases.of(phase).milestones:
        if m.jql is not None and already is not None and m.key in already:
            found[m.key] = list(already[m.key])
        elif m.jql is not None or (m.jira_issue or links.get(m.key)) is not None:
            found[m.key] = jira_scope.scope(engagement, m, m.jira_issue or links.get(m.key), tracker)
    return found


def keys_of(found: Mapping[str, Sequence[Any]]) -> list[str]:
    return sorted({i.key for issues in found.values() for i in issues})


def keys_by_milestone(found: Mapping[str, Sequence[Any]]) -> dict[str, list[str]]:
    return {milestone: sorted({i.key for i in issues}) for milestone, issues in found.items()}


def baseline_keys(scope: Mapping[str, Any], phase: Phase) -> set[str] | None:
    """The keys a baseline recorded for the phase; None when it recorded none (Jira was down, or
    the baseline predates drift tracking)."""
    issues = scope.get("issues", {}).get(phase.value)
    return set(issues) if isinstance(issues, list) else None


def baseline_of(scope: Mapping[str, Any], phase: Phase, added: Iterable[str] = (),
                removed: Iterable[str] = ()) -> Baseline | None:
    """The phase's Baseline from a baseline's scope and the keys approved change requests added
    and removed; None when the baseline recorded no keys for the phase."""
    keys = baseline_keys(scope, phase)
    if keys is None:
        return None
    recorded = scope.get("issues_by_milestone", {}).get(phase.value)
    by_milestone = {str(m): frozenset(k) for m, k in recorded.items()} if isinstance(recorded, dict) else {}
    return Baseline(frozenset(keys), by_milestone, frozenset(added), frozenset(removed))


def keys_named(texts: Iterable[str]) -> set[str]:
    return {k for t in texts for k in ISSUE_KEY.findall(t)}


def find(engagement_id: str, phase: Phase, found: Mapping[str, Sequence[Any]], baseline: Baseline,
         milestones: Iterable[str] | None = None) -> Drift:
    """The drift between what is in scope now (`found`, every milestone's issues) and `baseline`.

    An issue that left is one the baseline holds, found under no milestone now and removed by no
    approved change request; if the baseline recorded it under a milestone no longer among the
    phase's `milestones` (an approved amendment dropped it), it left with its milestone."""
    items: dict[str, DriftItem] = {}
    for milestone, issues in found.items():
        for issue in issues:
            if issue.key not in baseline.keys and issue.key not in baseline.added and issue.key not in items:
                items[issue.key] = DriftItem(issue.key, str(getattr(issue, "summary", "")), milestone)
    now = {i.key for issues in found.values() for i in issues}
    current = set(found) if milestones is None else set(milestones)
    left = [DriftItem(key, "", baseline.home(key)) for key in baseline.keys - now - baseline.removed
            if not baseline.home(key) or baseline.home(key) in current]
    return Drift(engagement_id, phase, _by_key(items.values()), left=_by_key(left))


def _by_key(items: Iterable[DriftItem]) -> list[DriftItem]:
    return sorted(items, key=lambda i: (len(i.key), i.key))


def draft(drift: Drift, total: int | None = None) -> Draft:
    """A change request pre-filled to cover the drift: one scope item per issue, naming its key,
    added for an issue that entered, removed for one that left. Effort, schedule and cost are left
    at 0 for the requester to fill in.

    A request holds at most ITEMS_LIMIT added and ITEMS_LIMIT removed items, so a larger drift is
    covered in parts: the title says how many of how many this one covers, and the rationale names
    exactly which keys it covers and how many are left for the next draft. `total`: the drift's
    size when `drift` holds only part of it (the weekly report keeps the first 25)."""
    entered, left = drift.items[:ITEMS_LIMIT], drift.left[:ITEMS_LIMIT]
    covers = [*left, *entered]
    total = max(total or 0, drift.count)
    if len(covers) < total:
        keys = f"{len(covers)} of {total} issues ({', '.join(i.key for i in covers[:3])}, …)"
        why = [f"Covers {len(covers)} of the {total} drifted issues, exactly these: "
               f"{', '.join(i.key for i in covers)}. The other {total - len(covers)} stay drift until "
               "another request covers them (draft it again after this one is decided)"]
    else:
        keys = ", ".join(i.key for i in covers[:5]) + (f" and {len(covers) - 5} more" if len(covers) > 5 else "")
        why = []
    why += (["Issues entered the phase's scope in Jira after its baseline: "
             + "; ".join(f"{i.key} {i.summary} (under {i.milestone})" for i in entered)] if entered else [])
    why += [f"Issues left it: {', '.join(i.key for i in left)}"] if left else []
    return Draft(title=f"Scope drift in {drift.phase.value}: {keys}"[:TITLE_LIMIT],
                 rationale=". ".join(why)[:RATIONALE_LIMIT], phase=drift.phase,
                 scope_added=tuple(f"{i.key} {i.summary}"[:ITEM_LIMIT] for i in entered),
                 scope_removed=tuple(i.key for i in left))
