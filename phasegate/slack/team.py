"""The vendor's team and the client's running checks from Slack, as from the CLI:

    /phasegate team ENGAGEMENT
    /phasegate team ENGAGEMENT leaves Jonas Berg joins Ana Ruiz as ML engineer because Jonas moved on
    /phasegate check ENGAGEMENT repository|decisions|pairing|data-deleted [no] [note…]

Only from the engagement's own channel; who acts is the verified command's user, checked by
`phasegate.ledger.handoff` (the PM or an approver changes the team; the client's approvers attest
checks). Each change is recorded in the audit chain before the answer; the answer is ephemeral.
"""

from __future__ import annotations

import shlex

from fastapi import Response

from phasegate.errors import NotFound, PolicyError
from phasegate.ledger import handoff
from phasegate.ledger.db import transaction
from phasegate.rules.handoff import CHECKS, roster
from phasegate.slack.change_requests import ephemeral
from phasegate.slack.channels import RECORDING, in_its_channel
from phasegate.slack.deps import SlackDeps
from phasegate.slack.inbound import Command
from phasegate.states import Via
from phasegate.text import literal

TEAM_USAGE = ("Usage: `/phasegate team ENGAGEMENT` shows the vendor's team; `/phasegate team ENGAGEMENT leaves "
              "NAME joins NAME as ROLE because REASON` records a change (either part alone too).")
CHECK_USAGE = (f"Usage: `/phasegate check ENGAGEMENT CHECK [no] [note]`, CHECK one of {', '.join(CHECKS)}; "
               "`no` when it does not hold this week.")
KEYWORDS = ("leaves", "joins", "as", "because")


def parts(words: list[str]) -> dict[str, str] | None:
    """`leaves A B joins C as D because E F` -> {leaves: "A B", joins: "C", as: "D", because: "E F"};
    None when a word comes before any keyword or a keyword is repeated."""
    found: dict[str, list[str]] = {}
    current: str | None = None
    for word in words:
        if word in KEYWORDS:
            if word in found:
                return None
            current = word
            found[word] = []
        elif current is None:
            return None
        else:
            found[current].append(word)
    return {key: " ".join(value) for key, value in found.items()}


def on_team(deps: SlackDeps, command: Command) -> Response:
    try:
        words = shlex.split(command.text)
    except ValueError:
        return ephemeral(TEAM_USAGE)
    if len(words) < 2:
        return ephemeral(TEAM_USAGE)
    here = in_its_channel(deps.sessions, words[1], command.channel, RECORDING)
    if isinstance(here, str):
        return ephemeral(here)
    found = here.engagement
    said = parts(words[2:])
    if said is None or ("as" in said) != ("joins" in said):
        return ephemeral(TEAM_USAGE)
    try:
        with transaction(deps.sessions, write=bool(said)) as session:
            if said:
                handoff.change_team(session, found, joins=(said["joins"], said["as"]) if "joins" in said else None,
                                    leaves=said.get("leaves"), by=command.user, reason=said.get("because", ""),
                                    via=Via.SLACK)
            team = roster(found.vendor_team, handoff.team_changes(session, found.id))
    except (PolicyError, NotFound) as exc:
        return ephemeral(f"{literal(str(exc))}; nothing was recorded.")
    names = ", ".join(f"{literal(name)} ({literal(role)})" for name, role in team) or "nobody named"
    return ephemeral(("Recorded. " if said else "") + f"{literal(found.vendor)}'s team for "
                     f"{literal(found.name)}: {names}.")


def on_check(deps: SlackDeps, command: Command) -> Response:
    words = command.text.split()
    if len(words) < 3:
        return ephemeral(CHECK_USAGE)
    here = in_its_channel(deps.sessions, words[1], command.channel, RECORDING)
    if isinstance(here, str):
        return ephemeral(here)
    found = here.engagement
    holds = not (len(words) > 3 and words[3].lower() == "no")
    note = " ".join(words[4:] if not holds else words[3:])
    try:
        with transaction(deps.sessions) as session:
            handoff.attest_check(session, found, words[2], by=command.user, holds=holds, via=Via.SLACK, note=note)
    except (PolicyError, NotFound) as exc:
        return ephemeral(f"{literal(str(exc))}; nothing was recorded.")
    return ephemeral(f"Recorded: “{literal(CHECKS[words[2]])}” {'holds' if holds else 'does not hold'} "
                     f"for {literal(found.name)}, attested by you.")
