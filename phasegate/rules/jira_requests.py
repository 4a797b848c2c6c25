"""What a Jira issue filed as a change request says, as plain data: who filed it, what it asks for
(frozen under a digest), and how two versions of it differ.

Who: the issue's reporter is matched against the Jira accounts and emails the engagement file
gives beside its people (`jira_account_id`, `jira_email` on an approver entry); a match files the
request as that person's Slack id, so the gate policy's one rule against self-approval
(`phasegate.rules.policy.check`) holds for it as for any other request. A reporter the file does
not name is an outside requester, stored as `jira:<name>`, which is never an approver's id.

What: the title, the description and the original estimate, hashed together. The request is
assessed and answered on that content; a later edit in Jira has a new digest, which the import
turns into a new revision (still open) or a reported difference (decided).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from phasegate.configs.schema import Engagement
from phasegate.rules.change_requests import RATIONALE_LIMIT, TITLE_LIMIT, Draft

OUTSIDE = "jira:"  # the prefix of a requester the engagement file does not name
NEVER_IN_JIRA = ("schedule_days", "cost")  # a Jira issue carries an effort estimate at most


def people(engagement: Engagement) -> dict[tuple[str, str], str]:
    """(field, value) -> Slack id, for every Jira account and email the file gives."""
    policies = [engagement.phases.of(p).gate for p in engagement.phases.present()]
    if engagement.change_requests is not None:
        policies.append(engagement.change_requests)
    found: dict[tuple[str, str], str] = {}
    for approver in (a for policy in policies for a in policy.approvers):
        if approver.jira_account_id:
            found[("account", approver.jira_account_id)] = approver.slack_user
        if approver.jira_email:
            found[("email", approver.jira_email.casefold())] = approver.slack_user
    return found


def requester(engagement: Engagement, reporter: Mapping[str, Any] | None) -> str:
    """The Slack id of the person the file says the reporter is, else `jira:<name>` (an outside
    requester). Cloud names a user by accountId, Data Center by name and key."""
    reporter = reporter or {}
    known = people(engagement)
    for field in ("accountId", "name", "key"):
        value = reporter.get(field)
        if isinstance(value, str) and ("account", value) in known:
            return known[("account", value)]
    email = reporter.get("emailAddress")
    if isinstance(email, str) and ("email", email.casefold()) in known:
        return known[("email", email.casefold())]
    name = reporter.get("displayName") or reporter.get("emailAddress") or reporter.get("name")
    return f"{OUTSIDE}{name}"[:64] if isinstance(name, str) and name else OUTSIDE.rstrip(":")


def outside_name(requested_by: str) -> str | None:
    """The name of an outside requester (`jira:<name>`, or `jira` with none known); None for a person."""
    if requested_by == OUTSIDE.rstrip(":"):
        return "an unnamed Jira user"
    return requested_by.removeprefix(OUTSIDE) if requested_by.startswith(OUTSIDE) else None


@dataclass(frozen=True)
class Content:
    """What a Jira issue asks for, as the request is filed and assessed on it."""

    title: str
    rationale: str
    estimate_days: float | None  # None: the issue has no original estimate

    @property
    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def not_estimated(self) -> tuple[str, ...]:
        return (*(("effort_days",) if self.estimate_days is None else ()), *NEVER_IN_JIRA)

    def draft(self, issue_key: str) -> Draft:
        return Draft(title=self.title, rationale=self.rationale, effort_days=self.estimate_days or 0.0,
                     not_estimated=self.not_estimated, jira_issue=issue_key)


def plain_text(description: object) -> str:
    """A description as text: Jira's v2 API sends a string, Cloud's v3 search an Atlassian Document
    Format tree (its text nodes are joined, a line per paragraph or other block)."""
    if isinstance(description, str):
        return description
    if not isinstance(description, Mapping):
        return ""
    if description.get("type") == "text":
        return str(description.get("text") or "")
    if description.get("type") == "hardBreak":
        return "\n"
    parts = [plain_text(node) for node in description.get("content") or [] if isinstance(node, Mapping)]
    inline = all(isinstance(n, Mapping) and n.get("type") in ("text", "hardBreak", "mention", "emoji")
                 for n in description.get("content") or [])
    return "".join(parts) if inline else "\n".join(p for p in parts if p)


def content_of(summary: object, description: object, estimate_seconds: object, *, key: str,
               hours_per_day: float) -> Content:
    """The content of an issue's fields: the summary (the key when empty) and description cut to what a
    prompt shows, the original estimate in days of the site's working day."""
    title = (summary if isinstance(summary, str) and summary.strip() else key).strip()[:TITLE_LIMIT]
    rationale = plain_text(description).strip()[:RATIONALE_LIMIT]
    estimate = None
    if isinstance(estimate_seconds, int | float) and not isinstance(estimate_seconds, bool) and estimate_seconds > 0:
        estimate = round(estimate_seconds / (hours_per_day * 3600), 2)
    return Content(title=title, rationale=rationale, estimate_days=estimate)


def content_from(data: Mapping[str, Any]) -> Content:
    return Content(title=str(data["title"]), rationale=str(data["rationale"]),
                   estimate_days=None if data.get("estimate_days") is None else float(data["estimate_days"]))


def _estimate(days: float | None) -> str:
    return "not estimated" if days is None else f"{days:g} days"


def changes(old: Content, new: Content) -> list[str]:
    """One line per field that differs, e.g. `estimate: 3 → 80 days`."""
    lines = []
    if old.title != new.title:
        lines.append(f"title: “{old.title}” → “{new.title}”")
    if old.rationale != new.rationale:
        lines.append("description edited")
    if old.estimate_days != new.estimate_days:
        both = old.estimate_days is not None and new.estimate_days is not None
        lines.append(f"estimate: {old.estimate_days:g} → {new.estimate_days:g} days" if both
                     else f"estimate: {_estimate(old.estimate_days)} → {_estimate(new.estimate_days)}")
    return lines
