"""When will the work be done? A Monte Carlo forecast from the team's own weekly throughput.

The practice guide asks for status in terms a sponsor can act on; "85 % likely done by 14 Oct,
timebox ends 5 Oct" is such a sentence. It is drawn from what the team has actually finished week by
week (the burn-up's done line), not from an estimate: each simulated future repeats weeks drawn at
random from the weeks already worked, until the remaining scope is done. The random draws are seeded
from the engagement and the week, so the same report always says the same thing.

No forecast is made from fewer than `MIN_WEEKS` full weeks, nor when nothing has been finished yet;
the reason is said instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random

from phasegate.reports.model import BurnUp, Forecast

CONFIDENCE = 0.85
MIN_WEEKS = 2
RUNS = 2000
HORIZON_WEEKS = 260  # a simulated future longer than five years is "not in sight"


def weekly_throughput(data: BurnUp) -> list[float]:
    """What was finished in each full week: the done line's rise between consecutive weekly points
    (the last point is `today`, which may end a partial week: left out)."""
    points = list(zip(data.dates, data.done, strict=True))
    full = [(day, done) for n, (day, done) in enumerate(points) if n == 0 or (day - points[0][0]).days % 7 == 0]
    return [max(0.0, later - earlier) for (_, earlier), (_, later) in zip(full, full[1:], strict=False)]


def forecast(data: BurnUp, *, today: dt.date, seed: str, confidence: float = CONFIDENCE, runs: int = RUNS) -> Forecast:
    remaining = max(0.0, (data.scope[-1] if data.scope else 0.0) - (data.done[-1] if data.done else 0.0))
    weeks = weekly_throughput(data)
    base = Forecast(confidence=confidence, remaining=remaining, unit=data.unit, weeks_sampled=len(weeks))
    if remaining == 0:
        return base.model_copy(update={"done_by": today})
    if len(weeks) < MIN_WEEKS:
        return base.model_copy(update={"reason": f"fewer than {MIN_WEEKS} full weeks of work to forecast from"})
    if not any(weeks):
        return base.model_copy(update={"reason": f"nothing finished in {len(weeks)} weeks: no throughput to forecast from"})
    rng = random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))
    needed = sorted(_weeks_to_finish(remaining, weeks, rng) for _ in range(runs))
    weeks_at = needed[min(runs - 1, int(confidence * runs))]
    if weeks_at > HORIZON_WEEKS:
        return base.model_copy(update={"reason": f"at the pace so far, not done within {HORIZON_WEEKS // 52} years"})
    return base.model_copy(update={"done_by": today + dt.timedelta(weeks=weeks_at)})


def _weeks_to_finish(remaining: float, weeks: list[float], rng: random.Random) -> int:
    done, count = 0.0, 0
    while done < remaining and count <= HORIZON_WEEKS:
        done += rng.choice(weeks)
        count += 1
    return count


def sentence(f: Forecast, timebox_end: dt.date | None) -> str:
    """The forecast as the report says it."""
    end = f"; timebox ends {timebox_end:%d %b %Y}" if timebox_end else ""
    if f.done_by is None:
        return f"No forecast: {f.reason}{end}."
    if f.remaining == 0:
        return f"Everything in scope is done{end}."
    late = " (after the timebox)" if timebox_end and f.done_by > timebox_end else ""
    unit = f.unit[:-1] if f.remaining == 1 and f.unit.endswith("s") else f.unit
    return (f"{round(f.confidence * 100)} % likely done by {f.done_by:%d %b %Y}{late}{end}; {f.remaining:g} {unit} "
            f"left, forecast from the team's throughput in its {f.weeks_sampled} weeks so far.")
