"""Writers' turns (phasegate/ledger/writers.py): first come first served, waited for while the line
moves or its writers keep working, given up on once the database fails them or the line is stuck.
Threads and short timeouts; no database."""

from __future__ import annotations

import threading
import time

import pytest
from helpers import wait_until
from sqlalchemy.exc import OperationalError

from phasegate.ledger.writers import STUCK, Turns, Writer, WriterTimeout, deadline

pytestmark = pytest.mark.slow  # thread timings: kept out of the parallel fast subset, where the load stretches them


def queue_behind(writer: Writer, count: int, hold: float, *, fail: bool = False) -> tuple[list[int], list[threading.Thread]]:
    """`count` writers joining the line one after another, each holding its turn `hold` seconds
    (failing in the database when `fail`): the order they got their turns in, and their threads."""
    order: list[int] = []

    def write(n: int) -> None:
        try:
            with writer.turn():
                order.append(n)
                time.sleep(hold)
                if fail:
                    raise OperationalError("INSERT", {}, Exception("database is locked"))
        except (WriterTimeout, OperationalError):
            pass

    threads = [threading.Thread(target=write, args=(n,)) for n in range(count)]
    for n, thread in enumerate(threads):
        thread.start()
        wait_until(lambda n=n, thread=thread: writer.turns.waiting + len(order) > n or not thread.is_alive(),
                   what=f"writer {n} in line", interval=0.001)  # in line, in this order
    return order, threads


def waited(writer: Writer) -> tuple[bool, float]:
    """Whether a writer joining now gets a turn, and how long it waited for it or gave up after."""
    started = time.monotonic()
    try:
        with writer.turn():
            return True, time.monotonic() - started
    except WriterTimeout:
        return False, time.monotonic() - started


def test_writers_are_served_in_the_order_they_came() -> None:
    writer = Writer(Turns(), timeout=2.0)
    order, threads = queue_behind(writer, 20, 0.002)
    for thread in threads:
        thread.join()
    assert order == list(range(20))


@pytest.mark.parametrize(("count", "hold", "waits"), [
    (30, 0.02, 0.4),  # 0.6 s in line, three times the timeout, each writer done well within it
    (3, 0.4, 1.0),  # each writer twice the timeout: a machine starved of CPU, a long transaction
])
def test_a_line_whose_writers_get_their_work_done_is_waited_for_past_the_timeout(
        count: int, hold: float, waits: float) -> None:
    """Every writer ahead gets its work done, the database failing none: a busy ledger, not a down one,
    so the newcomer waits and writes. Giving up once nobody had finished for the timeout told a burst
    of clickers "not recorded" on a loaded CI machine."""
    writer = Writer(Turns(), timeout=0.2, patience=5.0)
    _, threads = queue_behind(writer, count, hold)
    got, seconds = waited(writer)
    assert got and seconds > waits
    for thread in threads:
        thread.join()


def test_a_stuck_line_is_given_up_on_after_stuck_times_the_timeout() -> None:
    writer = Writer(Turns(), timeout=0.3, patience=5.0)
    release = threading.Event()

    def stuck() -> None:
        with writer.turn():
            release.wait(10)

    holder = threading.Thread(target=stuck)
    holder.start()
    time.sleep(0.05)
    got, seconds = waited(writer)
    assert not got and 0.3 * STUCK - 0.1 < seconds < 0.3 * STUCK + 0.8
    time.sleep(0.3)
    got, seconds = waited(writer)  # the line has stood still for longer than that: at once
    release.set()
    holder.join()
    assert not got and seconds < 0.05


def test_writers_the_database_failed_do_not_move_the_line() -> None:
    """Each writer ahead fails after 0.1 s (the file is locked by another process): that is no work
    done, so the newcomer gives up after the timeout instead of waiting out everyone's failure."""
    writer = Writer(Turns(), timeout=0.3, patience=5.0)
    _, threads = queue_behind(writer, 30, 0.1, fail=True)  # 3 s of failures ahead
    got, seconds = waited(writer)
    assert not got and seconds < 1.5  # the timeout and a loaded machine's slack, not everyone's 3 s
    for thread in threads:
        thread.join()


def test_patience_bounds_the_wait_even_in_a_line_that_moves() -> None:
    writer = Writer(Turns(), timeout=0.2, patience=0.4)
    _, threads = queue_behind(writer, 40, 0.05)  # 2 s of work ahead, each turn well inside the timeout
    got, seconds = waited(writer)
    assert not got and 0.35 < seconds < 1.5
    for thread in threads:
        thread.join()


def test_the_lock_wait_after_a_turn_gets_what_is_left_of_patience() -> None:
    writer = Writer(Turns(), timeout=1.0, patience=1.5)
    _, threads = queue_behind(writer, 1, 0.9)
    with writer.turn() as left:
        assert 0.4 < left < 0.7
    with writer.turn() as left:
        assert left == pytest.approx(1.0, abs=0.05)  # no wait: the whole timeout
    for thread in threads:
        thread.join()


def test_a_thread_inside_its_turn_does_not_queue_behind_itself() -> None:
    turns = Turns(places=1)
    writer = Writer(turns, timeout=0.2)
    with writer.turn(), writer.turn():
        pass
    assert waited(writer) == (True, pytest.approx(0, abs=0.05))


def test_several_places_take_that_many_writers_at_once() -> None:
    writer = Writer(Turns(places=3), timeout=1.0)
    inside: list[int] = []
    most = [0]
    lock = threading.Lock()

    def write() -> None:
        with writer.turn():
            with lock:
                inside.append(1)
                most[0] = max(most[0], len(inside))
            time.sleep(0.05)
            with lock:
                inside.pop()

    threads = [threading.Thread(target=write) for _ in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 3


def test_a_requests_deadline_ends_its_wait_in_a_line_that_moves() -> None:
    writer = Writer(Turns(), timeout=0.2, patience=5.0)
    _, threads = queue_behind(writer, 40, 0.02)
    with deadline(0.3):
        got, seconds = waited(writer)
    assert not got and 0.25 < seconds < 0.7
    for thread in threads:
        thread.join()
    with deadline(0.0), writer.turn() as left:  # past its deadline, a free place is still taken
        assert left == 0.0
