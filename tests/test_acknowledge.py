"""A click is answered at once when the ledger cannot take it in time, and finishes after the answer.

The ledger is held (another process's writer on the SQLite file, another session's lock on the
decisions table on PostgreSQL) while an approver clicks GO. Before clicks were acknowledged early,
the answer waited for the ledger until the writer gave up (1.5 s), and the clicker was told "not
recorded" although the ledger was only busy; under a loaded machine the same wait pushed answers
towards Slack's 3 s. Now the answer comes while the ledger is still held (so it cannot have waited
for it), and the click is recorded once the ledger lets go; a ledger that stays held past the
writers' bound gets the clicker "not recorded" through the response_url, after the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from helpers import wait_until
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker
from test_burst import CLIENT, SECRET, SLACK_WAITS, VENDOR, hung, prompts

from phasegate.configs.schema import Engagement
from phasegate.integrations.slack_chat import SlackChat, make_web_client
from phasegate.ledger import db
from phasegate.ledger.db import ENDPOINT_TIMEOUT, make_engine, transaction
from phasegate.ledger.models import DecisionRow
from phasegate.messages import gates as messages
from phasegate.ops.servers import serve_in_thread
from phasegate.ops.stack import endpoint_deps
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_user import SlackUser
from phasegate.slack.app import create_app
from phasegate.slack.deps import NOT_RECORDED, SlackDeps
from phasegate.states import Outcome

pytestmark = pytest.mark.slow

# The test's own acknowledgement bound, far below the writers' 1.5 s: the ledger is let go as soon
# as the answer is in, well before the waiting writer would give up.
ACK = 0.1


def recorded(ledger: sessionmaker[Session], gate_id: int) -> list[tuple[str, Outcome]]:
    with transaction(ledger, write=False) as session:
        return [(row.approver, row.outcome) for row in
                session.execute(select(DecisionRow.approver, DecisionRow.outcome).where(DecisionRow.gate_id == gate_id))]


@contextmanager
def endpoint(ledger_url: str, ledger: sessionmaker[Session], slack: SlackStandin, acme: Engagement, *,
             ack: float | None = ACK) -> Iterator[tuple[SlackDeps, str, tuple[int, str, str]]]:
    """A served endpoint on the ledger, with one posted gate prompt: (deps, url, (gate id, channel, ts))."""
    chat = SlackChat(make_web_client(slack.bot_token, slack.base_url))
    [posted] = prompts(ledger, chat, acme, count=1)
    deps, engines = endpoint_deps(ledger_url, SECRET, chat, lambda run: None, refresh_here=True)
    if ack is not None:
        deps.ack_within = ack
    handle = serve_in_thread(create_app(deps))
    try:
        yield deps, handle.url, posted
    finally:
        handle.stop()
        for engine in engines:
            engine.dispose()


def test_a_click_on_a_held_ledger_is_answered_at_once_and_recorded_after(
        ledger_url: str, ledger: sessionmaker[Session], slack: SlackStandin, acme: Engagement) -> None:
    with endpoint(ledger_url, ledger, slack, acme) as (deps, url, (gate_id, channel, ts)):
        sponsor = SlackUser(CLIENT, endpoint=url, signing_secret=SECRET, slack=slack)
        payload = sponsor.click_payload(gate_id, Outcome.GO, channel, ts)
        with hung(ledger_url):
            answer = sponsor.send(payload)
            assert answer.status_code == 200 and answer.content == b""  # answered while the ledger is held ...
            assert recorded(ledger, gate_id) == []  # ... so before the click could be recorded
        wait_until(lambda: recorded(ledger, gate_id), what="the click recorded after its answer")
        assert deps.followups.idle(30)
        prompt = slack.message(channel, ts)
    assert recorded(ledger, gate_id) == [(CLIENT, Outcome.GO)]
    assert slack.said_to(payload["response_url"]) == []  # recorded: the prompt says so, nobody is told "not recorded"
    assert CLIENT in str(prompt.blocks)  # the prompt redrawn with the answer


def test_a_click_on_a_ledger_held_too_long_is_answered_at_once_then_told_not_recorded(
        ledger_url: str, ledger: sessionmaker[Session], slack: SlackStandin, acme: Engagement) -> None:
    with endpoint(ledger_url, ledger, slack, acme) as (_deps, url, (gate_id, channel, ts)):
        lead = SlackUser(VENDOR, endpoint=url, signing_secret=SECRET, slack=slack)
        payload = lead.click_payload(gate_id, Outcome.GO, channel, ts)
        with hung(ledger_url):
            answer = lead.send(payload)
            assert answer.status_code == 200 and slack.said_to(payload["response_url"]) == []  # nothing said yet
            told = wait_until(lambda: slack.said_to(payload["response_url"]), timeout=30,  # busy_patience first
                              what="the clicker told, after the answer")
    assert told == [NOT_RECORDED] and recorded(ledger, gate_id) == []


def test_a_click_whose_lock_wait_runs_out_on_a_busy_ledger_is_tried_again_and_recorded(
        ledger_url: str, ledger: sessionmaker[Session], slack: SlackStandin, acme: Engagement,
        caplog: pytest.LogCaptureFixture) -> None:
    """The ledger is held past the click's lock wait (another replica, a flow run: the database
    answers "locked" after ENDPOINT_TIMEOUT), then let go: a busy ledger, not a down one. Seen under
    load with two replicas on one engagement: the clicker was told "not recorded". Now the click is
    handled again, as Slack's redelivery would be, and recorded once; nobody is told anything."""
    caplog.set_level(logging.INFO, logger="phasegate.slack")
    with endpoint(ledger_url, ledger, slack, acme) as (deps, url, (gate_id, channel, ts)):
        sponsor = SlackUser(CLIENT, endpoint=url, signing_secret=SECRET, slack=slack)
        payload = sponsor.click_payload(gate_id, Outcome.GO, channel, ts)
        with hung(ledger_url):
            assert sponsor.send(payload).status_code == 200
            wait_until(lambda: any("the ledger is busy, trying again" in r.getMessage() for r in caplog.records),
                       timeout=4 * ENDPOINT_TIMEOUT, what="the click's first lock wait run out")
            time.sleep(ENDPOINT_TIMEOUT / 2)  # the lock held on (the fault's length), into the next try's wait
        wait_until(lambda: recorded(ledger, gate_id), timeout=30, what="the click recorded once the ledger let go")
        assert deps.followups.idle(30)
    assert recorded(ledger, gate_id) == [(CLIENT, Outcome.GO)]
    assert slack.said_to(payload["response_url"]) == []


