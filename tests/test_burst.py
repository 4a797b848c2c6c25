"""A burst of distinct clicks on a busy (not down) ledger: every one recorded exactly once, in time.

Each gate is G1 of its own engagement (one GO from each side decides it), so every click is a
decision of its own that must be recorded; half of them decide a gate and start the after-answer
work (the prompt's `chat.update`, the run's wake-up). The clicks are signed and sent as Slack sends
them, 50 in flight from a process of their own, to the endpoint wired as `phasegate up` wires it
(phasegate.ops.stack), on both backends, except that the refresher doing the after-answer work
runs on a thread of the endpoint's process (`refresh_here`), where `up` runs it as a process of its own. No clicker may be told "not recorded" (the ledger was
busy, never down: tests/test_ledger_down.py covers down), nor answered later than Slack waits.
Before the writers took turns, SQLite told 15-27 of the 600 "not recorded" and PostgreSQL answered
some later than 3 s (up to 7 s), now and then after "not recorded". On a loaded machine (load 7-15,
other test runs beside it) a click's 2.2 s in the line of writers still ran out for 7-43 of the 600
on SQLite: now a click is acknowledged within `ack_within` and finishes after the answer
(phasegate.slack.acknowledge). The clicks go over raw keep-alive connections (tests/rawclicks.py): an
httpx client, starved of CPU on such a machine, measured mostly its own wait (answers "after 3 s"
that the endpoint had given in 1.3 s).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from helpers import wait_until
from rawclicks import burst
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from phasegate.configs.schema import Engagement, Phase
from phasegate.integrations.slack_chat import SlackChat, make_web_client
from phasegate.ledger import engagements, gates, phases
from phasegate.ledger.db import transaction
from phasegate.ledger.models import AuditEventRow, DecisionRow, GateRow, utcnow
from phasegate.ops.servers import serve_in_thread
from phasegate.ops.stack import endpoint_deps
from phasegate.rules.evidence import Snapshot
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_user import SlackUser
from phasegate.slack.app import create_app
from phasegate.slack.deps import NOT_RECORDED
from phasegate.states import AuditKind, GateState, Outcome

pytestmark = pytest.mark.slow

SECRET = "burst-secret"
GATES = 300  # 600 clicks
CONCURRENCY = 50
SLACK_WAITS = 3.0  # seconds; an answer later than that is an error in the clicker's Slack
CLIENT, VENDOR = "U0SPONSOR1", "U0VENDLEAD"  # one from each side: the second answer decides G1


def prompts(ledger: sessionmaker[Session], chat: SlackChat | None, acme: Engagement,
            count: int = GATES) -> list[tuple[int, str, str | None]]:
    """`count` open G1 gates, each of its own engagement, its prompt posted (not without a `chat`):
    (gate id, channel, ts)."""
    data = acme.model_dump(mode="json")
    opened = []
    with transaction(ledger) as session:
        for n in range(count):
            engagement = Engagement.model_validate(data | {"id": f"burst-{n:04d}", "slack_channel": f"C0BURST{n:04d}"})
            engagements.register(session, engagement)
            phases.start_phase(session, engagement, Phase.POC, requested_by=engagement.pm_slack_user,
                               flow_run_id=None, today=engagement.start_date)
            snapshot = Snapshot(engagement_id=engagement.id, phase=Phase.POC, timebox=1, collected_at=utcnow(),
                                milestones=[], metrics=[], criteria=[])
            gate = gates.open_gate(session, snapshot, requested_by=engagement.pm_slack_user,
                                   flow_run_id=f"run-{n:04d}", channel=engagement.slack_channel)
            if chat is not None:
                gate.message_ts = chat.post(engagement.slack_channel, f"G1 prompt for gate {gate.id}")
            opened.append((gate.id, engagement.slack_channel, gate.message_ts))
    return opened


def test_a_burst_of_distinct_clicks_is_recorded_exactly_once(ledger_url: str, ledger: sessionmaker[Session],
                                                            slack: SlackStandin, acme: Engagement) -> None:
    chat = SlackChat(make_web_client(slack.bot_token, slack.base_url))
    posted = prompts(ledger, chat, acme)
    woken: list[str] = []
    deps, engines = endpoint_deps(ledger_url, SECRET, chat, woken.append, refresh_here=True)
    handle = serve_in_thread(create_app(deps))
    users = {user: SlackUser(user, endpoint=handle.url, signing_secret=SECRET, slack=slack)
             for user in (CLIENT, VENDOR)}
    clicks = [users[user].click_payload(gate_id, Outcome.GO, channel, ts)
              for user in (CLIENT, VENDOR) for gate_id, channel, ts in posted]  # both sides' clicks mid-burst
    try:
        answers = burst(handle.url + "/slack/interactions", SECRET, clicks, CONCURRENCY)
        assert deps.clicks.idle(120)  # every click handled, those acknowledged before they were recorded too
        assert deps.followups.idle(60)  # the prompts updated, the runs woken
    finally:
        handle.stop()
        for engine in engines:
            engine.dispose()

    told = [text for click in clicks for text in slack.said_to(click["response_url"])]
    gate_ids = [gate_id for gate_id, _, _ in posted]
    with transaction(ledger) as session:
        recorded = session.execute(select(DecisionRow.gate_id, DecisionRow.approver)
                                  .where(DecisionRow.gate_id.in_(gate_ids))).all()
        sealed = session.scalar(select(func.count()).select_from(AuditEventRow)
                                .where(AuditEventRow.kind == AuditKind.DECISION_RECORDED)) or 0
        decided = session.scalar(select(func.count()).select_from(GateRow)
                                 .where(GateRow.id.in_(gate_ids), GateRow.state == GateState.DECIDED)) or 0
    lost = told.count(NOT_RECORDED)
    late = sum(1 for _, seconds in answers if seconds > SLACK_WAITS)
    slowest = sorted(seconds for _, seconds in answers)
    print(f"\n{ledger_url.split(':')[0]}: {len(clicks)} clicks: {lost} told 'not recorded', {late} answered after "
          f"{SLACK_WAITS:g} s; {len(recorded)} recorded, {len(recorded) - len(set(recorded))} twice; answers: "
          f"median {slowest[len(slowest) // 2] * 1000:.0f} ms, p99 {slowest[int(len(slowest) * 0.99)] * 1000:.0f} ms, "
          f"max {slowest[-1] * 1000:.0f} ms; statuses {sorted(Counter(status for status, _ in answers).items())}")
    assert [status for status, _ in answers] == [200] * len(clicks)
    assert lost == 0 and told == []  # nobody was told anything: a GO is answered by the prompt's update
    assert late == 0  # Slack shows the clicker an error instead
    assert len(recorded) == len(set(recorded)) == sealed == len(clicks)
    assert decided == GATES and sorted(woken) == sorted(f"run-{n:04d}" for n in range(GATES))


@contextmanager
def hung(ledger_url: str) -> Iterator[None]:
    """The ledger hangs for the endpoint: on SQLite another process's writer holds the file's lock,
    on PostgreSQL another session holds the decisions table locked; both until the block ends."""
    if ledger_url.startswith("sqlite"):
        holder = sqlite3.connect(ledger_url.split("///", 1)[-1], isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.rollback()
            holder.close()
        return
    engine = create_engine(ledger_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            conn.execute(text("LOCK TABLE decisions IN EXCLUSIVE MODE"))
            yield
    finally:
        engine.dispose()


def test_a_burst_on_a_hung_ledger_is_answered_not_recorded_in_time(ledger_url: str, ledger: sessionmaker[Session],
                                                                    slack: SlackStandin, acme: Engagement) -> None:
    """A line that does not move is a ledger that is down: every click of the burst is answered
    within Slack's 3 s and told "not recorded", nothing is recorded, and once the ledger is back the
    next click counts."""
    chat = SlackChat(make_web_client(slack.bot_token, slack.base_url))
    posted = prompts(ledger, chat, acme, count=100)
    deps, engines = endpoint_deps(ledger_url, SECRET, chat, lambda run: None, refresh_here=True)
    handle = serve_in_thread(create_app(deps))
    sponsor = SlackUser(CLIENT, endpoint=handle.url, signing_secret=SECRET, slack=slack)
    clicks = [sponsor.click_payload(gate_id, Outcome.GO, channel, ts) for gate_id, channel, ts in posted]
    try:
        with hung(ledger_url):
            answers = burst(handle.url + "/slack/interactions", SECRET, clicks, CONCURRENCY)
            wait_until(lambda: all(slack.said_to(click["response_url"]) for click in clicks), timeout=60, what="every answer")  # told after the answer, in the line's turn
        gate_id, channel, ts = posted[0]
        assert sponsor.click(gate_id, Outcome.GO, channel, ts).status_code == 200
    finally:
        handle.stop()
        for engine in engines:
            engine.dispose()
    slowest = max(seconds for _, seconds in answers)
    print(f"\n{ledger_url.split(':')[0]}: {len(clicks)} clicks on a hung ledger, slowest answer {slowest * 1000:.0f} ms")
    assert [status for status, _ in answers] == [200] * len(clicks) and slowest < SLACK_WAITS
    assert all(slack.said_to(click["response_url"]) == [NOT_RECORDED] for click in clicks)
    with transaction(ledger) as session:
        recorded = session.execute(select(DecisionRow.gate_id, DecisionRow.approver)).all()
    assert recorded == [(gate_id, CLIENT)]
