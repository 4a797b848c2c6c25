"""200 clicks at once on one engagement's two open gates, through two endpoint replicas, each a process
of its own, on one PostgreSQL ledger (issue 21, item 9: the chain head serialises every answer of an
engagement; 178 of 200 answers took over 3 s, the slowest 9.2 s).

Each replica runs as `phasegate serve-slack` wires it (phasegate.ops.stack.endpoint_deps: its own
engines, its own line of writers) in a process of its own, so the two contend for the gate rows and the
chain head in PostgreSQL, not in one interpreter. Each gets 100 of the clicks from a client process of
its own, 50 in flight each; a tenth of them are also delivered again to the other replica at the same
time (Slack retries a click it thinks was lost, and another replica may get the retry). The approvers
of G1 (the PoC) and of G2 (development, open at the same time) click GO again and again, each click a
delivery of its own, so each gate is decided by its quorum's first GOs and the rest are answered, after
the answer, that it is decided. Every answer comes within Slack's 3 s (the answer does not wait for the
ledger: phasegate.slack.acknowledge), no one is told "not recorded", no delivery is recorded twice and
no approver's answer twice at one gate, and the engagement's chain verifies (every decision sealed by
its event, both gates' settling too).
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection

import pytest
from rawclicks import burst
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from test_burst import SECRET, SLACK_WAITS, prompts

from phasegate.configs.schema import Engagement, Phase
from phasegate.integrations.slack_chat import SlackChat, make_web_client
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.ledger.models import DecisionRow, GateRow, utcnow
from phasegate.ledger.verify import verify_one
from phasegate.ops.servers import serve_in_thread
from phasegate.ops.stack import endpoint_deps
from phasegate.rules.evidence import Snapshot
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_user import SlackUser
from phasegate.slack.app import create_app
from phasegate.slack.deps import NOT_RECORDED
from phasegate.states import GateState, Outcome

pytestmark = pytest.mark.slow

CLICKS = 200
AGAIN = 10  # of each replica's clicks, also delivered to the other replica


def replica(ledger_url: str, slack_url: str, token: str, conn: Connection) -> None:
    """One endpoint replica in a process of its own: sends its URL, serves until told the burst is
    over, then sends whether every click and follow-up was finished in time."""
    chat = SlackChat(make_web_client(token, slack_url))
    deps, engines = endpoint_deps(ledger_url, SECRET, chat, lambda run: None, refresh_here=True)  # and its refresher
    handle = serve_in_thread(create_app(deps))
    conn.send(handle.url)
    conn.recv()
    try:
        conn.send(deps.clicks.idle(120) and deps.followups is not None and deps.followups.idle(60))
    finally:
        handle.stop()
        for engine in engines:
            engine.dispose()


def second_gate(ledger: sessionmaker[Session], chat: SlackChat, engagement: Engagement) -> tuple[int, str, str]:
    """G2 of the same engagement, open beside its G1, its prompt posted."""
    with transaction(ledger) as session:
        snapshot = Snapshot(engagement_id=engagement.id, phase=Phase.DEVELOPMENT, timebox=1, collected_at=utcnow(),
                            milestones=[], metrics=[], criteria=[])
        gate = gates.open_gate(session, snapshot, requested_by=engagement.pm_slack_user, flow_run_id="run-g2",
                               channel=engagement.slack_channel)
        gate.message_ts = chat.post(engagement.slack_channel, f"G2 prompt for gate {gate.id}")
        return gate.id, engagement.slack_channel, gate.message_ts


def test_200_clicks_at_once_on_one_engagements_two_gates_through_two_replica_processes(
        ledger_url: str, ledger: sessionmaker[Session], slack: SlackStandin, acme: Engagement) -> None:
    if not ledger_url.startswith("postgresql"):
        pytest.skip("two replicas share one ledger on PostgreSQL")
    chat = SlackChat(make_web_client(slack.bot_token, slack.base_url))
    [g1] = prompts(ledger, chat, acme, count=1)  # engagement burst-0000
    g2 = second_gate(ledger, chat, acme.model_copy(update={"id": "burst-0000", "slack_channel": g1[1]}))
    approvers = {g1[0]: [a.slack_user for a in acme.phases.poc.gate.approvers],
                 g2[0]: [a.slack_user for a in acme.phases.development.gate.approvers]}
    spawn = multiprocessing.get_context("spawn")
    pipes = [spawn.Pipe() for _ in range(2)]
    children = [spawn.Process(target=replica, args=(ledger_url, slack.base_url, slack.bot_token, child), daemon=True)
                for _, child in pipes]
    for child in children:
        child.start()
    urls = [ours.recv() if ours.poll(60) else pytest.fail("a replica did not start") for ours, _ in pipes]
    clicks: list[list[dict[str, object]]] = [[], []]
    for n in range(CLICKS):
        (gate_id, channel, ts), side = (g1, g2)[n % 2], (n // 2) % 2  # each gate's clicks split over both replicas
        users = approvers[gate_id]
        user = SlackUser(users[(n // 2) % len(users)], endpoint=urls[side], signing_secret=SECRET, slack=slack)
        clicks[side].append(user.click_payload(gate_id, Outcome.GO, channel, ts, action_ts=f"1700000000.{n:06d}"))
    sent = [side + other[:AGAIN] for side, other in ((clicks[0], clicks[1]), (clicks[1], clicks[0]))]
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(2) as both:
            answers = [answer for done in both.map(lambda pair: burst(pair[0] + "/slack/interactions", SECRET,
                                                                       pair[1], 50), zip(urls, sent, strict=True))
                       for answer in done]
        for ours, _ in pipes:
            ours.send("done")
        finished = [ours.recv() if ours.poll(200) else False for ours, _ in pipes]
        handled = time.perf_counter() - started  # every click recorded or refused, every follow-up done
    finally:
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
    told = [text for side in sent for click in side for text in slack.said_to(str(click["response_url"]))]
    with transaction(ledger, write=False) as session:
        recorded = session.execute(select(DecisionRow.gate_id, DecisionRow.approver, DecisionRow.delivery_id)
                                   .where(DecisionRow.gate_id.in_(approvers))).all()
        states = dict(session.execute(select(GateRow.id, GateRow.state).where(GateRow.id.in_(approvers))).all())
        chain = verify_one(session, "burst-0000")
    times = sorted(seconds for _, seconds in answers)
    p99 = times[int(len(times) * 0.99) - 1]
    print(f"\n{len(answers)} clicks on one engagement's two gates, two replica processes: p99 {p99 * 1000:.0f} ms, "
          f"max {times[-1] * 1000:.0f} ms; all handled after {handled:.2f} s; {len(recorded)} recorded; "
          f"told: {sorted(set(told))}")
    assert finished == [True, True]
    assert [status for status, _ in answers] == [200] * (CLICKS + 2 * AGAIN)
    assert p99 < SLACK_WAITS and times[-1] < SLACK_WAITS
    assert NOT_RECORDED not in told
    assert states == {g1[0]: GateState.DECIDED, g2[0]: GateState.DECIDED}
    pairs = [(gate_id, approver) for gate_id, approver, _ in recorded]
    assert len(pairs) == len(set(pairs)) and {gate_id for gate_id, _ in pairs} == set(approvers)
    assert len({delivery for _, _, delivery in recorded}) == len(recorded)
    assert chain.intact, chain.problems
