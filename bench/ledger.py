"""B-LEDGER: the portfolio views with 100 and 1,000 engagements and 100,000 audit events.

    .venv/bin/python -m bench.ledger                 # --sizes 100 1000 --events 100000 --repeat 5
    .venv/bin/python -m bench.ledger --quick         # tiny sizes (the CI smoke run)

For each size, a fresh SQLite ledger gets that many engagements (each in its PoC, every third with an
open G1 and one answer) and the audit events spread over them (inserted in bulk: a listing reads no
chain, so the filler's hashes are not a valid chain). It then times, in-process, what `phasegate status`,
`engagement list` and `gate list` read, by the path those commands take (phasegate.ledger.read and
phasegate.reports.status_view: the DB-API driver, one read-only transaction each, median of
--repeat), and counts their SQL statements. The anchor is the same
view at the smaller size: the query count must not grow with the number of engagements, and the time
at 1,000 must be under 200 ms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from bench.results import Run, add_argument
from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import engagements, gates, phases, read
from phasegate.ledger.db import make_engine, sessions, transaction, upgrade
from phasegate.ledger.models import AuditEventRow, utcnow
from phasegate.reports import status_view
from phasegate.rules.evidence import Snapshot
from phasegate.states import AuditKind, Outcome, Via

BUDGET_MS = 200.0
PAGE = 50  # the default --limit of status, engagement list and gate list


def fill(factory: sessionmaker[Session], count: int, events: int) -> None:
    template = load_engagement(ENGAGEMENTS_DIR / "acme-churn.yaml").model_dump(mode="json")
    with transaction(factory) as session:
        for n in range(count):
            config = Engagement.model_validate(template | {"id": f"bench-{n:05d}", "name": f"Bench {n}",
                                                           "slack_channel": f"C0BENCH{n:05d}"})
            engagements.register(session, config)
            phases.start_phase(session, config, Phase.POC, requested_by=config.pm_slack_user, flow_run_id=None,
                               today=config.start_date)
            if n % 3 == 0:
                snapshot = Snapshot(engagement_id=config.id, phase=Phase.POC, timebox=1, collected_at=utcnow(),
                                    milestones=[], metrics=[], criteria=[])
                gate = gates.open_gate(session, snapshot, requested_by=config.pm_slack_user, flow_run_id=None,
                                       channel=config.slack_channel)
                gates.answer(session, gate.id, approver="U0SPONSOR1", outcome=Outcome.GO, reason="", via=Via.SLACK,
                             engagement=config)
    rows: list[dict[str, Any]] = []
    per = max(1, events // count)
    for n in range(count):
        for i in range(per):
            rows.append({"engagement_id": f"bench-{n:05d}", "kind": AuditKind.METRIC_SUBMITTED, "subject": "filler",
                         "payload": {"i": i}, "created_at": utcnow(), "seq": 1000 + i,
                         "prev_hash": f"f{n:05d}{i:058d}", "hash": f"e{n:05d}{i:058d}"})
    with transaction(factory) as session:
        session.execute(insert(AuditEventRow), rows)


class Counter:
    """Counts the SQL statements a Reader runs."""

    def __init__(self) -> None:
        self.count = 0
        original = read.Reader.rows

        def counted(reader: read.Reader, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(reader, *args, **kwargs)

        read.Reader.rows = counted  # type: ignore[method-assign]


def measure(url: str, counter: Counter, view: Callable[[read.Reader], object], repeat: int) -> tuple[float, int, int]:
    """(median ms, statements per view, rows shown)."""
    times, statements, shown = [], 0, 0
    for _ in range(repeat):
        counter.count = 0
        started = time.perf_counter()
        with read.reading(url) as conn:
            result = view(conn)
        times.append((time.perf_counter() - started) * 1000)
        statements = counter.count
        shown = len(result) if isinstance(result, list) else len(getattr(result, "rows", []))
    return statistics.median(times), statements, shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10 and 30 engagements, 3,000 events, 2 repeats")
    add_argument(parser)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.events, args.repeat = [10, 30], 3000, 2
    run = Run("ledger", quick=args.quick, results=args.results,
              sizes={"engagements": args.sizes, "audit_events": args.events, "repeat": args.repeat})
    views: dict[str, Callable[[read.Reader], object]] = {
        f"status (default: first {PAGE} in progress)": lambda c: status_view.rows(
            c, utcnow(), status_view.page(c, limit=PAGE, finished=False).ids),
        "status --all": lambda c: status_view.rows(c, utcnow(), status_view.page(c, limit=None, finished=True).ids),
        f"engagement list (default: first {PAGE})": lambda c: read.engagement_listing(c, PAGE)[0],
        "engagement list --all": lambda c: read.engagement_listing(c)[0],
        f"gate list (default: newest {PAGE})": lambda c: read.newest_gates(c, limit=PAGE)[0],
    }
    results: dict[tuple[str, int], tuple[float, int, int]] = {}
    counter = Counter()
    for size in args.sizes:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='phasegate-bench-')) / 'ledger.db'}"
        upgrade(url)
        engine = make_engine(url)
        factory = sessions(engine)
        started = time.perf_counter()
        fill(factory, size, args.events)
        print(f"{size} engagements, {args.events} audit events: filled in {time.perf_counter() - started:.1f} s")
        engine.dispose()
        for name, view in views.items():
            results[(name, size)] = measure(url, counter, view, args.repeat)
    small, large = min(args.sizes), max(args.sizes)
    print(f"{'view':<40} {'size':>6} {'median':>10} {'queries':>8} {'rows':>6}")
    for name in views:
        for size in args.sizes:
            ms, queries, shown = results[(name, size)]
            print(f"{name:<40} {size:>6} {ms:>8.1f}ms {queries:>8} {shown:>6}")
        big, little = results[(name, large)], results[(name, small)]
        ok = big[0] < BUDGET_MS and big[1] == little[1]
        print(f"  {name}: {large} vs {small} engagements: time ratio {big[0] / little[0]:.2f}, queries "
              f"{little[1]} -> {big[1]}; budget < {BUDGET_MS:g} ms and constant queries: {'ok' if ok else 'MISS'}")
        run.figure(f"B-LEDGER {name}, {large} engagements", round(big[0], 1), "ms",
                   anchor=(f"the same view at {small} engagements", round(little[0], 1)),
                   target=f"< {BUDGET_MS:g} ms, queries constant", met=ok,
                   note=f"queries {little[1]} -> {big[1]}, {big[2]} rows")
    run.write()


if __name__ == "__main__":
    main()
