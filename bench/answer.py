"""The answer path alone: CPU and wall time per `gates.answer`, in-process, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.answer                 # 500 answers per backend, 3 repeats
    .venv/bin/python -m bench.answer --quick         # 60 answers, 1 repeat (the CI smoke run)
    .venv/bin/python -m bench.answer --backend sqlite

What a click costs the endpoint's process once its signature is verified, without HTTP and without
the work after the answer: each answer is one write transaction as the click path runs it
(`transaction(sessions)` then `gates.answer`), G1 of its own engagement, one GO from each side, so
half of the answers decide their gate (its settling and its event in the same transaction). The
engagement files and frozen evidence are decoded beforehand, as in a process that has served clicks
before. Reported: the median over the repeats of CPU (`time.process_time`) and wall time per
answer, the CPU of a redelivery (the same delivery id again: recognised, nothing written), and the
CPU per answer when GROUP answers share one transaction, as the clicks of a burst do
(phasegate.slack.acknowledge.ClickLine). No
anchor: it is the figure issue 23 names (the answer path's CPU per click), to compare across commits.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from contextlib import nullcontext

from bench.ack_world import database, open_g1
from bench.results import Run, add_argument
from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.configs.schema import Engagement
from phasegate.ledger import ballots, gates
from phasegate.ledger.db import group, make_engine, sessions, transaction, upgrade
from phasegate.states import Outcome, Via

CLIENT, VENDOR = "U0SPONSOR1", "U0VENDLEAD"
GROUP = 50  # answers to a group for the grouped figure: about a burst's clicks in flight (bench.ack: 50)


def open_gates(url: str, prefix: str, count: int) -> list[int]:
    """`count` open G1 gates, each of its own engagement, decoded once as a serving process would have."""
    factory = sessions(engine := make_engine(url))
    data = load_engagement(ENGAGEMENTS_DIR / "acme-churn.yaml").model_dump(mode="json")
    with transaction(factory) as session:
        opened = []
        for n in range(count):
            config = Engagement.model_validate(data | {"id": f"{prefix}-{n:05d}", "slack_channel": f"C0A{n:05d}"})
            opened.append(open_g1(session, config, None))
    with transaction(factory, write=False) as session:
        for gate_id in opened:
            read = gates.ballot(session, gate_id)
            ballots.config(session.connection(), read)
            gates.snapshot_of(session, read.gate)
    engine.dispose()
    return opened


def answer_all(url: str, work: list[tuple[int, str, str]], *, expect: bool, grouped: int = 1) -> tuple[float, float]:
    """(CPU ms, wall ms) per answer of `work`, each (gate, approver, delivery id) in a transaction of its
    own, or with `grouped` > 1 that many to a group (phasegate.ledger.db.group) that reads ahead for all of
    them (phasegate.ledger.held), as a burst of clicks is."""
    factory = sessions(engine := make_engine(url))
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(work), grouped):
        chunk = work[start:start + grouped]
        ahead = [(gate_id, delivery) for gate_id, _, delivery in chunk]  # read ahead, as the click line's groups are
        with group(factory, functools.partial(gates.prefetch, wanted=ahead)) if grouped > 1 else nullcontext():
            for gate_id, approver, delivery in chunk:
                with transaction(factory) as session:
                    done = gates.answer(session, gate_id, approver=approver, outcome=Outcome.GO, reason="",
                                        via=Via.SLACK, delivery_id=delivery)
                if done.recorded is not expect:
                    raise RuntimeError(f"gate {gate_id}: {approver}'s answer recorded={done.recorded}, "
                                       f"expected {expect}")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    engine.dispose()
    return cpu / len(work) * 1000, wall / len(work) * 1000


def measure(backend: str, count: int, repeat: int, run: Run) -> None:
    cpu, wall, again, grouped = [], [], [], []
    with database(backend, "answer") as url:
        upgrade(url)
        for r in range(repeat):
            opened = open_gates(url, f"answer{r}", count // 2)
            work = [(gate_id, user, f"bench-{r}-{gate_id}-{user}") for user in (CLIENT, VENDOR) for gate_id in opened]
            first = answer_all(url, work, expect=True)
            cpu.append(first[0])
            wall.append(first[1])
            again.append(answer_all(url, work[:100], expect=False)[0])
            opened = open_gates(url, f"grouped{r}", count // 2)
            work = [(gate_id, user, f"grouped-{r}-{gate_id}-{user}") for user in (CLIENT, VENDOR) for gate_id in opened]
            grouped.append(answer_all(url, work, expect=True, grouped=GROUP)[0])
    figures = {"CPU per answer": (statistics.median(cpu), "ms"), "wall per answer": (statistics.median(wall), "ms"),
               "CPU per redelivery": (statistics.median(again), "ms"),
               f"CPU per answer in groups of {GROUP}": (statistics.median(grouped), "ms")}
    for what, (value, unit) in figures.items():
        run.figure(f"answer path {backend}: {what}", round(value, 2), unit,
                   note=f"median of {repeat} x {count} answers")
        print(f"{backend}: {what} {value:.2f} {unit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--answers", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="60 answers, 1 repeat")
    add_argument(parser)
    args = parser.parse_args()
    count, repeat = (60, 1) if args.quick else (args.answers, args.repeat)
    run = Run("answer", quick=args.quick, results=args.results, sizes={"answers": count, "repeat": repeat})
    for backend in args.backend or ["sqlite", "postgresql"]:
        measure(backend, count, repeat, run)
    run.write()


if __name__ == "__main__":
    main()
