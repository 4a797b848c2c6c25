"""bench.ack's figures: printed as they are judged, and written through bench.results.

Each burst of phasegate's is compared with the mean of the anchor runs just before and after it on the
same backend (noise from the machine's other load hits both alike); the verdict is on the median ratio
over the rounds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.load import Result
from bench.procs import CORES
from bench.results import Run

BARE = "bare endpoint, signature check only"
THROUGHPUT_RATIO, P99_RATIO, STEADY_P99 = 0.8, 1.5, 0.1  # B-ACK (b) against the floor; (a) in seconds


@dataclass
class Round:
    result: Result
    backlog: float = 0.0  # seconds from the burst's last answer until its last wake
    cpu_with_followups: float = 0.0  # server CPU seconds from the burst's start until its follow-ups were done
    endpoint_cpu: float = 0.0  # CPU seconds of the endpoint's own process (the one that answers), during the burst


def per_click(rounds: list[Round], seconds: Callable[[Round], float]) -> float:
    """Seconds (of CPU) a click over the rounds: `seconds` of each round, summed, over its clicks."""
    return sum(seconds(r) for r in rounds) / max(1, sum(len(r.result.latencies) for r in rounds))


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


@dataclass
class Figures:
    backend: str
    size: int
    concurrency: int
    run: Run
    bare: list[Round] = field(default_factory=list)
    floor: list[Round] = field(default_factory=list)
    ours: list[Round] = field(default_factory=list)

    @property
    def floor_name(self) -> str:
        return f"durable-write floor, {self.backend}"

    @property
    def title(self) -> str:
        return f"B-ACK (b) {self.backend}: burst {self.size} @ {self.concurrency}"

    def steady(self, steady: Result, rate: float, seconds: float) -> None:
        ok = steady.pct(0.99) < STEADY_P99 and not steady.errors
        print(f"{self.backend}:")
        print(f"  (a) steady {rate:g}/s for {seconds:g} s: {len(steady.latencies)} clicks, errors {steady.errors}, "
              f"median {ms(steady.median)} ms, p99 {ms(steady.pct(0.99))} ms   budget < 100 ms   "
              f"{'ok' if ok else 'MISS'}")
        self.run.figure(f"B-ACK (a) {self.backend}: steady {rate:g}/s for {seconds:g} s, p99", ms(steady.pct(0.99)),
                        "ms", target="< 100 ms, no errors", met=ok,
                        note=f"median {ms(steady.median)} ms, errors {steady.errors}")

    def bursts(self) -> None:
        rounds = len(self.ours)
        statuses: dict[int, int] = {}
        for r in self.ours:
            for status, n in r.result.statuses.items():
                statuses[status] = statuses.get(status, 0) + n
        errors = {name: sum(r.result.errors for r in runs) for name, runs in (("floor", self.floor), ("bare", self.bare))}
        print(f"  (b) burst {self.size} @ {self.concurrency}, {rounds} rounds; errors "
              f"{sum(r.result.errors for r in self.ours)} (floor {errors['floor']}, bare {errors['bare']}); "
              f"answers by HTTP status {dict(sorted(statuses.items()))} (599: no answer within the client's 30 s)")
        thr, p99, thr_bare, p99_bare = [], [], [], []
        for i, ours in enumerate(self.ours):
            o = ours.result
            floor_thr = (self.floor[i].result.throughput + self.floor[i + 1].result.throughput) / 2
            floor_p99 = (self.floor[i].result.pct(0.99) + self.floor[i + 1].result.pct(0.99)) / 2
            bare_thr = (self.bare[i].result.throughput + self.bare[i + 1].result.throughput) / 2
            bare_p99 = (self.bare[i].result.pct(0.99) + self.bare[i + 1].result.pct(0.99)) / 2
            thr.append(o.throughput / floor_thr)
            p99.append(o.pct(0.99) / floor_p99)
            thr_bare.append(o.throughput / bare_thr)
            p99_bare.append(o.pct(0.99) / bare_p99)
            print(f"    round {i + 1}: phasegate {o.throughput:6.0f}/s p99 {ms(o.pct(0.99)):7.1f} ms | floor "
                  f"{floor_thr:6.0f}/s p99 {ms(floor_p99):7.1f} ms | bare {bare_thr:6.0f}/s p99 {ms(bare_p99):6.1f} ms"
                  f" | ratio to floor: throughput {thr[-1]:5.2f} p99 {p99[-1]:5.2f} | follow-ups done "
                  f"{ours.backlog:5.1f} s after")
        cpu, floor_cpu, bare_cpu = (per_click(rounds, lambda r: r.result.server_cpu)
                                    for rounds in (self.ours, self.floor, self.bare))
        with_followups = per_click(self.ours, lambda r: r.cpu_with_followups)
        endpoint = per_click(self.ours, lambda r: r.endpoint_cpu)
        print(f"    server CPU per click: phasegate {ms(cpu)} ms answering (its endpoint's process {ms(endpoint)} ms: at most "
              f"{1 / endpoint if endpoint else 0:,.0f} clicks/s on its one core), {ms(with_followups)} ms with its follow-ups;"
              f" floor {ms(floor_cpu)} ms, bare {ms(bare_cpu)} ms")
        machine, floor_machine = (per_click(rounds, lambda r: r.result.machine_cpu) for rounds in (self.ours, self.floor))
        busy = sum(r.result.machine_cpu for r in self.floor) / sum(r.result.wall * CORES for r in self.floor)
        allowed = CORES / (THROUGHPUT_RATIO * statistics.median(r.result.throughput for r in self.floor))
        machine_note = (f"the floor's bursts kept the {CORES} cores {busy:.0%} busy; {THROUGHPUT_RATIO} × the floor's "
                        f"throughput leaves at most {ms(allowed)} ms a click with every core busy")
        print(f"    machine CPU per click (every process: servers, database, client): phasegate {ms(machine)} ms, "
              f"floor {ms(floor_machine)} ms; {machine_note}")
        thr_ratio, p99_ratio = statistics.median(thr), statistics.median(p99)
        thr_ok, p99_ok = thr_ratio >= THROUGHPUT_RATIO, p99_ratio <= P99_RATIO
        print(f"    median ratio to the floor: throughput {thr_ratio:.2f} (budget >= {THROUGHPUT_RATIO}: "
              f"{'ok' if thr_ok else 'MISS'}), p99 {p99_ratio:.2f} (budget <= {P99_RATIO}: {'ok' if p99_ok else 'MISS'});"
              f" to the bare endpoint: throughput {statistics.median(thr_bare):.3f}, p99 {statistics.median(p99_bare):.2f}")
        floor_thr_med = statistics.median(r.result.throughput for r in self.floor)
        floor_p99_med = statistics.median(r.result.pct(0.99) for r in self.floor)
        bare_thr_med = statistics.median(r.result.throughput for r in self.bare)
        bare_p99_med = statistics.median(r.result.pct(0.99) for r in self.bare)
        median = f"median of {rounds}"
        self.run.figure(f"{self.title}, throughput ({median})", round(statistics.median(r.result.throughput for r in self.ours), 1),
                        "clicks/s", anchor=(self.floor_name, round(floor_thr_med, 1)), target=f">= {THROUGHPUT_RATIO} × anchor",
                        met=thr_ok, note=f"{statistics.median(thr_bare):.3f} × the bare endpoint's")
        self.run.figure(f"{self.title}, p99 ({median})", ms(statistics.median(r.result.pct(0.99) for r in self.ours)),
                        "ms", anchor=(self.floor_name, ms(floor_p99_med)), target=f"<= {P99_RATIO} × anchor", met=p99_ok,
                        note=f"{statistics.median(p99_bare):.2f} × the bare endpoint's")
        self.run.figure(f"{self.title}, server CPU per click", ms(cpu), "ms", anchor=(self.floor_name, ms(floor_cpu)),
                        note=f"the endpoint's own process {ms(endpoint)} ms; {ms(with_followups)} ms with the follow-ups; "
                             f"bare {ms(bare_cpu)} ms; follow-ups done "
                             f"{statistics.median(r.backlog for r in self.ours):.1f} s after the burst (median)")
        self.run.figure(f"{self.title}, machine CPU per click", ms(machine), "ms", anchor=(self.floor_name, ms(floor_machine)),
                        note=f"every process, the client and the database included; {machine_note}")
        self.run.figure(f"{self.title}, {self.floor_name}: throughput", round(floor_thr_med, 1), "clicks/s",
                        anchor=(BARE, round(bare_thr_med, 1)), note=f"median of {len(self.floor)}")
        self.run.figure(f"{self.title}, {self.floor_name}: p99", ms(floor_p99_med), "ms", anchor=(BARE, ms(bare_p99_med)),
                        note=f"median of {len(self.floor)}")

    def exactly_once(self, counts: tuple[int, int, int, int], gates: int, told_not_recorded: int, woken: int,
                     all_gates: int, updates: int) -> None:
        decisions, distinct, audit, decided = counts
        sent = sum(len(r.result.latencies) for r in self.ours)
        once = decisions == distinct == audit == sent and decided == gates
        print(f"  exactly once: {decisions} decisions, {distinct} distinct (gate, approver), {audit} audit events "
              f"for {sent} burst clicks; {decided}/{gates} gates decided; {woken} runs woken for {all_gates} "
              f"decided gates; {updates} chat.update calls   {'ok' if once else 'MISS'}")
        print(f"  not recorded: {told_not_recorded} clickers told so (on the stand-in's response URLs)   "
              f"{'ok' if told_not_recorded == 0 else 'MISS'}")
        self.run.figure(f"B-ACK (b) {self.backend}: decisions recorded, exactly once", decisions, "decisions",
                        target=f"= {sent} burst clicks, each once", met=once,
                        note=f"{distinct} distinct, {audit} audit events, {decided}/{gates} gates decided, "
                             f"{woken} runs woken for {all_gates} decided gates, {updates} chat.update calls")
        self.run.figure(f"B-ACK (b) {self.backend}: clickers told \"not recorded\"", told_not_recorded, "answers",
                        target="0", met=told_not_recorded == 0, note="steady and burst clicks, counted on the Slack "
                                                                     "stand-in's response URLs")
