"""Gate policy: who may answer a gate, what an answer needs, and when answers add up to a decision.

Pure functions over the engagement file's `GatePolicy`; the ledger applies them inside one
locked transaction so Slack, the CLI and the Prefect UI are held to exactly the same rules.

An outcome is reached when the approvers whose latest answer is that outcome meet the quorum:
`all` of them, `any` one, or `n`, and, with `one_from_each_side`, at least one client and one
vendor among them. Disagreement leaves the gate open; nobody's answer is ever assumed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from phasegate.configs.schema import Approver, Engagement, GatePolicy, Phase, Side
from phasegate.errors import PolicyError, ReasonRequired
from phasegate.states import Outcome, Via
from phasegate.text import checked

RED_FLAG = "red flag: "  # how a red flag is named among the unmet (phasegate.rules.snapshot)

OUTCOMES: dict[Phase, tuple[Outcome, ...]] = {
    Phase.SELECTION: (Outcome.GO, Outcome.NO_GO, Outcome.EXTEND),
    Phase.POC: (Outcome.GO, Outcome.NO_GO, Outcome.EXTEND),
    Phase.DEVELOPMENT: (Outcome.GO, Outcome.NO_GO, Outcome.EXTEND),
    Phase.HANDOVER: (Outcome.ACCEPT, Outcome.NOT_YET),
}


CHANGE_OUTCOMES = (Outcome.APPROVE, Outcome.REJECT)


def needs_reason(outcome: Outcome, unmet: Sequence[str]) -> bool:
    """NO-GO, EXTEND and NOT YET always need a written reason; GO and ACCEPT need one (the waiver)
    while any exit criterion of the frozen evidence fails or is missing (`unmet`)."""
    return outcome.needs_reason or (outcome.passes and bool(unmet))


def is_waiver(outcome: Outcome, unmet: Sequence[str], reason: str | None = None) -> bool:
    """A GO or ACCEPT given while exit criteria of the frozen evidence fail or are missing (`unmet`):
    allowed only with a written reason, the waiver's text (`check`). With `reason`, whether that one
    recorded answer is a waiver; without, whether a gate decided `outcome` was passed by one."""
    return outcome.passes and bool(unmet) and (reason is None or bool(reason.strip()))


def outcome_label(outcome: Outcome, waived: bool) -> str:
    """An outcome as the prompts and the exports name it: "GO with waiver" for a waiver."""
    return f"{outcome.label} with waiver" if waived else outcome.label


def answer_label(outcome: Outcome, unmet: Sequence[str], reason: str) -> str:
    return outcome_label(outcome, is_waiver(outcome, unmet, reason))


def check_answer(
    policy: GatePolicy, phase: Phase, *, via: Via, approver: str, requested_by: str, outcome: Outcome, reason: str,
    unmet: Sequence[str] = (),
) -> Approver:
    """The approver entry for a permitted answer, or PolicyError saying why it is refused.

    `unmet` names the exit criteria the gate's frozen evidence does not pass. Moving on past them
    is a waiver: it needs a written reason, kept with the decision, and is refused outright where
    the engagement file sets `allow_waivers: false`.
    """
    return check(policy, phase.gate, OUTCOMES[phase], via=via, approver=approver, requested_by=requested_by,
                 outcome=outcome, reason=reason, unmet=unmet)


# Answers whose approver is only claimed (`--as`, a typed Slack id), not vouched for by Slack
TYPED_OUTSIDE_SLACK = {Via.CLI: "the CLI", Via.PREFECT_UI: "the Prefect UI"}


def check(policy: GatePolicy, subject: str, allowed: tuple[Outcome, ...], *, via: Via, approver: str,
          requested_by: str, outcome: Outcome, reason: str, unmet: Sequence[str] = ()) -> Approver:
    """The one rule set for every decision, a gate's or a change request's (`subject` names it),
    whichever way it came in (`via`): `cli_answers: false` in the policy refuses what is typed outside
    Slack, the terminal and the Prefect UI's form (which does not even say who typed it)."""
    if via in TYPED_OUTSIDE_SLACK and not policy.cli_answers:
        raise PolicyError(f"{subject} takes no answers from {TYPED_OUTSIDE_SLACK[via]} (cli_answers: false in the "
                          "engagement file); answer in Slack")
    if outcome not in allowed:
        raise PolicyError(f"{outcome.label} is not an answer at {subject} (allowed: "
                          f"{', '.join(o.label for o in allowed)})")
    entry = next((a for a in policy.approvers if a.slack_user == approver), None)
    if entry is None:
        raise PolicyError(f"{approver} is not an approver of {subject}")
    if approver == requested_by:
        raise PolicyError(f"{approver} requested {subject} and so cannot approve it")
    checked("reason", reason)
    if outcome.passes and unmet and not policy.allow_waivers:
        raise PolicyError(f"{outcome.label} is refused while {what_stands(unmet)} ({'; '.join(unmet)}): "
                          f"{subject} allows no waivers")
    if needs_reason(outcome, unmet) and not reason.strip():
        if outcome.needs_reason:
            raise ReasonRequired(f"{outcome.label} needs a written reason")
        waives = what_stands(unmet)
        raise ReasonRequired(f"{outcome.label} while {waives} needs a written waiver reason ({'; '.join(unmet)})",
                             waives=waives)
    return entry


