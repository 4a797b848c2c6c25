"""The burn-up chart as a PNG: scope and done over time, baseline changes marked, the timebox end.

matplotlib is imported inside `render_png` with the Agg backend (no display, thread-safe when
each call builds its own Figure), so importing this module costs nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from phasegate.reports.model import BurnUp


def render_png(data: BurnUp, path: Path, title: str) -> Path:
    """Draw `data` into `path` (parents created) and return it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), dpi=100)
    axes = figure.subplots()
    x = [_day(d) for d in data.dates]
    axes.plot(x, data.scope, label="scope", color="#555555", linestyle="--", marker="o")
    axes.plot(x, data.done, label="done", color="#2e7d32", marker="o")
    for day, version in data.baselines:
        axes.axvline(_day(day), color="#1565c0", linewidth=0.8, linestyle=":")
        axes.annotate(f"baseline v{version}", (_day(day), 0), rotation=90, fontsize=7, va="bottom")
    if data.timebox_end is not None:
        end = _day(data.timebox_end)
        axes.axvline(end, color="#c62828", linewidth=1.2)
        axes.annotate("timebox end", (end, 0), rotation=90, fontsize=7, va="bottom", color="#c62828")
    axes.xaxis_date()
    axes.set_title(title)
    axes.set_ylabel(data.unit)
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper left")
    figure.autofmt_xdate()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _day(day: dt.date) -> float:
    """matplotlib's date number (days since its default epoch, 1970-01-01)."""
    return float((day - dt.date(1970, 1, 1)).days)
