"""The weekly report's lines beside the build (issue 20): the vendor's named team and its changes,
the client's running knowledge-transfer checks from the PoC on, and the data-deletion deadline.

Read from the ledger's view (`phasegate.reports.facts`), decided by `phasegate.rules.handoff`; the
lines are Slack mrkdwn with every outside text rendered by `phasegate.text.literal`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from phasegate.reports.facts import LedgerView
from phasegate.reports.model import CheckItem, Sponsor
from phasegate.rules.handoff import DATA_DELETED, FRESH, KT_CHECKS, KT_PHASES, Change, deletion_state, latest, roster
from phasegate.text import literal


def change_line(change: Change, who: Mapping[str, str], tz: dt.tzinfo) -> str:
    by = who.get(change.by, change.by)
    return (f"{change.at.astimezone(tz):%Y-%m-%d}: {literal(change.name)} ({literal(change.role)}) {change.kind}"
            f" — “{literal(change.reason)}”, recorded by {literal(by)}")


def sponsor_of(view: LedgerView, now: dt.datetime, who: Mapping[str, str]) -> Sponsor:
    config, tz = view.config, view.config.tz
    today = now.astimezone(tz).date()
    found = Sponsor(team=[f"{literal(name)} ({literal(role)})" for name, role in roster(config.vendor_team,
                                                                                           view.team_changes)],
                    team_changes=[change_line(c, who, tz) for c in view.team_changes])
    said = latest(view.checks)
    if view.row.current_phase in KT_PHASES:
        items = []
        for key, title in KT_CHECKS.items():
            last = said.get(key)
            fresh = last is not None and now - last.at <= FRESH
            items.append(CheckItem(key=key, title=title, holds=last.holds if fresh and last else None,
                                   attested_by=who.get(last.by, last.by) if last else None,
                                   attested_on=last.at.astimezone(tz).date() if last else None))
        found.checks = items
    handling = config.data_handling
    if handling is not None:
        deleted = said.get(DATA_DELETED)
        state = deletion_state(handling, today, deleted)
        found.deletion = state
        deadline = f"{handling.deletion_deadline:%d %b %Y}"
        found.data = [f"Encryption: {literal(handling.encryption)}."]
        if state == "done" and deleted is not None:
            found.data.append(f":white_check_mark: The vendor's copies of the data are deleted (deadline {deadline}); "
                              f"attested by {literal(who.get(deleted.by, deleted.by))} on "
                              f"{deleted.at.astimezone(tz):%d %b %Y}.")
        elif state == "overdue":
            found.data.append(f":rotating_light: The data-deletion deadline {deadline} has passed and nobody on the "
                              f"client side has attested the deletion: `phasegate evidence check "
                              f"{config.id} {DATA_DELETED}`.")
        elif state == "due":
            days = (handling.deletion_deadline - today).days
            found.data.append(f":calendar: Reminder: the vendor must delete its copies of the data by {deadline} "
                              f"({days} days); the client side attests it afterwards.")
        else:
            found.data.append(f"The vendor deletes its copies of the data by {deadline}.")
    return found


def check_lines(s: Sponsor, engagement_id: str) -> list[str]:
    lines = []
    for item in s.checks or []:
        if item.holds is None:
            last = (f"; last attested by {literal(item.attested_by or '')} on {item.attested_on}"
                    if item.attested_by else "")
            lines.append(f":grey_question: {item.title}: not confirmed this week{last}")
        else:
            icon = ":white_check_mark:" if item.holds else ":x:"
            said = "yes" if item.holds else "no"
            lines.append(f"{icon} {item.title}: {said}, says {literal(item.attested_by or '')} ({item.attested_on})")
    if any(item.holds is None for item in s.checks or []):
        lines.append(f"The client side confirms each week: `/phasegate check {engagement_id} CHECK` in Slack or "
                     f"`phasegate evidence check {engagement_id} CHECK --as YOU` (CHECK: {', '.join(KT_CHECKS)}; "
                     "`no` / `--no` when it does not hold).")
    return lines


def sections(s: Sponsor, engagement_id: str) -> list[tuple[str, list[str]]]:
    parts = []
    if s.checks is not None:
        parts.append(("Knowledge transfer (checked by the client each week)", check_lines(s, engagement_id)))
    if s.team or s.team_changes:
        changes = [f":arrows_counterclockwise: {line}" for line in s.team_changes]
        parts.append(("Vendor team", ([", ".join(s.team)] if s.team else ["nobody named"]) + changes))
    if s.data:
        parts.append(("Data handling", s.data))
    return parts
