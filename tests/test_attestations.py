"""An attestation is recorded once per person, however its clicks or commands race (issue 23's burst,
applied to the kickoff's Attest buttons): the repeat check and the write are one step in the ledger."""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import engagements
from phasegate.ledger.db import transaction
from phasegate.ledger.models import AttestationRow
from phasegate.states import Via

LEAD = "U0TECHLEAD"


def test_a_second_attestation_by_the_same_person_records_nothing(ledger: sessionmaker[Session],
                                                                  acme: Engagement) -> None:
    with transaction(ledger) as session:
        engagements.register(session, acme)
        first = engagements.attest(session, acme, Phase.HANDOVER, "data-deletion", by=LEAD, note="", via=Via.CLI)
    with transaction(ledger) as session:
        again = engagements.attest(session, acme, Phase.HANDOVER, "data-deletion", by=LEAD, note="", via=Via.SLACK)
        other = engagements.attest(session, acme, Phase.HANDOVER, "data-deletion", by="U0SPONSOR1", note="",
                                   via=Via.SLACK)
    assert first is not None and again is None and other is not None
    with transaction(ledger, write=False) as session:
        assert session.scalar(select(func.count()).select_from(AttestationRow)) == 2


def test_two_attestations_racing_are_recorded_once(ledger: sessionmaker[Session], acme: Engagement) -> None:
    """The first holds its transaction open; the second, on another connection, waits for it and then
    finds the first's attestation (on PostgreSQL it used to read before the first committed and record
    a second)."""
    with transaction(ledger) as session:
        engagements.register(session, acme)
    held, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def first() -> None:
        with transaction(ledger) as session:
            results["first"] = engagements.attest(session, acme, Phase.HANDOVER, "data-deletion", by=LEAD,
                                                  note="", via=Via.SLACK)
            held.set()
            release.wait(10)

    def second() -> None:
        with transaction(ledger) as session:
            results["second"] = engagements.attest(session, acme, Phase.HANDOVER, "data-deletion", by=LEAD,
                                                   note="", via=Via.SLACK)

    one = threading.Thread(target=first)
    one.start()
    assert held.wait(10)
    two = threading.Thread(target=second)
    two.start()
    two.join(0.5)
    assert two.is_alive(), "the second attestation did not wait for the first's transaction"
    release.set()
    one.join(10)
    two.join(10)
    assert isinstance(results["first"], AttestationRow) and results["second"] is None
    with transaction(ledger, write=False) as session:
        assert session.scalar(select(func.count()).select_from(AttestationRow)) == 1