def what_stands(unmet: Sequence[str]) -> str:
    """What an approver moving on past `unmet` waives, in words: exit criteria not met, red flags
    (G0's, named "red flag: ..." in the list), or both."""
    flags = sum(1 for u in unmet if u.startswith(RED_FLAG))
    criteria = "exit criteria are not met" if len(unmet) > flags else ""
    flagged = "" if not flags else "a red flag stands" if flags == 1 else "red flags stand"
    return " and ".join(part for part in (criteria, flagged) if part) or "exit criteria are not met"


def change_policy(engagement: Engagement, phase: Phase) -> GatePolicy:
    """Who decides a change request: the file's `change_requests` section, else the phase's gate."""
    return engagement.change_requests or engagement.phases.of(phase).gate


def needed(policy: GatePolicy) -> int:
    count = policy.quorum.count
    if count == "all":
        return len(policy.approvers)
    if count == "any":
        return 1
    return count


def reached(policy: GatePolicy, latest: Mapping[str, Outcome]) -> Outcome | None:
    """The outcome the latest answers (approver id -> outcome) add up to, if any."""
    sides = {a.slack_user: a.side for a in policy.approvers}
    for outcome in dict.fromkeys(latest.values()):
        backers = [user for user, answer in latest.items() if answer is outcome and user in sides]
        if len(backers) < needed(policy):
            continue
        if policy.quorum.one_from_each_side and {sides[user] for user in backers} != set(Side):
            continue
        return outcome
    return None


def describe(policy: GatePolicy) -> str:
    count = policy.quorum.count
    text = {"all": "all approvers", "any": "any one approver"}.get(str(count), f"{count} approvers")
    if policy.quorum.one_from_each_side:
        text += ", at least one client and one vendor"
    return text


def in_words(policy: GatePolicy) -> str:
    """The quorum rule as a sentence for a sponsor, e.g. "Decided when 2 of the 3 approvers give the
    same answer, at least one from the client and one from the vendor."."""
    total, count = len(policy.approvers), policy.quorum.count
    if count == "all" or count == total:
        who = "all approvers" if total > 1 else "the approver"
        text = f"Decided when {who} give{'s' if total == 1 else ''} the same answer"
    elif count == "any" or count == 1:
        text = f"Decided by the first answer from any of the {total} approvers"
    else:
        text = f"Decided when {count} of the {total} approvers give the same answer"
    if policy.quorum.one_from_each_side:
        text += ", at least one from the client and one from the vendor"
    return text + "."
