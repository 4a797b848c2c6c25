"""Two answers to one gate in two transactions at once (two replicas, or a click beside the CLI): the
second waits for the gate's lock and then counts the first, so the quorum they make together decides
the gate. On PostgreSQL (READ COMMITTED) a statement that waited for a lock reads other rows as they
were when it began: the answers must be read by a statement begun after the lock is held."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session, sessionmaker
from test_burst import prompts

from phasegate.configs.schema import Engagement
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.states import GateState, Outcome, Via

CLIENT, VENDOR = "U0SPONSOR1", "U0VENDLEAD"  # G1's quorum: two answers, one from each side


def test_an_answer_that_waited_for_the_gate_counts_the_answer_it_waited_for(
        ledger: sessionmaker[Session], acme: Engagement) -> None:
    [(gate_id, _, _)] = prompts(ledger, None, acme, 1)
    held, release = threading.Event(), threading.Event()
    results: dict[str, gates.Answered] = {}

    def answer(who: str, hold: bool) -> None:
        with transaction(ledger) as session:
            results[who] = gates.answer(session, gate_id, approver=who, outcome=Outcome.GO, reason="", via=Via.SLACK,
                                        delivery_id=f"race-{who}")
            if hold:
                held.set()
                assert release.wait(10)

    first = threading.Thread(target=answer, args=(CLIENT, True))
    first.start()
    assert held.wait(10)
    second = threading.Thread(target=answer, args=(VENDOR, False))
    second.start()
    second.join(0.5)
    assert second.is_alive(), "the second answer did not wait for the first's transaction"
    release.set()
    first.join(10)
    second.join(10)
    assert results[CLIENT].recorded and results[CLIENT].decided is None
    assert results[VENDOR].recorded and results[VENDOR].decided is Outcome.GO
    with transaction(ledger, write=False) as session:
        assert gates.by_id(session, gate_id).state is GateState.DECIDED
