"""Smoke runs of the benchmarks with tiny sizes: each command runs from the repository as the README
says and prints its table. Nothing here is timed; the one property checked on the figures is
B-ACK's exactly-once count, which must hold at any size."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bench_ack_quick(backend: str) -> None:
    printed = bench("bench.ack", "--quick", "--backend", backend)
    assert f"{backend}:" in printed and "(a) steady" in printed and "median ratio" in printed
    once = next(line for line in printed.splitlines() if "exactly once" in line)
    assert "40 decisions, 40 distinct" in once and "20/20 gates decided" in once and once.endswith("ok")


def test_bench_ledger_quick() -> None:
    printed = bench("bench.ledger", "--quick")
    for view in ("status (default", "status --all", "engagement list"):
        verdict = next(line for line in printed.splitlines() if line.strip().startswith(view) and "queries" in line)
        before, after = re.search(r"queries (\d+) -> (\d+)", verdict).groups()  # type: ignore[union-attr]
        assert before == after, verdict  # the query count does not grow with the number of engagements


def test_bench_cli_quick() -> None:
    printed = bench("bench.cli", "--quick")
    for name in ("import prefect", "phasegate --help", "phasegate status", "phasegate gate list",
                 "phasegate engagement list"):
        assert any(line.startswith(name) for line in printed.splitlines()), name


def test_bench_resume_quick() -> None:
    printed = bench("bench.resume", "--quick")
    lines = printed.splitlines()
    for name in ("bare suspend/resume: resume -> task", "phasegate: click -> next task",
                 "phasegate: click -> next kickoff"):
        assert any(line.startswith(name) for line in lines), name
    assert any(line.startswith("click -> next phase's kickoff: median") for line in lines)
