"""The words the steering committee's export (phasegate.reports.audit, .audit_csv) and `audit verify`
share: the chain head and its witnesses, a person by name beside the Slack id, and what a change
request did to the baseline. Plain text; each format escapes it its own way."""

from __future__ import annotations

from phasegate.ledger.history import ChangeRecord, GateRecord, History
from phasegate.ledger.verify import ChainReport
from phasegate.ledger.witness import WitnessCheck
from phasegate.rules.change_requests import figure
from phasegate.states import ChangeRequestState


def witness_words(check: WitnessCheck) -> str:
    if check.not_checked is not None:
        return f"witness not checked: {check.not_checked}"
    if not check.witnesses:
        return "no witness in Slack yet"
    newest = check.witnesses[-1]
    count = len(check.witnesses)
    return f"witnessed by {count} Slack message{'s' if count > 1 else ''} (newest: #{newest.seq})"


def head_words(r: ChainReport, check: WitnessCheck) -> str:
    """The chain head as `audit verify` reports an unbroken chain: "23 events intact, head #23 <hash>;
    witnessed by 2 Slack messages (newest: #20)"."""
    state = "intact" if check.not_checked is None else "consistent in the database"
    return f"{r.events} events {state}, head #{r.head_seq} {r.head_hash}; {witness_words(check)}"


def chain_state(h: History, check: WitnessCheck) -> str:
    """"broken" when `audit verify` would name a problem; "intact", or without the witness only
    "consistent in the database"."""
    if h.chain.problems or check.problems:
        return "broken"
    return "intact" if check.not_checked is None else "consistent in the database"


def gate_title(g: GateRecord) -> str:
    return f"{g.phase.gate} ({g.phase.value}), timebox {g.timebox}, revision {g.revision}"


def person(h: History, slack_user: str) -> str:
    """A name beside its Slack id where the engagement file gives one, the id alone where not."""
    name = h.names.get(slack_user)
    return f"{name} ({slack_user})" if name else slack_user


def currency(h: History) -> str:
    return h.budget.currency if h.budget else ""


def effect(rec: ChangeRecord, cur: str) -> str:
    """What the request did (or, still open, would do) to the baseline, in the committee's words."""
    cr, a = rec.entry, rec.assessment
    asked = [f"scope +{len(cr.added)} ({', '.join(cr.added)})" if cr.added else "",
             f"scope -{len(cr.removed)} ({', '.join(cr.removed)})" if cr.removed else "",
             "schedule " + figure(cr.schedule_days, "schedule_days", cr.not_estimated, " days"),
             "cost " + figure(cr.cost, "cost", cr.not_estimated) + ("" if "cost" in cr.not_estimated else f" {cur}"),
             "effort " + figure(cr.effort_days, "effort_days", cr.not_estimated, " days")]
    if a is not None and a.amendment:
        asked.append(f"{len(a.amendment)} change{'s' if len(a.amendment) > 1 else ''} to the engagement file")
    what = ", ".join(p for p in asked if p)
    before = f"v{a.baseline_version}" if a is not None else "the baseline"
    if cr.state is ChangeRequestState.APPROVED:
        return f"baseline {before} became v{cr.baseline_version}: {what}"
    if cr.state in (ChangeRequestState.REJECTED, ChangeRequestState.WITHDRAWN):
        return f"none, baseline {before} unchanged (asked for: {what})"
    return f"none yet; if approved, baseline {before} changes by: {what}"
