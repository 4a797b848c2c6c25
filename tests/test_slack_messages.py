"""phasegate's Slack messages against the stand-in, which enforces Slack's limits: rate limits are
waited out, and a gate prompt stays valid Block Kit however much evidence it carries."""

from __future__ import annotations

import time

from helpers import posted_gate, with_changes

from phasegate.configs.schema import Engagement
from phasegate.integrations.slack_chat import SlackChat, make_web_client
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.messages.prompts import render
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.slack_api import SlackStandin


def test_rate_limits_are_waited_out(slack: SlackStandin) -> None:
    chat = SlackChat(make_web_client(slack.bot_token, slack.base_url))
    slack.fail_next("chat.postMessage", 429, retry_after=1, times=2)
    started = time.monotonic()
    ts = chat.post("C0ACMECHURN", "kickoff")
    assert time.monotonic() - started >= 2
    assert slack.message("C0ACMECHURN", ts).text == "kickoff"
    assert slack.calls.count("chat.postMessage") == 3


def test_a_prompt_with_a_lot_of_evidence_stays_within_block_kit_limits(
        rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    many = [{"key": f"m{n:02d}", "title": "A milestone with a very long title " + "x" * 180} for n in range(40)]
    engagement = with_changes(acme, phases__poc__milestones=many)
    gate_id = posted_gate(rt, engagement).id
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        _, blocks = render(session, gate)
    assert gate.message_ts is not None  # the stand-in accepted the prompt
    posted = slack.message(engagement.slack_channel, gate.message_ts).blocks
    assert posted == blocks and len(blocks) <= 50
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in blocks)
    assert "…" in str(blocks)  # the milestone list was clipped, not dropped
