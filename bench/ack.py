"""B-ACK: signed Slack clicks on loopback, answered by phasegate's endpoint, beside two anchors.

    .venv/bin/python -m bench.ack                    # SQLite and PostgreSQL, full sizes
    .venv/bin/python -m bench.ack --quick            # tiny sizes (the CI smoke run)
    .venv/bin/python -m bench.ack --backend sqlite

Every process is its own: the client (bench.load: a raw keep-alive HTTP/1.1 client on asyncio streams,
signing each payload as Slack does), each server (uvicorn): the bare endpoint that only checks the
signature and the durable-write floor that also commits one decision row keyed by delivery id
(bench.anchors), phasegate's endpoint exactly as `phasegate serve-slack` serves it; the Slack stand-in
(phasegate.sandbox) and a Prefect API stand-in answering the resume calls (bench.prefect_standin), so
waking each decided gate's run is part of what is measured. PostgreSQL databases are fresh ones at
127.0.0.1:5432, dropped at the end. Each server first answers a few warm-up clicks (their runs woken),
so that what a long-running endpoint loads once is not measured.

(a) a steady 20 clicks/s for 30 s: p99 answer time (budget under 100 ms). (b) bursts of 1,000 distinct
clicks, 50 in flight (500 engagements, each one open G1 needing one GO from each side, so every click
is a decision to record), each burst between runs of both anchors on the same backend: throughput and
p99 as ratios to the floor's (budget >= 0.8 x and <= 1.5 x; the signature-only ratio is reported too),
server CPU per click while answering and until the follow-ups (renders, chat.update, wakes) are done,
every decision recorded exactly once in the ledger, no clicker told "not recorded" (counted on the
Slack stand-in's response URLs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.ack_report import Figures, Round
from bench.ack_world import SlackWorld, clicks, database, exactly_once, not_recorded, open_gates
from bench.anchors import SECRET
from bench.load import Generator, Job
from bench.procs import Server, children, cpu_seconds, free_port, idle
from bench.results import Run, add_argument
from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.ledger.db import upgrade
from phasegate.orchestration.runtime import Runtime
from phasegate.settings import Settings

PYTHON = sys.executable  # the venv's python: the servers import what this process imports
PHASEGATE = str(Path(PYTHON).parent / "phasegate")

# `phasegate serve-slack` starts the refresher (the work after each answer) as a child process of its
# own; bench.ack counts the CPU of the endpoint's children with the follow-ups. FOLLOWUP_WORKER: a
# further command to start beside the endpoint (given its environment) and count the same way.
FOLLOWUP_WORKER: list[str] | None = None
REFRESHER_START = 10.0  # seconds for serve-slack to start its refresher
WARM_UP = 3  # gates clicked (and their runs woken) before anything is measured: no first-use costs measured


def start(name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    return Server.start(name, [*args, "--port", str(port)], port, log_dir=log_dir, env=env)


def endpoint_env(settings: Settings, prefect_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PHASEGATE_", "PREFECT_"))}
    env.update(settings.as_env())
    env.update(PREFECT_API_URL=prefect_url, PREFECT_HOME=str(settings.home / "prefect"),
               PREFECT_LOGGING_LEVEL="WARNING", PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false")
    return env


class Bench:
    def __init__(self, args: argparse.Namespace, run: Run) -> None:
        self.args, self.run = args, run
        self.logs = Path(tempfile.mkdtemp(prefix="phasegate-bench-ack-"))
        self.gen = Generator(SECRET)
        self.slack = SlackWorld()
        self.prefect = start("prefect-standin", [PYTHON, "-m", "bench.prefect_standin"], self.logs)
        self.bare = start("bare", [PYTHON, "-m", "bench.anchors", "bare"], self.logs)

    def close(self) -> None:
        self.prefect.stop()
        self.bare.stop()
        self.slack.close()
        self.gen.close()

    def wakes(self) -> int:
        return int(httpx.get(f"{self.prefect.url}/bench/wakes", timeout=10).json()["resumed"])

    def burst(self, server: Server, payloads: list[dict[str, object]], *, pids: list[int] | None = None) -> Round:
        job = Job(server.url + "/slack/interactions", payloads, concurrency=self.args.concurrency)
        others = [pid for pid in (pids or []) if pid != server.pid]
        before = sum(cpu_seconds(pid) for pid in others)
        result = self.gen.run(job, server.pid)
        endpoint = result.server_cpu
        result.server_cpu += sum(cpu_seconds(pid) for pid in others) - before
        return Round(result, endpoint_cpu=endpoint)

    def settle(self, wakes: int, pids: list[int], timeout: float = 300) -> float:
        """Wait until the Prefect stand-in has seen `wakes` resumes and the servers are idle; seconds waited."""
        started = time.monotonic()
        while self.wakes() < wakes and time.monotonic() - started < timeout:
            time.sleep(0.1)
        waited = time.monotonic() - started
        while not all(idle(pid, window=0.5) for pid in pids) and time.monotonic() - started < timeout:
            pass
        return waited

    def backend(self, backend: str) -> None:
        args = self.args
        template = load_engagement(ENGAGEMENTS_DIR / "acme-churn.yaml")
        with database(backend, "ledger") as url, database(backend, "floor") as floor_url:
            upgrade(url)
            home = Path(tempfile.mkdtemp(prefix="phasegate-bench-home-"))
            settings = Settings(home=home, database_url=url, slack_api_url=self.slack.base_url,
                                slack_bot_token=self.slack.token, slack_signing_secret=SECRET)
            rt = Runtime(settings)
            (said_before, updates_before), wakes_before = self.slack.said(), self.wakes()
            warm_gates = open_gates(rt, template, "warm", WARM_UP)
            steady_gates = open_gates(rt, template, "steady", max(1, int(args.seconds * args.rate) // 2))
            burst_gates = [open_gates(rt, template, f"burst{r}", args.burst // 2) for r in range(args.rounds)]
            floor = start(f"floor-{backend}", [PYTHON, "-m", "bench.anchors", "floor", "--url", floor_url], self.logs)
            env = endpoint_env(settings, self.prefect.url + "/api")
            ours = start(f"phasegate-{backend}", [PHASEGATE, "serve-slack", "--host", "127.0.0.1"], self.logs, env)
            workers = [start(f"followups-{backend}", FOLLOWUP_WORKER, self.logs, env)] if FOLLOWUP_WORKER else []
            deadline = time.monotonic() + REFRESHER_START
            while not children(ours.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            pids = [ours.pid, *children(ours.pid), *(w.pid for w in workers)]
            figures = Figures(backend, args.burst, args.concurrency, self.run)
            try:
                for server in (self.bare, floor, ours):  # each server's first clicks load what they use
                    urls = self.slack.response_urls(2 * WARM_UP) if server is ours else None
                    self.gen.run(Job(server.url + "/slack/interactions", clicks(warm_gates, urls), concurrency=2),
                                 server.pid)
                self.settle(wakes_before + WARM_UP, pids)
                steady_urls = self.slack.response_urls(2 * len(steady_gates))
                steady = self.gen.run(Job(ours.url + "/slack/interactions", clicks(steady_gates, steady_urls),
                                          concurrency=10, rate=args.rate), ours.pid)
                expected = wakes_before + WARM_UP + len(steady_gates)
                self.settle(expected, pids)
                for gates_of_round in burst_gates:  # both anchors before and after each of ours
                    figures.bare.append(self.burst(self.bare, clicks(gates_of_round)))
                    figures.floor.append(self.burst(floor, clicks(gates_of_round)))
                    payloads = clicks(gates_of_round, self.slack.response_urls(2 * len(gates_of_round)))
                    started = sum(cpu_seconds(pid) for pid in pids)
                    ours_round = self.burst(ours, payloads, pids=pids)
                    expected += len(gates_of_round)
                    ours_round.backlog = self.settle(expected, pids)
                    ours_round.cpu_with_followups = sum(cpu_seconds(pid) for pid in pids) - started
                    figures.ours.append(ours_round)
                figures.bare.append(self.burst(self.bare, clicks(burst_gates[-1])))
                figures.floor.append(self.burst(floor, clicks(burst_gates[-1])))
                gate_ids = [g for round_gates in burst_gates for g, _, _ in round_gates]
                counts = exactly_once(rt, gate_ids)
                said_after, updates_after = self.slack.said()
                told_not_recorded = not_recorded(said_after) - not_recorded(said_before)
                woken = self.wakes() - wakes_before
            finally:
                for server in (*workers, ours, floor):
                    server.stop()
                rt.close()
        figures.steady(steady, args.rate, args.seconds)
        figures.bursts()
        figures.exactly_once(counts, len(gate_ids), told_not_recorded, woken,
                             WARM_UP + len(steady_gates) + len(gate_ids), updates_after - updates_before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: 2 s steady, 40 clicks (a smoke run)")
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="bursts of ours, each between runs of the anchors")
    add_argument(parser)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.burst, args.concurrency, args.rounds = 2, 40, 10, 1
    run = Run("ack", quick=args.quick, results=args.results,
              sizes={"steady_seconds": args.seconds, "rate": args.rate, "burst": args.burst,
                     "concurrency": args.concurrency, "rounds": args.rounds})
    bench = Bench(args, run)
    print(f"load average before: {run.load_before}; server logs in {bench.logs}")
    try:
        for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
            bench.backend(backend)
        run.write()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
