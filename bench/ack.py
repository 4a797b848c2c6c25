"""B-ACK: signed Slack clicks on loopback, answered by phasegate's endpoint, beside a bare endpoint.

    .venv/bin/python -m bench.ack                    # SQLite and PostgreSQL, full sizes
    .venv/bin/python -m bench.ack --quick            # tiny sizes (the CI smoke run)
    .venv/bin/python -m bench.ack --backend sqlite

(a) a steady 20 clicks/s for 30 s: p99 answer time (budget under 100 ms). (b) a burst of 1,000 clicks
on open gates, 50 in flight: throughput and p99 beside a bare Starlette endpoint that only verifies the
signature (phasegate/slack/signature.py), measured in the same run before and after phasegate's (the
better of the two bare runs is the anchor). Budget: throughput >= 1.0 x bare, p99 <= 1.1 x bare, no
errors, and each approver's decision recorded exactly once (counted in the ledger afterwards).

Every gate is G1 of its own engagement (quorum: one client and one vendor answer), so each gate gets
two clicks and the second decides it: half the clicks start the after-answer work that decides a gate.
The clients run in a child process (bench.load) and the Slack stand-in in another, so neither shares
the endpoint's GIL. PostgreSQL runs on a fresh database at 127.0.0.1:5432, dropped at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bench.load import Generator, Job, Result
from bench.results import Run, add_argument
from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import engagements, gates, phases
from phasegate.ledger.db import transaction, upgrade
from phasegate.ledger.models import AuditEventRow, DecisionRow, GateRow, utcnow
from phasegate.ops.servers import serve_in_thread
from phasegate.orchestration.runtime import Runtime
from phasegate.rules.evidence import Snapshot
from phasegate.settings import Settings
from phasegate.slack.app import create_app
from phasegate.slack.deps import SlackDeps
from phasegate.slack.signature import verify
from phasegate.states import AuditKind, GateState

SECRET = "bench-secret"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CLIENT, VENDOR = "U0SPONSOR1", "U0VENDLEAD"  # one from each side: the second answer decides G1


def bare_app() -> Starlette:
    """The anchor: read the body, verify the signature, answer. Nothing else."""
    async def interactions(request: Request) -> Response:
        body = await request.body()
        if not verify(SECRET, body, request.headers.get("x-slack-request-timestamp"),
                      request.headers.get("x-slack-signature"), now=time.time()):
            return PlainTextResponse("invalid signature", status_code=401)
        return Response(status_code=200)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/slack/interactions", interactions, methods=["POST"]),
                             Route("/healthz", healthz)])


def slack_child(conn: Connection) -> None:
    """The Slack stand-in in its own process: sends its base URL and token, serves until told to stop."""
    from phasegate.sandbox.standins.slack_api import SlackStandin

    slack = SlackStandin()
    slack.start()
    conn.send((slack.base_url, slack.bot_token))
    conn.recv()
    conn.send(sum(1 for call in slack.calls if call == "chat.update"))
    slack.stop()


@contextmanager
def ledger(backend: str) -> Iterator[str]:
    """A migrated, empty ledger on `backend`; a PostgreSQL database is created and dropped."""
    if backend == "sqlite":
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='phasegate-bench-')) / 'ledger.db'}"
        upgrade(url)
        yield url
        return
    name = f"phasegate_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def open_gates(rt: Runtime, template: Engagement, prefix: str, count: int) -> list[tuple[int, str, str]]:
    """`count` open G1 gates, each of its own engagement, prompt posted: (gate id, channel, ts)."""
    data = template.model_dump(mode="json")
    made: list[tuple[int, str]] = []
    with transaction(rt.sessions) as session:
        for n in range(count):
            config = Engagement.model_validate(data | {"id": f"{prefix}-{n:04d}", "slack_channel": f"C0B{prefix.upper()}{n:04d}"})
            engagements.register(session, config)
            phases.start_phase(session, config, Phase.POC, requested_by=config.pm_slack_user, flow_run_id=None,
                               today=config.start_date)
            snapshot = Snapshot(engagement_id=config.id, phase=Phase.POC, timebox=1, collected_at=utcnow(),
                                milestones=[], metrics=[], criteria=[])
            gate = gates.open_gate(session, snapshot, requested_by=config.pm_slack_user,
                                   flow_run_id=f"run-{config.id}", channel=config.slack_channel)
            made.append((gate.id, config.slack_channel))
    posted = []
    for gate_id, channel in made:
        ts = rt.chat.post(channel, f"G1 prompt for gate {gate_id}")
        posted.append((gate_id, channel, ts))
    with transaction(rt.sessions) as session:
        for gate_id, _, ts in posted:
            gates.by_id(session, gate_id).message_ts = ts
    return posted


def clicks(posted: list[tuple[int, str, str]]) -> list[dict[str, Any]]:
    """Two clicks a gate (client first, then vendor), gates interleaved so that both arrive mid-burst."""
    out = []
    for user in (CLIENT, VENDOR):
        for gate_id, channel, ts in posted:
            out.append({"type": "block_actions", "user": {"id": user}, "trigger_id": secrets.token_hex(8),
                        "container": {"type": "message", "channel_id": channel, "message_ts": ts},
                        "channel": {"id": channel},
                        "actions": [{"type": "button", "action_id": "gate:go", "block_id": f"gate-{gate_id}",
                                     "value": str(gate_id), "action_ts": f"{time.time():.6f}"}]})
    return out


def exactly_once(rt: Runtime, gate_ids: list[int]) -> tuple[int, int, int, int]:
    """(decisions, distinct approver answers, decision audit events, gates decided) for these gates."""
    with transaction(rt.sessions) as session:
        rows = session.execute(select(DecisionRow.gate_id, DecisionRow.approver)
                               .where(DecisionRow.gate_id.in_(gate_ids))).all()
        audit = session.scalar(select(func.count()).select_from(AuditEventRow)
                               .where(AuditEventRow.kind == AuditKind.DECISION_RECORDED,
                                      AuditEventRow.engagement_id.like("burst%"))) or 0
        decided = session.scalar(select(func.count()).select_from(GateRow)
                                 .where(GateRow.id.in_(gate_ids), GateRow.state == GateState.DECIDED)) or 0
    return len(rows), len(set(rows)), audit, decided


def run_backend(backend: str, gen: Generator, slack_url: str, token: str, *, steady_s: float, rate: float,
                burst: int, concurrency: int, rounds: int, run: Run) -> None:
    template = load_engagement(ENGAGEMENTS_DIR / "acme-churn.yaml")
    with ledger(backend) as url:
        home = Path(tempfile.mkdtemp(prefix="phasegate-bench-"))
        rt = Runtime(Settings(home=home, database_url=url, slack_api_url=slack_url, slack_bot_token=token,
                              slack_signing_secret=SECRET))
        steady_gates = open_gates(rt, template, "steady", int(steady_s * rate) // 2)
        burst_gates = [open_gates(rt, template, f"burst{r}", burst // 2) for r in range(rounds)]
        woken: list[str] = []
        ours = serve_in_thread(create_app(SlackDeps(signing_secret=SECRET, sessions=rt.sessions, chat=rt.chat,
                                                    resume=woken.append)))
        bare = serve_in_thread(bare_app())
        try:
            steady = gen.run(Job(ours.url + "/slack/interactions", clicks(steady_gates), rate=rate))
            settle(lambda: len(woken) >= len(steady_gates))  # the steady run's after-answer work is done
            bare_url, ours_url = bare.url + "/slack/interactions", ours.url + "/slack/interactions"
            anchors = [gen.run(Job(bare_url, clicks(burst_gates[0]), concurrency=concurrency))]
            bursts = []
            for gates_of_round in burst_gates:  # bare, ours, bare, ours, ..., bare: noise hits both alike
                bursts.append(gen.run(Job(ours_url, clicks(gates_of_round), concurrency=concurrency)))
                anchors.append(gen.run(Job(bare_url, clicks(gates_of_round), concurrency=concurrency)))
            settle(lambda: len(woken) >= len(steady_gates) + sum(len(g) for g in burst_gates))
            gate_ids = [g for round_gates in burst_gates for g, _, _ in round_gates]
            counts = exactly_once(rt, gate_ids)
        finally:
            ours.stop()
            bare.stop()
            rt.close()
    print(f"{backend}:")
    steady_ok = steady.pct(0.99) < 0.1 and not steady.errors
    print(f"  (a) steady {rate:g}/s for {steady_s:g} s: {len(steady.latencies)} clicks, errors {steady.errors}, "
          f"median {steady.median * 1000:.1f} ms, p99 {steady.pct(0.99) * 1000:.1f} ms   budget < 100 ms   "
          f"{'ok' if steady_ok else 'MISS'}")
    run.figure(f"B-ACK (a) {backend}: steady {rate:g}/s for {steady_s:g} s, p99", round(steady.pct(0.99) * 1000, 1),
               "ms", target="< 100 ms, no errors", met=steady_ok,
               note=f"median {steady.median * 1000:.1f} ms, errors {steady.errors}")
    report_bursts(bursts, anchors, burst, concurrency, run, backend)
    decisions, distinct, audit, decided = counts
    sent = sum(len(b.latencies) for b in bursts) + len(steady.latencies)
    once = decisions == distinct == audit == sent - len(steady.latencies) and decided == len(gate_ids)
    print(f"  exactly once: {decisions} decisions, {distinct} distinct (gate, approver), {audit} audit events "
          f"for {sent - len(steady.latencies)} burst clicks; {decided}/{len(gate_ids)} gates decided; "
          f"{len(woken)} wakes for {len(gate_ids) + len(steady_gates)} gates   {'ok' if once else 'MISS'}")
    run.figure(f"B-ACK (b) {backend}: decisions recorded, exactly once", decisions, "decisions",
               target=f"= {sent - len(steady.latencies)} burst clicks, each once", met=once,
               note=f"{distinct} distinct, {audit} audit events, {decided}/{len(gate_ids)} gates decided")


def settle(done: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.1)


def report_bursts(bursts: list[Result], anchors: list[Result], size: int, concurrency: int, run: Run,
                  backend: str) -> None:
    """Each round's figures beside the mean of the bare runs just before and after it; the verdict
    on the median ratio over the rounds."""
    statuses: dict[int, int] = {}
    for b in bursts:
        for status, n in b.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    print(f"  (b) burst {size} @ {concurrency}, {len(bursts)} rounds; errors {sum(b.errors for b in bursts)} "
          f"(bare {sum(a.errors for a in anchors)}); answers by HTTP status {dict(sorted(statuses.items()))} "
          "(599: no answer within the client's 30 s)")
    thr_ratios, p99_ratios = [], []
    for i, ours in enumerate(bursts):
        before, after = anchors[i], anchors[i + 1]
        thr = (before.throughput + after.throughput) / 2
        p99 = (before.pct(0.99) + after.pct(0.99)) / 2
        thr_ratios.append(ours.throughput / thr)
        p99_ratios.append(ours.pct(0.99) / p99)
        print(f"    round {i + 1}: throughput {ours.throughput:7.0f}/s  bare {thr:7.0f}/s  ratio {thr_ratios[-1]:5.2f}"
              f"   p99 {ours.pct(0.99) * 1000:7.1f} ms  bare {p99 * 1000:7.1f} ms  ratio {p99_ratios[-1]:5.2f}"
              f"   median {ours.median * 1000:6.1f} ms  bare {(before.median + after.median) * 500:6.1f} ms")
    cpu = sum(b.server_cpu for b in bursts) / sum(len(b.latencies) for b in bursts) * 1000
    bare_cpu = sum(a.server_cpu for a in anchors) / sum(len(a.latencies) for a in anchors) * 1000
    print(f"    server CPU per click while answering: {cpu:.2f} ms, bare {bare_cpu:.2f} ms, ratio {cpu / bare_cpu:.2f}")
    thr_ratio, p99_ratio = statistics.median(thr_ratios), statistics.median(p99_ratios)
    print(f"    median ratio: throughput {thr_ratio:.2f} (budget >= 1.0: {'ok' if thr_ratio >= 1.0 else 'MISS'}), "
          f"p99 {p99_ratio:.2f} (budget <= 1.1: {'ok' if p99_ratio <= 1.1 else 'MISS'})")
    bare = "bare endpoint, signature check only"
    ours_thr = statistics.median(b.throughput for b in bursts)
    ours_p99 = statistics.median(b.pct(0.99) for b in bursts) * 1000
    run.figure(f"B-ACK (b) {backend}: burst {size} @ {concurrency}, throughput (median of {len(bursts)})",
               round(ours_thr, 1), "clicks/s", anchor=(bare, round(statistics.median(a.throughput for a in anchors), 1)), target=">= 1.0 × anchor",
               met=thr_ratio >= 1.0, note=f"server CPU {cpu:.2f} ms a click, bare {bare_cpu:.2f} ms")
    run.figure(f"B-ACK (b) {backend}: burst {size} @ {concurrency}, p99 (median of {len(bursts)})", round(ours_p99, 1),
               "ms", anchor=(bare, round(statistics.median(a.pct(0.99) for a in anchors) * 1000, 1)), target="<= 1.1 × anchor", met=p99_ratio <= 1.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: 2 s steady, 40 clicks (a smoke run)")
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="bursts of ours, each between two bare bursts")
    add_argument(parser)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.burst, args.concurrency, args.rounds = 2, 40, 10, 1
    run = Run("ack", quick=args.quick, results=args.results,
              sizes={"steady_seconds": args.seconds, "rate": args.rate, "burst": args.burst,
                     "concurrency": args.concurrency, "rounds": args.rounds})
    context = multiprocessing.get_context("spawn")
    ours_end, slack_end = context.Pipe()
    slack = context.Process(target=slack_child, args=(slack_end,), daemon=True)
    slack.start()
    slack_url, token = ours_end.recv()
    gen = Generator(SECRET)
    try:
        for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
            run_backend(backend, gen, slack_url, token, steady_s=args.seconds, rate=args.rate, burst=args.burst,
                        concurrency=args.concurrency, rounds=args.rounds, run=run)
        run.write()
    finally:
        gen.close()
        ours_end.send("stop")
        print(f"slack stand-in: {ours_end.recv()} chat.update calls")
        slack.join(timeout=10)


if __name__ == "__main__":
    main()
