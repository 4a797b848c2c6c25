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

from collections.abc import Mapping
from typing import Any

from phasegate.configs.schema import Engagement, Phase

OUTSIDE = "jira:"  # the prefix of a requester the engagement file does not name


def people(engagement: Engagement) -> dict[tuple[str, str], str]:
    """(field, value) -> Slack id, for every Jira account and email the file gives."""
    policies = [engagement.phases.of(p).gate for p in Phase]
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
