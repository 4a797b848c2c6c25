"""RAG rules and the schedule: pure functions, with an injected clock."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from helpers import with_changes
from pydantic import ValidationError

from phasegate.configs.schema import Engagement, Phase
from phasegate.reports import rules, schedule
from phasegate.reports.model import Budget, Counts, MetricTrend, MilestoneProgress, Missing, OpenGate, WeeklyReport
from phasegate.states import Rag

NOW = dt.datetime(2026, 9, 1, 9, tzinfo=dt.UTC)


def report(**changes: object) -> WeeklyReport:
    base = WeeklyReport(engagement_id="e", name="E", week="2026-W36", generated_at=NOW, today=NOW.date(),
                        state="active", phase=Phase.POC, week_of_phase=5, planned_weeks=8, booked_weeks=8,
                        timebox_ends_on=NOW.date() + dt.timedelta(weeks=4),
                        budget=Budget(currency="EUR", poc_cap=1, change_budget=1))
    return base.model_copy(update=changes)


def gate(overdue: bool) -> OpenGate:
    return OpenGate(gate_id=1, name="e/G1", opened_at=NOW, age_days=6, quorum="all approvers", answered=[],
                    pending=["Dana Whitfield"], overdue=overdue)


def f1(value: float, previous: float | None = None) -> MetricTrend:
    return MetricTrend(name="f1", value=value, previous=previous, criterion="f1 >= 0.85", passes=value >= 0.85)


@pytest.mark.parametrize(("changes", "rag", "fired"), [
    ({}, Rag.GREEN, []),
    ({"metrics": [f1(0.9, previous=0.88)]}, Rag.GREEN, []),
    ({"metrics": [f1(0.86, previous=0.9)]}, Rag.AMBER, ["metric-worsening"]),
    ({"metrics": [f1(0.8)]}, Rag.AMBER, ["criterion-failing"]),
    ({"metrics": [f1(0.8)], "timebox_ends_on": NOW.date() + dt.timedelta(days=10)}, Rag.RED,
     ["criterion-failing-late", "criterion-failing"]),
    ({"gates": [gate(overdue=False)]}, Rag.AMBER, ["gate-waiting"]),
    ({"gates": [gate(overdue=True)]}, Rag.RED, ["gate-overdue", "gate-waiting"]),
    ({"timebox_ends_on": NOW.date() - dt.timedelta(days=1)}, Rag.RED, ["timebox-passed"]),
    ({"missing": [Missing(source="metric f1", reason="HTTP 500")]}, Rag.AMBER, ["evidence-missing"]),
    # 4 of 8 weeks used (50 %), 1 of 10 issues done (10 %): behind by more than 25 points
    ({"milestones": [MilestoneProgress(key="m", title="M", required=True, counts=Counts(done=1, to_do=9))]},
     Rag.AMBER, ["behind-plan"]),
    ({"milestones": [MilestoneProgress(key="m", title="M", required=True, counts=Counts(done=4, to_do=6))]},
     Rag.GREEN, []),
])
def test_rag_rules(changes: dict[str, object], rag: Rag, fired: list[str]) -> None:
    found, findings = rules.evaluate(report(**changes))
    assert found is rag
    assert [f.rule for f in findings] == fired
    assert all(f.reason.endswith(".") for f in findings)  # a sentence a sponsor reads


def test_every_rule_has_a_unique_key_and_a_reason() -> None:
    assert len({r.key for r in rules.RULES}) == len(rules.RULES)
    assert all(r.reason and r.rag is not Rag.GREEN for r in rules.RULES)


BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN).astimezone(dt.UTC)


def test_due_monday_0900_local_across_the_dst_change(acme: Engagement) -> None:
    # Berlin leaves summer time on Sunday 2026-10-25: 09:00 local is 07:00 UTC before, 08:00 UTC after.
    assert schedule.due_moment(acme, berlin(2026, 10, 21, 12))[1] == dt.datetime(2026, 10, 19, 7, tzinfo=dt.UTC)
    assert schedule.due_moment(acme, berlin(2026, 10, 28, 12))[1] == dt.datetime(2026, 10, 26, 8, tzinfo=dt.UTC)
    hourly = [dt.datetime(2026, 10, 26, h, tzinfo=dt.UTC) for h in range(6, 10)]  # the hourly cron's runs
    registered = berlin(2026, 10, 26, 0)  # that Monday, 00:00 local
    assert [[d.week for d in schedule.owed(acme, registered, t, set())] for t in hourly] == [[], [], ["2026-W44"], ["2026-W44"]]
    assert schedule.owed(acme, registered, hourly[-1], {"2026-W44"}) == []  # reported this week: never twice
    # Sunday late evening local is still last week: nothing due until Monday 09:00 Berlin
    assert schedule.due_moment(acme, berlin(2026, 11, 1, 23))[0] == "2026-W44"


def test_schedule_is_configurable_per_engagement(acme: Engagement) -> None:
    ny = with_changes(acme, timezone="America/New_York", weekly_status={"day": "friday", "time": "16:30"})
    week, moment = schedule.due_moment(ny, dt.datetime(2026, 3, 9, 12, tzinfo=dt.UTC))  # US DST began 03-08
    assert (week, moment) == ("2026-W11", dt.datetime(2026, 3, 13, 20, 30, tzinfo=dt.UTC))
    with pytest.raises(ValidationError):
        with_changes(acme, weekly_status={"day": "monday", "time": "9am"})
