"""The ledger as the queue of the work after an answer (phasegate.ledger.followups) and the refresher
that empties it (phasegate.gates.refresher), over real HTTP to the Slack stand-in, on both backends.

An answer leaves its mark in its own transaction; answers piling up on one gate make one mark, so
one draw of the prompt and one wake; the marks are taken oldest first; a Slack failure keeps the mark
(with what failed) until a later try succeeds; an answer recorded while its prompt is being drawn
leaves the mark for another pass; a run that cannot be woken because Prefect is down gets the
approver who decided told, and the wake left to the catch-up and the gate watch.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from helpers import posted_gate, wait_until, with_changes
from sqlalchemy import select, update

from phasegate.configs.schema import Engagement
from phasegate.errors import ServiceUnavailable
from phasegate.gates.answers import RECORDED_NEXT_STEP_LATER
from phasegate.gates.refresher import Refresher
from phasegate.ledger import followups, gates
from phasegate.ledger.db import transaction
from phasegate.ledger.models import FollowUpRow, utcnow
from phasegate.ledger.models.gates import GateRow
from phasegate.orchestration.runs import PrefectUnreachable
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import GateState, Outcome, Prompt, Via

RUN = "0b6d5c0e-0000-4000-8000-000000000002"


def answer(rt: Runtime, gate_id: int, user: str, outcome: Outcome = Outcome.GO, via: Via = Via.SLACK) -> None:
    with transaction(rt.sessions) as session:
        gates.answer(session, gate_id, approver=user, outcome=outcome, reason="not yet" if outcome.needs_reason else "",
                     via=via)


def marks(rt: Runtime) -> list[FollowUpRow]:
    with transaction(rt.sessions) as session:
        rows = list(session.scalars(select(FollowUpRow).order_by(FollowUpRow.marked_at)))
        session.expunge_all()
        return rows


def with_run(rt: Runtime, gate: GateRow) -> GateRow:
    with transaction(rt.sessions) as session:
        gates.by_id(session, gate.id).flow_run_id = RUN
    return gate


def edits(slack: SlackStandin, gate: GateRow) -> int:
    assert gate.message_ts is not None
    return slack.message(gate.channel, gate.message_ts).edits


def test_an_answer_marks_its_prompt_and_answers_piling_up_make_one_draw_and_one_wake(
        rt: Runtime, slack: SlackStandin, jira: JiraStandin, acme: Engagement) -> None:
    three = with_changes(acme, phases__poc__gate__quorum__count=3)  # every approver must answer
    gate = with_run(rt, posted_gate(rt, three, jira=jira))
    before = edits(slack, gate)
    approvers = [a.slack_user for a in three.phases.poc.gate.approvers if a.slack_user != gate.requested_by]
    for user in approvers:  # no refresher runs meanwhile: the marks pile up in the ledger
        answer(rt, gate.id, user)
    [mark] = marks(rt)
    assert (mark.prompt, mark.target, mark.seq, mark.wake, mark.tell) == (
        Prompt.GATE, gate.id, len(approvers), True, approvers[-1])
    woken: list[str] = []
    refresher = Refresher(rt.sessions, rt.chat, woken.append)
    try:
        assert refresher.pass_once() == 1
    finally:
        refresher.close()
    assert edits(slack, gate) == before + 1  # one chat.update for all the answers
    assert woken == [RUN] and marks(rt) == []
    assert "actions" not in str(slack.message(gate.channel, gate.message_ts or "").blocks)  # drawn decided


def test_marks_are_taken_oldest_first(rt: Runtime) -> None:
    for prompt, target in ((Prompt.GATE, 7), (Prompt.GATE, 3), (Prompt.CHANGE_REQUEST, 1), (Prompt.GATE, 5),
                           (Prompt.GATE, 7)):  # 7 marked again: it keeps its place
        with transaction(rt.sessions) as session:
            followups.mark(session, prompt, target)
    with transaction(rt.sessions) as session:
        taken = followups.take(session, utcnow(), 3, lease=60)
        again = followups.take(session, utcnow(), 10, lease=60)  # claimed: not taken twice
    assert [(p.prompt, p.target) for p in taken] == [(Prompt.GATE, 7), (Prompt.GATE, 3), (Prompt.CHANGE_REQUEST, 1)]
    assert [(p.prompt, p.target, p.seq) for p in again] == [(Prompt.GATE, 5, 1)]
    assert taken[0].seq == 2


def test_during_a_burst_of_answers_the_refresher_leaves_young_marks_for_after_it(rt: Runtime) -> None:
    """While prompts are marked fast (a burst of clicks), a pass takes only the marks made `hold`
    seconds ago or more; once marks stop coming, it takes them all. (No gate 9001...: each draw finds
    nothing and deletes its mark.)"""
    def made(target: int, seconds_ago: float) -> None:
        with transaction(rt.sessions) as session:
            session.execute(update(followups.TABLE).where(followups.TABLE.c.target == target)
                            .values(marked_at=utcnow() - timedelta(seconds=seconds_ago)))

    for target in range(9001, 9006):
        with transaction(rt.sessions) as session:
            followups.mark(session, Prompt.GATE, target)
    made(9001, 60)  # made a minute ago: held no longer
    refresher = Refresher(rt.sessions, rt.chat, lambda run: None, burst=3, hold=30)
    try:
        assert refresher.pass_once() == 1 and refresher.holding  # four made just now: a burst
        assert sorted(mark.target for mark in marks(rt)) == [9002, 9003, 9004, 9005]
        made(9002, 40)
        assert refresher.pass_once() == 1 and refresher.holding  # three still young, and 9002 old enough
        assert refresher.pass_once() == 0 and refresher.holding  # the young wait, however often it looks
        for target in (9003, 9004, 9005):
            made(target, 1)  # the burst is over: fewer than three made in the last SETTLE seconds
        assert refresher.pass_once() == 3 and not refresher.holding
    finally:
        refresher.close()
    assert marks(rt) == []


def test_a_prompt_marked_again_while_one_refresher_draws_it_is_not_drawn_by_another_meanwhile(rt: Runtime) -> None:
    """Two refreshers (two `serve-slack` replicas) never draw one prompt at once, so their updates
    cannot land out of order; the newer mark is drawn once the first refresher lets go of it."""
    with transaction(rt.sessions) as session:
        followups.mark(session, Prompt.GATE, 4)
    with transaction(rt.sessions) as session:
        [first] = followups.take(session, utcnow(), 10, lease=60)
    with transaction(rt.sessions) as session:
        followups.mark(session, Prompt.GATE, 4, wake=True)  # an answer while the first refresher draws
    with transaction(rt.sessions) as session:
        assert followups.take(session, utcnow(), 10, lease=60) == []  # the other refresher keeps off
        assert not followups.done(session, first)  # the newer mark stays, let go
    with transaction(rt.sessions) as session:
        [second] = followups.take(session, utcnow(), 10, lease=60)
        assert (second.seq, second.wake) == (2, True) and followups.done(session, second)
    with transaction(rt.sessions) as session:
        assert followups.waiting(session) == 0


def test_a_wake_done_is_not_done_again_for_a_redraw_asked_meanwhile(rt: Runtime) -> None:
    """The deciding answer's mark is taken and its run woken; a click on the decided gate asks for a
    redraw meanwhile: the mark that stays draws the prompt again but does not wake the run again (a
    second wake would resume the run at its next suspend, seen in the scale-out test)."""
    with transaction(rt.sessions) as session:
        followups.mark(session, Prompt.GATE, 5, wake=True, tell="U0SPONSOR1")
    with transaction(rt.sessions) as session:
        [first] = followups.take(session, utcnow(), 10, lease=60)
    with transaction(rt.sessions) as session:
        followups.mark(session, Prompt.GATE, 5)  # the redraw a click on the decided gate asks for
    with transaction(rt.sessions) as session:
        assert first.wake and not followups.done(session, first)
    with transaction(rt.sessions) as session:
        [second] = followups.take(session, utcnow(), 10, lease=60)
        assert (second.seq, second.wake, second.tell) == (2, False, None)
        assert followups.done(session, second)


def test_a_slack_failure_keeps_the_mark_until_a_later_try_draws_the_prompt(
        rt: Runtime, slack: SlackStandin, jira: JiraStandin, acme: Engagement) -> None:
    gate = posted_gate(rt, acme, jira=jira)
    before = edits(slack, gate)
    answer(rt, gate.id, "U0SPONSOR1")
    slack.fail_next("chat.update", status=503, times=1)
    refresher = Refresher(rt.sessions, rt.chat, lambda run: None, backoff=(0.3,))
    try:
        assert refresher.pass_once() == 1
        [kept] = marks(rt)
        assert kept.tries == 1 and kept.problem is not None and "could not update the Slack prompt" in kept.problem
        assert edits(slack, gate) == before
        assert refresher.pass_once() == 0  # not before its pause
        wait_until(lambda: refresher.pass_once() == 1, timeout=5, what="the mark to be tried again")
    finally:
        refresher.close()
    assert marks(rt) == [] and edits(slack, gate) == before + 1


def test_an_answer_recorded_while_its_prompt_is_drawn_is_drawn_too(
        rt: Runtime, slack: SlackStandin, jira: JiraStandin, acme: Engagement) -> None:
    gate = posted_gate(rt, acme, jira=jira)
    answer(rt, gate.id, "U0SPONSOR1")
    drawing, go_on = threading.Event(), threading.Event()

    class Held:  # the Slack client, held in the middle of the update
        def __getattr__(self, name: str) -> object:
            return getattr(rt.chat, name)

        def update(self, *args: object, **kwargs: object) -> None:
            drawing.set()
            go_on.wait(5)
            rt.chat.update(*args, **kwargs)  # type: ignore[arg-type]

    refresher = Refresher(rt.sessions, Held(), lambda run: None)  # type: ignore[arg-type]
    first = threading.Thread(target=refresher.pass_once)
    first.start()
    assert drawing.wait(5)
    answer(rt, gate.id, "U0VENDLEAD")  # decides, while the first answer's draw is under way
    go_on.set()
    first.join(10)
    try:
        [left] = marks(rt)  # the first pass could not delete the newer mark
        assert left.wake and left.seq == 2
        assert refresher.pass_once() == 1
    finally:
        refresher.close()
    with transaction(rt.sessions) as session:
        assert gates.by_id(session, gate.id).state is GateState.DECIDED
    assert marks(rt) == [] and "actions" not in str(slack.message(gate.channel, gate.message_ts or "").blocks)


def test_prefect_down_tells_the_slack_approver_who_decided_and_leaves_the_wake_to_the_watch(
        rt: Runtime, slack: SlackStandin, jira: JiraStandin, acme: Engagement) -> None:
    gate = with_run(rt, posted_gate(rt, acme, jira=jira))
    answer(rt, gate.id, "U0SPONSOR1", via=Via.CLI)
    answer(rt, gate.id, "U0VENDLEAD")

    def down(run: str) -> None:
        raise PrefectUnreachable(f"cannot wake flow run {run}: the Prefect API is not reachable")

    refresher = Refresher(rt.sessions, rt.chat, down)
    try:
        assert refresher.pass_once() == 1
    finally:
        refresher.close()
    assert [(e["user"], e["channel"], e["text"]) for e in slack.ephemeral] == [
        ("U0VENDLEAD", gate.channel, RECORDED_NEXT_STEP_LATER)]
    assert marks(rt) == []  # drawn; `up`'s catch-up and the gate watch wake decided runs


def test_an_answer_in_the_prefect_ui_wakes_nothing_and_a_wake_that_fails_otherwise_is_not_retried(
        rt: Runtime, slack: SlackStandin, jira: JiraStandin, acme: Engagement) -> None:
    gate = with_run(rt, posted_gate(rt, acme, jira=jira))
    answer(rt, gate.id, "U0SPONSOR1", via=Via.PREFECT_UI)
    answer(rt, gate.id, "U0VENDLEAD", via=Via.PREFECT_UI)
    [mark] = marks(rt)
    assert not mark.wake and mark.tell is None  # the run the answer came through is awake

    def refuses(run: str) -> None:
        raise ServiceUnavailable("never called")

    refresher = Refresher(rt.sessions, rt.chat, refuses)
    try:
        assert refresher.pass_once() == 1
    finally:
        refresher.close()
    assert marks(rt) == [] and slack.ephemeral == []
