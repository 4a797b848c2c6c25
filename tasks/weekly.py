"""Tasks of the weekly status flow: thin wrappers over `phasegate.reports`, plus Prefect artifacts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from phasegate.orchestration.runtime import Runtime
from phasegate.reports import collect, render
from phasegate.reports.deliver import Delivery
from phasegate.reports.model import WeeklyReport
from phasegate.reports.schedule import Due
from phasegate.tasks import ledger_task, outside_task


@ledger_task
def due_engagements(rt: Runtime, now: dt.datetime, only: list[str] | None, force: bool) -> dict[str, list[Due]]:
    """Active engagements -> the weeks whose report time has passed with no post in Slack yet (a
    refused post, a killed run and an outage leave the week owed), oldest first."""
    return collect.due(rt, now, only, force=force)


@ledger_task
def collect_reports(rt: Runtime, due: Mapping[str, Sequence[Due]], now: dt.datetime) -> collect.Collected:
    """Every report, built concurrently within `weekly_concurrency`; failing sources are inside each report."""
    return collect.collect(rt, due, now)


@outside_task
def deliver_reports(rt: Runtime, reports: list[WeeklyReport], post: bool) -> tuple[list[Delivery], dict[str, str]]:
    """Record, post once per week and upload each chart; safe to retry (the ledger holds the posts)."""
    return collect.deliver_all(rt, reports, post=post)


def artifact_key(engagement_id: str) -> str:
    """`weekly-<engagement>`: Prefect keys allow lowercase letters, digits and dashes."""
    return "weekly-" + "".join(c if c.isalnum() else "-" for c in engagement_id.lower())


@ledger_task
def save_artifacts(report: WeeklyReport) -> None:
    """The markdown report and its table, keyed per engagement so the UI keeps their history."""
    key = artifact_key(report.engagement_id)
    create_markdown_artifact(key=key, markdown=render.markdown(report), description=render.headline(report))
    create_table_artifact(key=f"{key}-table", table=render.table(report), description=render.headline(report))


@outside_task
def post_digest(rt: Runtime, now: dt.datetime) -> str | None:
    posted = collect.post_digest(rt, now)
    return posted[0] if posted else None
