"""Reading a gate's evidence again after a passing outage, before it is frozen.

Why: `evidence.collect` turns every unreadable source into missing evidence, which is right
for the snapshot but wrong for a single 503: frozen into the gate, it would stay missing for
that gate revision although Jira answered a second later. So the sources are watched while
they are read; if any failed with ServiceUnavailable, the whole set is read again (a snapshot
is one moment, not a patchwork), after the Retry-After the service asked for or a fixed
wait, at most `attempts` times. Only then is "missing" frozen, with a warning saying so. A
Retry-After beyond `max_wait` is not waited for: the task would hold a worker for nothing.

    snapshot = collect_with_retries(read, attempts=3, wait=10.0, max_wait=120.0, sleep=time.sleep)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from phasegate.errors import ServiceUnavailable
from phasegate.rules.evidence import MetricReader, Snapshot, Tracker

Outages = list[ServiceUnavailable]
T = TypeVar("T")


class WatchedTracker:
    """A tracker that notes each passing outage before evidence.collect turns it into missing evidence."""

    def __init__(self, tracker: Tracker, outages: Outages) -> None:
        self._tracker, self._outages = tracker, outages

    def get(self, key: str) -> Any:
        return self._noted(self._tracker.get, key)

    def search(self, jql: str) -> list[Any]:
        result: list[Any] = self._noted(self._tracker.search, jql)
        return result

    def field_value(self, key: str, field: str) -> object:
        return self._noted(self._tracker.field_value, key, field)

    def _noted(self, call: Callable[..., Any], *args: str) -> Any:
        try:
            return call(*args)
        except ServiceUnavailable as exc:
            self._outages.append(exc)
            raise


def watched_reader(read_json: MetricReader, outages: Outages) -> MetricReader:
    """`read_json`, noting each passing outage the same way."""
    def read(url: str, path: str) -> tuple[float, Any]:
        try:
            return read_json(url, path)
        except ServiceUnavailable as exc:
            outages.append(exc)
            raise
    return read


def reread(read: Callable[[Outages], T], *, attempts: int, wait: float, max_wait: float,
           sleep: Callable[[float], None]) -> tuple[T, str | None]:
    """The first result `read` makes without a passing outage, else the last one with a warning
    saying how often it was read and why it stopped. `read(outages)` reads once and appends every
    ServiceUnavailable it met to `outages` (a gate's snapshot, a weekly report)."""
    if attempts < 1:
        raise ValueError("evidence needs at least one read")
    for attempt in range(1, attempts + 1):
        outages: Outages = []
        result = read(outages)
        if not outages:
            return result, None
        asked = [o.retry_after for o in outages if o.retry_after is not None]
        pause = max(asked) if asked else wait
        if attempt == attempts or pause > max_wait:
            break
        sleep(pause)
    why = "the budget" if attempt == attempts else f"a wait of {pause:g} s was asked for (limit {max_wait:g} s)"
    return result, (f"evidence read {attempt} time{'s' if attempt > 1 else ''}; still unavailable after {why}, "
                    f"frozen as missing: {outages[0]}")


def collect_with_retries(read: Callable[[Outages], Snapshot], *, attempts: int, wait: float, max_wait: float,
                         sleep: Callable[[float], None]) -> Snapshot:
    """The first snapshot `read` makes without a passing outage, else the last one, with a warning.

    `read(outages)` collects once and appends every ServiceUnavailable it met to `outages`.
    """
    snapshot, warning = reread(read, attempts=attempts, wait=wait, max_wait=max_wait, sleep=sleep)
    if warning is not None:
        snapshot.warnings.append(warning)
    return snapshot
