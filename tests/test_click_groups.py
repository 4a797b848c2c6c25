"""Clicks recorded in groups (phasegate.slack.acknowledge.ClickLine, phasegate.ledger.db.group): the
clicks waiting are recorded in one transaction, so a burst costs one BEGIN and one COMMIT per group
instead of per click. A refused click (decided before anything is written) leaves the group as it
was; a handler that fails after writing makes the group commit nothing, and each of its clicks is
then handled on its own and recorded once. On PostgreSQL two replicas' groups can lock the same rows
in opposite orders: one gives up its lock wait and its clicks are recorded one by one; a connection
killed under one click loses only that one.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from fastapi import BackgroundTasks, Response
from helpers import wait_until
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from test_burst import prompts

from phasegate.configs.schema import Engagement
from phasegate.errors import PolicyError
from phasegate.ledger import gates
from phasegate.ledger.db import GROUP_LOCK_WAIT, group, on_commit, transaction
from phasegate.ledger.models import DecisionRow
from phasegate.slack import acknowledge
from phasegate.slack.acknowledge import ClickLine, Done
from phasegate.states import Outcome, Via

CLIENT, VENDOR = "U0SPONSOR1", "U0VENDLEAD"


def open_gates(ledger: sessionmaker[Session], acme: Engagement, count: int) -> list[int]:
    """`count` open G1 gates, each of its own engagement (tests/test_burst.py's, no prompt posted)."""
    return [gate_id for gate_id, _, _ in prompts(ledger, None, acme, count)]


def go(ledger: sessionmaker[Session], gate_id: int, user: str, committed: list[int]):  # type: ignore[no-untyped-def]
    """A GO click's handler as the endpoint's: recorded, or refused (its refusal is the answer here)."""
    def handler(_: BackgroundTasks) -> Response:
        try:
            with transaction(ledger) as session:
                gates.answer(session, gate_id, approver=user, outcome=Outcome.GO, reason="", via=Via.SLACK,
                             delivery_id=f"group-{gate_id}-{user}")
        except PolicyError as exc:
            return Response(str(exc), status_code=200)
        on_commit(lambda: committed.append(gate_id))
        return Response(status_code=200)

    return handler


def broken(ledger: sessionmaker[Session], gate_id: int):  # type: ignore[no-untyped-def]
    """A handler that records an answer and then fails (a bug after its write)."""
    def handler(_: BackgroundTasks) -> Response:
        with transaction(ledger) as session:
            gates.answer(session, gate_id, approver=CLIENT, outcome=Outcome.GO, reason="", via=Via.SLACK,
                         delivery_id=f"broken-{gate_id}")
            raise RuntimeError("a bug after the write")

    return handler


def run_all(line: ClickLine, ledger: sessionmaker[Session], handlers: list,  # type: ignore[type-arg]
            *, queued: threading.Event | None = None) -> list[Done | BaseException]:
    async def main() -> list[Done | BaseException]:
        futures = [line.run(ledger, handler) for handler in handlers]
        if queued is not None:
            queued.set()
        return await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 60)  # a stuck line fails

    return asyncio.run(main())


def answers(ledger: sessionmaker[Session], gate_ids: list[int]) -> list[tuple[int, str]]:
    with transaction(ledger, write=False) as session:
        return sorted(session.execute(select(DecisionRow.gate_id, DecisionRow.approver)
                                      .where(DecisionRow.gate_id.in_(gate_ids))).tuples())