def test_a_form_on_a_held_ledger_is_answered_within_slacks_wait_without_trying_again_past_it(
        ledger_url: str, ledger: sessionmaker[Session], slack: SlackStandin, acme: Engagement) -> None:
    """A form is not acknowledged early: its answer carries its field errors. Its tries on a busy
    ledger end at its deadline (2.2 s), not after the 6 s a click may go on trying."""
    with endpoint(ledger_url, ledger, slack, acme, ack=None) as (_deps, url, (gate_id, _channel, _ts)):
        sponsor = SlackUser(CLIENT, endpoint=url, signing_secret=SECRET, slack=slack)
        view = messages.reason_modal(gate_id=gate_id, outcome=Outcome.NO_GO, gate_title=f"gate {gate_id}")
        with hung(ledger_url):
            started = time.monotonic()
            answer = sponsor.submit_view(view, "the churn model misses its recall target")
            took = time.monotonic() - started
    assert answer.status_code == 200 and answer.json()["response_action"] == "errors", answer.text
    assert NOT_RECORDED in str(answer.json()["errors"])
    assert took < SLACK_WAITS, f"the form was answered after {took:.2f} s"
    assert recorded(ledger, gate_id) == []


def test_a_click_whose_pooled_connection_was_ended_a_moment_ago_is_recorded(
        ledger_url: str, ledger: sessionmaker[Session], slack: SlackStandin, acme: Engagement,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A pooled PostgreSQL connection is pinged only once it has been idle (db.PING_IDLE), so one whose
    server process ended since its last use (a restart, pg_terminate_backend) fails at the click's first
    statement. The click is handled again on a new connection, as Slack's redelivery would be, and
    recorded once; nobody is told "not recorded"."""
    if not ledger_url.startswith("postgresql"):
        pytest.skip("a SQLite file has no server process to end")
    monkeypatch.setattr(db, "PING_IDLE", 3600.0)  # the ended connections count as fresh: never pinged first
    caplog.set_level(logging.INFO, logger="phasegate.slack")
    with endpoint(ledger_url, ledger, slack, acme) as (deps, url, (gate_id, channel, ts)):
        lead = SlackUser(VENDOR, endpoint=url, signing_secret=SECRET, slack=slack)
        assert lead.click(gate_id, Outcome.GO, channel, ts).status_code == 200
        wait_until(lambda: recorded(ledger, gate_id), what="the first click recorded: its connection pooled")
        engine = make_engine(ledger_url)
        try:
            with engine.connect() as conn:
                ended = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                          "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        finally:
            engine.dispose()
        assert ended, "no pooled connection to end"
        ledger.kw["bind"].dispose()  # the test's own reads: on new connections (the endpoint's are the ones tried)
        sponsor = SlackUser(CLIENT, endpoint=url, signing_secret=SECRET, slack=slack)
        payload = sponsor.click_payload(gate_id, Outcome.GO, channel, ts)
        assert sponsor.send(payload).status_code == 200
        wait_until(lambda: len(recorded(ledger, gate_id)) == 2, timeout=30, what="the second click recorded")
        assert deps.followups.idle(30)
    assert sorted(recorded(ledger, gate_id)) == sorted([(VENDOR, Outcome.GO), (CLIENT, Outcome.GO)])
    assert slack.said_to(payload["response_url"]) == []
    assert "its ledger connection was gone, trying again" in caplog.text
