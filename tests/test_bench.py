"""Smoke runs of the benchmarks with tiny sizes: each command runs from the repository as the README
says and prints its table. Nothing here is timed; the one property checked on the figures is
B-ACK's exactly-once count, which must hold at any size."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prefect_seed import seed

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bench_ack_quick(backend: str, tmp_path: Path) -> None:
    printed = bench("bench.ack", "--quick", "--backend", backend, "--results", str(tmp_path))
    assert f"{backend}:" in printed and "(a) steady" in printed and "median ratio" in printed
    once = next(line for line in printed.splitlines() if "exactly once" in line)
    assert "40 decisions, 40 distinct" in once and "20/20 gates decided" in once and once.endswith("ok")
    assert "43 runs woken for 43 decided gates" in once  # through the Prefect stand-in: warm-up, steady, burst
    told = next(line for line in printed.splitlines() if line.strip().startswith("not recorded:"))
    assert told.strip().startswith("not recorded: 0 clickers") and told.endswith("ok")
    figures = {figure["budget"]: figure for figure in json.loads((tmp_path / "ack.json").read_text())["figures"]}
    assert figures[f"B-ACK (b) {backend}: decisions recorded, exactly once"]["met"] is True
    floor = f"durable-write floor, {backend}"
    for measured in ("throughput (median of 1)", "p99 (median of 1)", "server CPU per click"):
        figure = figures[f"B-ACK (b) {backend}: burst 40 @ 10, {measured}"]
        assert figure["anchor"]["name"] == floor, figure
        # a ratio to the floor's, except CPU when 40 clicks cost the floor less than one clock tick
        assert figure["ratio"] > 0 if measured != "server CPU per click" else figure["ratio"] is None or figure["ratio"] > 0
    anchor = figures[f"B-ACK (b) {backend}: burst 40 @ 10, {floor}: throughput"]
    assert anchor["anchor"]["name"] == "bare endpoint, signature check only" and anchor["ratio"] > 0


def test_bench_answer_quick(tmp_path: Path) -> None:
    """Every answer recorded once and every redelivery recognised (the bench raises otherwise)."""
    printed = bench("bench.answer", "--quick", "--backend", "sqlite", "--results", str(tmp_path))
    assert "sqlite: CPU per answer" in printed and "sqlite: CPU per redelivery" in printed
    written = json.loads((tmp_path / "answer.json").read_text())
    assert written["quick"] and [f["budget"] for f in written["figures"]] == [
        "answer path sqlite: CPU per answer", "answer path sqlite: wall per answer",
        "answer path sqlite: CPU per redelivery", "answer path sqlite: CPU per answer in groups of 50"]


def test_bench_ledger_quick(tmp_path: Path) -> None:
    printed = bench("bench.ledger", "--quick", "--results", str(tmp_path))
    for view in ("status (default", "status --all", "engagement list"):
        verdict = next(line for line in printed.splitlines() if line.strip().startswith(view) and "queries" in line)
        before, after = re.search(r"queries (\d+) -> (\d+)", verdict).groups()  # type: ignore[union-attr]
        assert before == after, verdict  # the query count does not grow with the number of engagements
    written = json.loads((tmp_path / "ledger.json").read_text())
    assert written["quick"] and len(written["load_before"]) == len(written["load_after"]) == 3
    figures = {figure["budget"]: figure for figure in written["figures"]}
    status_all = figures["B-LEDGER status --all, 30 engagements"]
    assert status_all["anchor"]["name"] == "the same view at 10 engagements"
    assert status_all["ratio"] == round(status_all["value"] / status_all["anchor"]["value"], 3)
    table = bench("bench.report", "--results", str(tmp_path)).splitlines()
    assert table[0].startswith("| budget | measured | anchor (same run) | ratio |")
    rows = [line for line in table if line.startswith("| B-LEDGER status --all, 30 engagements |")]
    assert len(rows) == 1 and f"{status_all['ratio']:.2f} ×" in rows[0] and "ledger " in rows[0] and "quick" in rows[0]
    assert len(table) == 2 + len(written["figures"])  # the header, its rule, one row per figure


def test_bench_report_without_figures_says_so(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench.report", "--results", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "no benchmark figures" in done.stderr


def test_bench_cli_quick(tmp_path: Path) -> None:
    printed = bench("bench.cli", "--quick", "--status-all", "5", "--results", str(tmp_path))
    for name in ("import prefect", "phasegate --help", "phasegate status", "phasegate gate list",
                 "phasegate engagement list"):
        assert any(line.startswith(name) for line in printed.splitlines()), name
    figures = {f["budget"]: f for f in json.loads((tmp_path / "cli.json").read_text())["figures"]}
    assert figures["B-CLI: phasegate gate list"]["anchor"]["name"] == "import prefect"
    assert figures["B-CLI: phasegate gate list"]["ratio"] > 0
    assert figures["`status --all` at 5 engagements, as a command"]["value"] > 0


def test_bench_resume_quick(tmp_path: Path) -> None:
    seed(tmp_path / "home" / "prefect")  # its Prefect server starts from a migrated database (tests/prefect_seed.py)
    printed = bench("bench.resume", "--quick", "--results", str(tmp_path),  # not into the repository's bench/results
                    "--home", str(tmp_path / "home"))
    lines = printed.splitlines()
    for name in ("bare suspend/resume: resume -> task", "phasegate: click -> next task",
                 "phasegate: click -> next kickoff"):
        assert any(line.startswith(name) for line in lines), name
    assert any(line.startswith("click -> next phase's kickoff: median") for line in lines)
