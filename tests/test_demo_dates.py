"""The demo runs the same on any day: its engagements are moved in time around today's date, so their
gates open at the PM's review on the scripted work, not at once because a timebox ended on the calendar."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from phasegate.configs.loader import engagement_files, load_engagement
from phasegate.configs.schema import Phase
from phasegate.sandbox.world import demo_engagements

WRITTEN = {e.id: e for e in (load_engagement(path) for path in engagement_files())}


@settings(max_examples=10, deadline=None)
@given(st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2035, 12, 31)))
def test_today_falls_in_acme_churns_sixth_poc_week_and_everything_moves_alike(today: dt.date) -> None:
    moved = demo_engagements(today)
    acme = moved["acme-churn"]
    assert acme.start_date.weekday() == 0 and (today - acme.start_date).days // 7 + 1 == 6
    assert today < acme.start_date + dt.timedelta(weeks=acme.phases.of(Phase.POC).planned_weeks)  # the PoC is open
    shift = acme.start_date - WRITTEN["acme-churn"].start_date
    for engagement_id, engagement in moved.items():
        before = WRITTEN[engagement_id]
        assert engagement.start_date - before.start_date == shift  # the two keep their distance
        if before.data_handling is not None:
            assert engagement.data_handling is not None
            assert engagement.data_handling.deletion_deadline - before.data_handling.deletion_deadline == shift
        assert engagement.model_copy(update={"start_date": before.start_date, "data_handling": before.data_handling}) == before
