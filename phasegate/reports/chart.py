"""The burn-up chart as a PNG: scope and done over time; baselines, approved change requests, the
timebox end and the forecast marked; whole issues on the axis.

matplotlib is imported inside `render_png` with the Agg backend (no display, thread-safe when
each call builds its own Figure), so importing this module costs nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from phasegate.reports.forecast import CONFIDENCE
from phasegate.reports.model import BurnUp

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def render_png(data: BurnUp, path: Path, title: str) -> Path:
    """Draw `data` into `path` (parents created) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draw(data, title).savefig(path, format="png")
    return path


def draw(data: BurnUp, title: str) -> Figure:
    """The chart as a matplotlib Figure (not yet saved)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(8, 4.5), dpi=100)
    axes = figure.subplots()
    x = [_day(d) for d in data.dates]
    axes.plot(x, data.scope, label="scope", color="#555555", linestyle="--", marker="o")
    axes.plot(x, data.done, label="done", color="#2e7d32", marker="o")
    marks = [(day, f"baseline v{version}", "#1565c0") for day, version in data.baselines]
    marks += [(day, f"{name} approved", "#6a1b9a") for day, name in data.changes]
    if data.timebox_end is not None:
        marks.append((data.timebox_end, "timebox end", "#c62828"))
    if data.forecast_on is not None and data.scope:
        marks.append((data.forecast_on, f"forecast ({round(CONFIDENCE * 100)} % likely)", "#ef6c00"))
        axes.plot([x[-1], _day(data.forecast_on)], [data.done[-1], data.scope[-1]], color="#ef6c00", linestyle=":")
    labels: dict[dt.date, list[str]] = {}
    for day, label, colour in marks:
        axes.axvline(_day(day), color=colour, linewidth=0.9, linestyle=":" if colour != "#c62828" else "-")
        labels.setdefault(day, []).append(label)
    for day, said in labels.items():  # one label per day, along the line from the top
        axes.annotate(" · ".join(said), (_day(day), 0.98), xycoords=axes.get_xaxis_transform(), rotation=90,
                      fontsize=7, va="top", ha="right", color="#333333")
    first, last = window(data)
    axes.set_xlim(_day(first), _day(last))
    axes.xaxis_date()
    axes.set_title(title)
    axes.set_ylabel(data.unit)
    axes.set_ylim(bottom=0, top=max([*data.scope, *data.done, 1.0]) * 1.1)
    if data.unit == "issues":
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(loc="lower right")
    figure.autofmt_xdate()
    return figure


def window(data: BurnUp) -> tuple[dt.date, dt.date]:
    """The dates shown: from the phase's first point to the last thing marked (timebox end, forecast;
    at most half a year past today), a few days either side; at least two weeks wide, so that one
    point is not spread over years."""
    first = data.dates[0]
    days = [*data.dates, *(d for d, _ in data.baselines), *(d for d, _ in data.changes)]
    days += [d for d in (data.timebox_end, data.forecast_on) if d is not None]
    last = min(max(days), data.dates[-1] + dt.timedelta(weeks=26))  # a forecast far off is said, not drawn
    if (last - first).days < 14:
        last = first + dt.timedelta(days=14)
    return first - dt.timedelta(days=2), last + dt.timedelta(days=3)


def _day(day: dt.date) -> float:
    """matplotlib's date number (days since its default epoch, 1970-01-01)."""
    return float((day - dt.date(1970, 1, 1)).days)