def test_waiting_clicks_are_recorded_in_one_transaction_and_a_refused_one_changes_nothing(
        ledger: sessionmaker[Session], ledger_engine: Engine, acme: Engagement) -> None:
    gate_ids = open_gates(ledger, acme, 20)
    committed: list[int] = []
    queued = threading.Event()
    first = go(ledger, gate_ids[0], CLIENT, committed)

    def waits_for_the_rest(later: BackgroundTasks) -> Response:  # the line is busy while the others queue
        assert queued.wait(10)
        return first(later)

    handlers = [waits_for_the_rest] + [go(ledger, g, CLIENT, committed) for g in gate_ids[1:10]]
    handlers.append(go(ledger, gate_ids[15], "U0NOTASKED", committed))  # no approver of G1: refused
    handlers += [go(ledger, g, VENDOR, committed) for g in gate_ids[10:20]]
    seen: list[object] = []

    def count(conn: object) -> None:
        seen.append(conn)

    event.listen(ledger_engine, "commit", count)
    try:
        results = run_all(ClickLine(), ledger, handlers, queued=queued)
    finally:
        event.remove(ledger_engine, "commit", count)
    bodies = [bytes(r[0].body).decode() for r in results if isinstance(r, tuple)]
    assert len(bodies) == 21 and "not an approver" in bodies[10] and bodies[:10] + bodies[11:] == [""] * 20
    assert 1 <= len(seen) <= 2  # the first click's group, then every click that waited meanwhile: not 20
    assert answers(ledger, gate_ids) == sorted([(g, CLIENT) for g in gate_ids[:10]] +
                                               [(g, VENDOR) for g in gate_ids[10:20]])
    assert sorted(committed) == sorted(gate_ids)  # each told once its group committed


def test_a_handler_failing_after_its_write_leaves_nothing_and_the_others_are_recorded_alone(
        ledger: sessionmaker[Session], ledger_engine: Engine, acme: Engagement,
        caplog: pytest.LogCaptureFixture) -> None:
    gate_ids = open_gates(ledger, acme, 11)
    committed: list[int] = []
    handlers = [go(ledger, g, CLIENT, committed) for g in gate_ids[:5]]
    handlers.append(broken(ledger, gate_ids[10]))
    handlers += [go(ledger, g, CLIENT, committed) for g in gate_ids[5:10]]
    with caplog.at_level(logging.INFO, logger="phasegate.slack"):
        results = run_all(ClickLine(), ledger, handlers)
    assert isinstance(results[5], RuntimeError)  # the request's to raise, as an unhandled error is
    assert all(isinstance(r, tuple) and r[0].status_code == 200 for r in results[:5] + results[6:])
    assert answers(ledger, gate_ids) == sorted((g, CLIENT) for g in gate_ids[:10])  # not the broken one's
    assert sorted(committed) == sorted(gate_ids[:10])
    assert "clicks was not recorded, handling each on its own" in caplog.text


def test_on_postgresql_a_connection_killed_under_one_click_loses_that_click_alone(
        ledger: sessionmaker[Session], ledger_engine: Engine, ledger_url: str, acme: Engagement) -> None:
    if not ledger_url.startswith("postgresql"):
        pytest.skip("a SQLite file has no server connection to kill")
    gate_ids = open_gates(ledger, acme, 12)
    committed: list[int] = []

    def kill_mine(_: BackgroundTasks) -> Response:
        """The sixth click: its connection's server process is terminated under it."""
        with transaction(ledger) as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with ledger_engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            session.execute(text("SELECT 1"))
        return Response(status_code=200)

    handlers = [go(ledger, g, CLIENT, committed) for g in gate_ids[:5]]
    handlers.append(kill_mine)
    handlers += [go(ledger, g, CLIENT, committed) for g in gate_ids[5:]]
    results = run_all(ClickLine(), ledger, handlers)
    assert isinstance(results[5], OperationalError)  # the killed one: its handler's to answer (not recorded)
    assert [r[0].status_code for r in results[:5] + results[6:] if isinstance(r, tuple)] == [200] * 12
    assert answers(ledger, gate_ids) == sorted((g, CLIENT) for g in gate_ids)  # each recorded, once
    with transaction(ledger, write=False) as session:
        assert session.scalar(select(func.count()).select_from(DecisionRow)) == len(gate_ids)
    assert sorted(committed) == sorted(gate_ids)


