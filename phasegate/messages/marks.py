"""The mark (Slack message metadata) of each post the ledger records by its ts, and how far back to
look for it.

Why: the ts is written to the ledger after chat.postMessage answers. If that answer is lost (the
connection drops after Slack stored the message) or the process dies before the ts is written,
the next attempt would post a second kickoff or prompt, and the first would keep live buttons no
one updates. Each such post therefore names what it is, and a post whose ledger row has no ts yet
is first looked for in the channel (`SlackChat.post_marked`), back to when the row was written.

    post_marked(channel, text, blocks, gate_prompt(gate), oldest=oldest(gate.opened_at))
"""

from __future__ import annotations

import datetime as dt

from phasegate.configs.schema import Phase
from phasegate.integrations.slack_chat import Mark
from phasegate.ledger.models import ChangeRequestRow, GateRow
from phasegate.states import ReportKind

LOOKBACK_MARGIN = dt.timedelta(minutes=5)  # clock skew between the ledger's host and Slack


def kickoff(engagement_id: str, phase: Phase) -> Mark:
    return Mark("phasegate_kickoff", {"engagement": engagement_id, "phase": phase.value})


def gate_prompt(gate: GateRow) -> Mark:
    """One per gate revision: a reopened gate's prompt is a new post, not the stale one found again."""
    return Mark("phasegate_gate_prompt", {"engagement": gate.engagement_id, "phase": gate.phase.value,
                                          "timebox": gate.timebox, "revision": gate.revision})


def change_request(cr: ChangeRequestRow) -> Mark:
    """One per revision: a revised request's prompt is a new post (revision 1 keeps the mark it always had)."""
    revision = {"revision": cr.revision} if cr.revision > 1 else {}
    return Mark("phasegate_change_request", {"engagement": cr.engagement_id, "number": cr.number, **revision})


def cr_announcement(cr: ChangeRequestRow) -> Mark:
    """The outcome said in the request's thread (it carries the chain head; phasegate.messages.witness)."""
    return Mark("phasegate_cr_announcement", {"engagement": cr.engagement_id, "number": cr.number,
                                              "revision": cr.revision})


def weekly_report(kind: ReportKind, subject: str, week: str) -> Mark:
    return Mark("phasegate_weekly_report", {"kind": kind.value, "subject": subject, "week": week})


def oldest(written_at: dt.datetime) -> float:
    """Unix seconds to look back to: when the ledger row that waits for the ts was written, less a margin
    (nothing of ours with this mark can be older than its row)."""
    moment = written_at if written_at.tzinfo is not None else written_at.replace(tzinfo=dt.UTC)
    return (moment - LOOKBACK_MARGIN).timestamp()
