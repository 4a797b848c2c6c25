"""The table docs/performance.md shows, from the benchmarks' JSON figures (bench/results.py).

    .venv/bin/python -m bench.report                     # bench/results/*.json
    .venv/bin/python -m bench.report --results DIR
    .venv/bin/python -m bench.report --write docs/performance.md   # the table between its markers, replaced

One row per figure: what was measured, the figure, its anchor from the same run and the ratio, the
target and whether it was met, and the run's load average (before → after) and date; a quick run
(tiny sizes) is marked so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.results import RESULTS

BEGIN, END = "<!-- bench.report -->", "<!-- /bench.report -->"  # where --write puts the table in a page
HEADER = "| budget | measured | anchor (same run) | ratio | target | verdict | load | run |"


def number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def row(run: dict[str, Any], figure: dict[str, Any]) -> str:
    anchor = figure.get("anchor")
    anchored = f"{anchor['name']}: {number(anchor['value'])} {figure['unit']}" if anchor else ""
    ratio = f"{figure['ratio']:.2f} ×" if figure.get("ratio") is not None else ""
    verdict = {True: "met", False: "**missed**", None: ""}[figure.get("met")]
    load = f"{run['load_before'][0]:.1f} → {run['load_after'][0]:.1f}"
    when = run["started"][:10] + (" quick" if run.get("quick") else "")
    measured = f"{number(figure['value'])} {figure['unit']}" + (f" ({figure['note']})" if figure.get("note") else "")
    return (f"| {figure['budget']} | {measured} | {anchored} | {ratio} | {figure.get('target', '')} | {verdict} "
            f"| {load} | {run['bench']} {when} |")


def table(results: Path) -> list[str]:
    runs = [json.loads(path.read_text()) for path in sorted(results.glob("*.json"))]
    lines = [HEADER, "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        lines.extend(row(run, figure) for figure in run["figures"])
    return lines


def embedded(page: str) -> str:
    """The table a page holds between BEGIN and END (stripped)."""
    start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
    return page[start:end].strip()


def written(page: str, lines: list[str]) -> str:
    """`page` with the table between its markers replaced by `lines`."""
    start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
    return page[:start] + "\n" + "\n".join(lines) + "\n" + page[end:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--write", type=Path, metavar="PAGE", help=f"replace the table between {BEGIN} and {END} in PAGE")
    args = parser.parse_args()
    if not any(args.results.glob("*.json")):
        sys.exit(f"no benchmark figures in {args.results}: run a benchmark first (python -m bench.ack --quick)")
    lines = table(args.results)
    if args.write is None:
        print("\n".join(lines))
        return
    page = args.write.read_text()
    if BEGIN not in page or END not in page:
        sys.exit(f"{args.write} has no {BEGIN} ... {END} block for the table")
    args.write.write_text(written(page, lines))
    print(f"{args.write}: {len(lines) - 2} figures written")


if __name__ == "__main__":
    main()
