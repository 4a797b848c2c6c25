"""Each benchmark's figures, and its anchors', written to a JSON file that `python -m bench.report`
turns into the table docs/performance.md shows: the figures are generated, not typed.

    run = Run("ack", quick=args.quick, results=args.results)   # the load average noted now ...
    run.figure("B-ACK (a) sqlite: steady p99", 28.2, "ms", target="< 100 ms", met=True)
    run.figure("B-ACK (b) sqlite: burst throughput", 95, "/s", anchor=("bare endpoint", 782), target=">= 1.0 x")
    run.write()                                                # ... and again here, with the figures

A figure with an anchor carries the ratio (figure / anchor), so a reader never divides by hand.
A quick run (`--quick`, tiny sizes) is marked so; the report says so beside its figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help=f"directory for this run's JSON figures (default {RESULTS})")


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=RESULTS.parent, capture_output=True,
                          text=True, check=False)
    return done.stdout.strip() or None


class Run:
    """One benchmark run's figures; `write()` puts them in `<results>/<name>.json`."""

    def __init__(self, name: str, *, quick: bool, results: Path = RESULTS, sizes: dict[str, Any] | None = None) -> None:
        self.name, self.quick, self.results = name, quick, results
        self.sizes = dict(sizes or {})
        self.started = dt.datetime.now(dt.UTC)
        self.load_before = load()
        self.figures: list[dict[str, Any]] = []

    def figure(self, budget: str, value: float, unit: str, *, anchor: tuple[str, float] | None = None,
               target: str = "", met: bool | None = None, note: str = "") -> None:
        """One measured figure; `anchor` is (what, its figure in the same unit) measured in the same run."""
        entry: dict[str, Any] = {"budget": budget, "value": value, "unit": unit, "target": target, "met": met,
                                 "note": note}
        if anchor is not None:
            entry["anchor"] = {"name": anchor[0], "value": anchor[1]}
            entry["ratio"] = round(value / anchor[1], 3) if anchor[1] else None
        self.figures.append(entry)

    def write(self) -> Path:
        self.results.mkdir(parents=True, exist_ok=True)
        path = self.results / f"{self.name}.json"
        data = {"bench": self.name, "quick": self.quick, "sizes": self.sizes, "argv": sys.argv[1:],
                "started": self.started.isoformat(timespec="seconds"),
                "ended": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "load_before": self.load_before, "load_after": load(), "cores": os.cpu_count(),
                "python": platform.python_version(), "commit": commit(), "figures": self.figures}
        path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"figures written to {path}")
        return path
