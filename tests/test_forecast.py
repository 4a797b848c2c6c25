"""The burn-up chart a sponsor can read, and the forecast from the team's own throughput.

Before: one point spread the date axis from 2024 to 2030, issue counts had fractional ticks, approved
change requests were not marked, and nothing said when the work was likely to be done.
"""

from __future__ import annotations

import datetime as dt

from helpers import posted_gate
from hypothesis import given, settings
from hypothesis import strategies as st

from phasegate.configs.schema import Engagement
from phasegate.ledger.models import utcnow
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import chart, collect, forecast, progress, render
from phasegate.reports.model import BurnUp
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin

START = dt.date(2026, 9, 7)  # a Monday


def weekly(done: list[float], scope: float, **extra: object) -> BurnUp:
    dates = [START + dt.timedelta(weeks=n) for n in range(len(done))]
    return BurnUp(unit="issues", dates=dates, scope=[scope] * len(done), done=done, **extra)  # type: ignore[arg-type]


def test_a_steady_team_is_forecast_from_its_own_pace() -> None:
    data = weekly([0, 4, 8, 12, 16], 40)  # 4 a week, 24 left: six more weeks
    today = data.dates[-1]
    f = forecast.forecast(data, today=today, seed="acme/2026-W41")
    assert f.done_by == today + dt.timedelta(weeks=6) and f.remaining == 24 and f.weeks_sampled == 4
    line = forecast.sentence(f, dt.date(2026, 11, 2))
    assert line.startswith("85 % likely done by 16 Nov 2026 (after the timebox); timebox ends 02 Nov 2026")
    assert "24 issues left" in line


def test_an_uneven_team_is_forecast_by_the_85th_percentile() -> None:
    data = weekly([0, 10, 10, 10, 20], 40)  # weeks of 10, 0, 0, 10: 20 left
    f = forecast.forecast(data, today=data.dates[-1], seed="s")
    # each future week finishes 10 or nothing, half and half, and two tens are needed: 69 % of futures
    # have them within 4 weeks, 81 % within 5, 89 % within 6, so 85 % likely takes 6
    assert f.done_by == data.dates[-1] + dt.timedelta(weeks=6)
    assert forecast.forecast(data, today=data.dates[-1], seed="s") == f  # the same report says the same thing


def test_no_forecast_without_throughput_and_the_reason_is_said() -> None:
    assert forecast.forecast(weekly([0, 3], 10), today=START, seed="s").reason == \
        "fewer than 2 full weeks of work to forecast from"
    stalled = forecast.forecast(weekly([0, 0, 0, 0], 10), today=START, seed="s")
    assert stalled.done_by is None and "nothing finished in 3 weeks" in forecast.sentence(stalled, None)
    done = forecast.forecast(weekly([0, 5, 10], 10), today=START, seed="s")
    assert forecast.sentence(done, None) == "Everything in scope is done."
    crawl = forecast.forecast(weekly([0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 10_000), today=START, seed="s")
    assert crawl.done_by is None and crawl.reason == "at the pace so far, not done within 5 years"


def test_a_partial_last_week_is_not_counted_as_a_week() -> None:
    data = weekly([0, 4, 8], 20)
    data.dates.append(data.dates[-1] + dt.timedelta(days=2))
    data.done.append(9)
    data.scope.append(20)
    assert forecast.weekly_throughput(data) == [4, 4]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=3, max_size=20), st.integers(0, 200))
def test_the_forecast_is_never_before_today_and_says_why_when_it_has_no_date(rises: list[int], more: int) -> None:
    done = [float(sum(rises[:n])) for n in range(len(rises) + 1)]
    data = weekly(done, done[-1] + more)
    today = data.dates[-1]
    f = forecast.forecast(data, today=today, seed="p", runs=200)
    assert (f.done_by is None) == (f.reason is not None)  # a date, or why there is none
    assert f.remaining == more
    assert f.done_by is None or f.done_by >= today
    if more and f.done_by is not None:
        assert f.done_by > today


def test_one_point_is_shown_over_two_weeks_not_years_with_whole_issues() -> None:
    one = BurnUp(unit="issues", dates=[START], scope=[3], done=[1])
    first, last = chart.window(one)
    assert first == START - dt.timedelta(days=2) and last == START + dt.timedelta(days=17)
    axes = chart.draw(one, "one point").axes[0]
    assert [tick for tick in axes.get_yticks() if tick != int(tick)] == []
    low, high = axes.get_xlim()
    assert high - low == 19