def test_two_lines_locking_the_same_gates_in_opposite_orders_record_every_click_once(
        ledger: sessionmaker[Session], ledger_url: str, acme: Engagement, caplog: pytest.LogCaptureFixture) -> None:
    """Two replicas' groups meet: each has written its group's first click and then goes on through the
    other's gates, one in the opposite order. Both then wait for a lock the other holds; one gives up
    (db.GROUP_LOCK_WAIT), commits nothing, and its clicks are recorded on their own."""
    if not ledger_url.startswith("postgresql"):
        pytest.skip("a SQLite file is written by one group at a time: no two groups hold locks at once")
    gate_ids = open_gates(ledger, acme, 10)
    committed: list[int] = []
    both_began = threading.Barrier(2, timeout=10)

    def first_waits(handler, queued: threading.Event):  # type: ignore[no-untyped-def]
        def first(later: BackgroundTasks) -> Response:  # alone: the line's others queue meanwhile
            assert queued.wait(10)
            return handler(later)
        return first

    def then_meet(handler):  # type: ignore[no-untyped-def]
        met: list[bool] = []

        def meet(later: BackgroundTasks) -> Response:  # the group's first: its locks are held until it commits
            answer = handler(later)
            if not met:  # in its group; not when handled again on its own
                met.append(True)
                both_began.wait()  # the other line's group holds its first click's locks too
            return answer
        return meet

    out: dict[str, list[Done | BaseException]] = {}

    def line(name: str, order: list[int], user: str) -> threading.Thread:
        queued = threading.Event()
        handlers = [go(ledger, g, user, committed) for g in order]
        handlers[0], handlers[1] = first_waits(handlers[0], queued), then_meet(handlers[1])
        return threading.Thread(target=lambda: out.__setitem__(name, run_all(ClickLine(), ledger, handlers,
                                                                               queued=queued)))

    lines = [line("forward", gate_ids, CLIENT), line("backward", gate_ids[::-1], VENDOR)]
    with caplog.at_level(logging.INFO, logger="phasegate.slack"):
        for thread in lines:
            thread.start()
        for thread in lines:
            thread.join(60)
    results = out["forward"] + out["backward"]
    assert [r[0].status_code for r in results if isinstance(r, tuple)] == [200] * 20, results
    assert answers(ledger, gate_ids) == sorted([(g, CLIENT) for g in gate_ids] + [(g, VENDOR) for g in gate_ids])
    assert sorted(committed) == sorted(gate_ids * 2)
    assert "a group of 9 clicks was not recorded, handling each on its own" in caplog.text


def test_a_group_on_postgresql_waits_for_a_lock_group_lock_wait_at_most(ledger: sessionmaker[Session],
                                                                          ledger_url: str) -> None:
    """What ends two crossing groups' wait before PostgreSQL's deadlock check would (the test above)."""
    if not ledger_url.startswith("postgresql"):
        pytest.skip("a SQLite group takes the whole file at BEGIN: it waits for no row lock")
    with group(ledger), transaction(ledger) as session:
        assert session.execute(text("SHOW lock_timeout")).scalar_one() == f"{int(GROUP_LOCK_WAIT * 1000)}ms"


def test_the_lines_thread_ends_when_idle_and_the_next_click_starts_another(
        ledger: sessionmaker[Session], acme: Engagement, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(acknowledge, "IDLE_EXIT", 0.05)
    gate_ids = open_gates(ledger, acme, 2)
    committed: list[int] = []
    line = ClickLine()
    run_all(line, ledger, [go(ledger, gate_ids[0], CLIENT, committed)])
    wait_until(lambda: line._thread is None, timeout=10, what="the idle line's thread to end")
    run_all(line, ledger, [go(ledger, gate_ids[1], CLIENT, committed)])
    assert answers(ledger, gate_ids) == sorted((g, CLIENT) for g in gate_ids) and sorted(committed) == sorted(gate_ids)


def test_a_click_whose_server_stopped_before_its_answer_does_not_stop_the_line(
        ledger: sessionmaker[Session], acme: Engagement) -> None:
    gate_ids = open_gates(ledger, acme, 2)
    committed: list[int] = []
    line, release = ClickLine(), threading.Event()
    first = go(ledger, gate_ids[0], CLIENT, committed)

    def slow(later: BackgroundTasks) -> Response:
        assert release.wait(10)
        return first(later)

    async def leave() -> None:  # the request's event loop ends before its click is answered
        line.run(ledger, slow)

    asyncio.run(leave())
    release.set()
    wait_until(lambda: committed == [gate_ids[0]], timeout=10, what="the first click to be recorded")
    [done] = run_all(line, ledger, [go(ledger, gate_ids[1], CLIENT, committed)])  # the line still answers
    assert isinstance(done, tuple) and done[0].status_code == 200
    assert answers(ledger, gate_ids) == sorted((g, CLIENT) for g in gate_ids)
