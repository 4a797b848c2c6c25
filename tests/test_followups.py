"""The after-answer queue: one pending job per key with the flags OR-ed, never two at once for one
key, a failing job stopping no other."""

from __future__ import annotations

import threading
import time

from phasegate.slack.followups import Followups


def test_answers_piling_up_on_one_gate_make_one_more_refresh_that_carries_the_decision() -> None:
    queue, gate_busy, release = Followups(workers=2), threading.Event(), threading.Event()
    runs: list[bool] = []

    def refresh(decided: bool) -> None:
        runs.append(decided)
        gate_busy.set()
        release.wait(5)

    queue.submit(("gate", 1), refresh, False)
    assert gate_busy.wait(5)
    for decided in (False, True, False):  # three answers while the first refresh is still running
        queue.submit(("gate", 1), refresh, decided)
    time.sleep(0.2)
    assert runs == [False]  # the second worker does not start the same gate's refresh meanwhile
    release.set()
    assert queue.idle(5)
    assert runs == [False, True]


def test_other_gates_go_on_while_one_is_slow_and_a_failing_job_stops_nothing() -> None:
    queue, release = Followups(workers=2), threading.Event()
    done: list[str] = []

    def slow(_: bool) -> None:
        release.wait(5)
        done.append("slow")

    def broken(_: bool) -> None:
        raise RuntimeError("a bug in one follow-up")

    queue.submit(1, slow, False)
    queue.submit(2, broken, False)
    queue.submit(3, lambda _: done.append("three"), False)
    deadline = time.monotonic() + 5
    while "three" not in done and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done == ["three"]
    assert not queue.idle(0.1)  # the slow one still runs
    release.set()
    assert queue.idle(5) and done == ["three", "slow"]


def test_a_job_runs_in_the_context_it_was_submitted_from() -> None:
    """The endpoint steers its Prefect client with a context variable (phasegate.ops.local.prefect_api):
    a wake-up done on a follow-up thread must talk to the same Prefect API."""
    from contextvars import ContextVar

    api: ContextVar[str] = ContextVar("api", default="the default")
    queue, seen = Followups(workers=1), []
    token = api.set("http://127.0.0.1:4200/api")
    queue.submit("gate", lambda _: seen.append(api.get()), True)
    api.reset(token)
    assert queue.idle(5) and seen == ["http://127.0.0.1:4200/api"]


def test_while_clicks_wait_for_the_ledger_one_follow_up_runs_at_a_time() -> None:
    """The answers Slack waits for come first: while clicks queue for the ledger, the follow-ups go
    on one at a time (never stopped, so a long burst starves no prompt), and all at once after."""
    clicks_waiting = threading.Event()
    clicks_waiting.set()
    queue, release = Followups(workers=3, clicks_waiting=clicks_waiting.is_set), threading.Event()
    running: list[int] = []
    most = [0]
    lock = threading.Lock()

    def refresh(_: bool) -> None:
        with lock:
            running.append(1)
            most[0] = max(most[0], len(running))
        release.wait(5)
        with lock:
            running.pop()

    for gate in range(6):
        queue.submit(("gate", gate), refresh, False)
    time.sleep(0.3)
    assert most[0] == 1
    clicks_waiting.clear()  # the burst is over
    time.sleep(0.3)
    assert most[0] == 3
    release.set()
    assert queue.idle(5)