def test_the_chart_marks_baselines_approved_changes_the_timebox_and_the_forecast() -> None:
    data = weekly([0, 4, 8], 20, baselines=[(START, 1), (START + dt.timedelta(days=9), 2)],
                  changes=[(START + dt.timedelta(days=9), "CR-1")], timebox_end=START + dt.timedelta(weeks=4),
                  forecast_on=START + dt.timedelta(weeks=5))
    axes = chart.draw(data, "marks").axes[0]
    labels = [text.get_text() for text in axes.texts]
    assert labels == ["baseline v1", "baseline v2 · CR-1 approved", "timebox end", "forecast (85 % likely)"]
    low, high = axes.get_xlim()
    assert high == chart._day(START + dt.timedelta(weeks=5, days=3))
    far = data.model_copy(update={"forecast_on": START + dt.timedelta(weeks=300)})
    assert chart.window(far)[1] == data.dates[-1] + dt.timedelta(weeks=26, days=3)  # said in words, not drawn


def test_the_burn_up_from_jira_dates_feeds_the_forecast() -> None:
    utc = dt.UTC
    issues = [progress.Issue(f"A-{n}", "Done" if n < 6 else "To Do", "done" if n < 6 else "new", None,
                             dt.datetime(2026, 9, 1, tzinfo=utc),
                             dt.datetime(2026, 9, 8 + 7 * (n // 2), tzinfo=utc) if n < 6 else None) for n in range(10)]
    data = progress.burnup(issues, start=START, today=START + dt.timedelta(weeks=3), tz=utc, baselines=[],
                           timebox_end=None)
    assert data.done == [0, 2, 4, 6] and data.scope == [10, 10, 10, 10]
    f = forecast.forecast(data, today=START + dt.timedelta(weeks=3), seed="s")
    assert f.done_by == START + dt.timedelta(weeks=5)


def test_approved_change_requests_are_marked_on_the_day_they_were_decided() -> None:
    from zoneinfo import ZoneInfo

    from phasegate.ledger.models import ChangeRequestRow
    from phasegate.reports.build import approved_changes
    from phasegate.states import ChangeRequestState

    late = dt.datetime(2026, 9, 14, 23, 30, tzinfo=dt.UTC)  # the 15th in Berlin
    rows = [ChangeRequestRow(number=1, state=ChangeRequestState.REJECTED, decided_at=late),
            ChangeRequestRow(number=2, state=ChangeRequestState.APPROVED, decided_at=late),
            ChangeRequestRow(number=3, state=ChangeRequestState.ASSESSED, decided_at=None)]
    assert approved_changes(rows, ZoneInfo("Europe/Berlin")) == [(dt.date(2026, 9, 15), "CR-2")]


def test_the_weekly_report_says_when_the_work_is_likely_done(rt: Runtime, acme: Engagement, jira: JiraStandin,
                                                              slack: SlackStandin) -> None:
    posted_gate(rt, acme)  # the PoC began on the engagement's start date; its three milestone issues
    started = dt.datetime.combine(acme.start_date, dt.time(9), dt.UTC)
    for n, key in enumerate(["ACME-1", "ACME-2"], start=1):  # finished in its first two weeks
        jira.set_status(key, "Done", done=True)
        jira.backdate(key, created=started, resolved=started + dt.timedelta(weeks=n, days=-1))
    jira.backdate("ACME-3", created=started)
    (report,) = collect.collect(rt, ["acme-churn"], utcnow()).reports
    assert report.burnup is not None and report.burnup.scope[0] == 3 and report.burnup.done[:3] == [0, 1, 2]
    assert report.forecast is not None and report.forecast.remaining == 1
    assert report.forecast.done_by is not None and report.forecast.done_by > report.today
    assert report.burnup.forecast_on == report.forecast.done_by
    plan = dict(render.sections(report))["Plan"]
    assert plan[-1].startswith(f"85 % likely done by {report.forecast.done_by:%d %b %Y}")
    assert "; 1 issue left, forecast from the team's throughput in its " in plan[-1]
