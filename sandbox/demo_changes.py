"""The demo's change requests, scope drift and weekly reports (see sandbox/demo.py).

During acme-churn's PoC the vendor files a second model under the baseline-model milestone in
Jira: phasegate flags it as scope drift; a change request drafted from the drift (a week more,
12,000 EUR) is approved in Slack and moves the PoC timebox, after which the drift is gone. A
second request (a real-time scoring API in the PoC) is rejected with a reason. Each engagement
gets its weekly report from the served weekly-status deployment while it is still running.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from sqlalchemy import select

from phasegate.changes import operations as cr_operations
from phasegate.configs.schema import Phase
from phasegate.ledger import change_requests as crs
from phasegate.ledger import engagements
from phasegate.ledger.db import transaction
from phasegate.ledger.models import ChangeRequestRow, WeeklyReportRow
from phasegate.orchestration.names import WEEKLY_DEPLOYMENT_NAME, WEEKLY_FLOW
from phasegate.rules import drift
from phasegate.rules.change_requests import Draft
from phasegate.sandbox.world import Demo, wait_for
from phasegate.states import ChangeSource, ReportKind

PM, SPONSOR, VENDOR_LEAD, TECH_LEAD = "U0PMACME01", "U0SPONSOR1", "U0VENDLEAD", "U0TECHLEAD"


def _request(demo: Demo, engagement_id: str, number: int, ready: Any, what: str) -> ChangeRequestRow:
    def probe() -> ChangeRequestRow | None:
        with transaction(demo.rt.sessions) as session:
            row = crs.by_number(session, engagement_id, number)
            return row if ready(row) else None
    found: ChangeRequestRow = wait_for(what, probe)
    return found


def _answer(demo: Demo, cr: ChangeRequestRow, user: str, answer: str, reason: str = "") -> None:
    """A click on the request's Approve or Reject button (Reject: the reason modal, then submit)."""
    clicker = demo.user(user)
    if cr.message_ts is None:
        raise ValueError(f"{cr.name} has no prompt to click on")
    channel, ts = cr.channel, cr.message_ts

    def payload() -> dict[str, Any]:
        return {"type": "block_actions", "user": {"id": user}, "trigger_id": demo.slack.issue_trigger_id(),
                "response_url": demo.slack.response_url(), "channel": {"id": channel},
                "container": {"type": "message", "channel_id": channel, "message_ts": ts},
                "actions": [{"type": "button", "action_id": f"cr:{answer}", "block_id": f"cr-{cr.id}",
                             "value": str(cr.id), "action_ts": f"{time.time():.6f}"}]}

    def recorded() -> bool:
        with transaction(demo.rt.sessions) as session:
            return len(demo.slack.views) > seen or any(d.approver == user for d in crs.decisions(session, cr.id))

    seen = len(demo.slack.views)
    clicker.persist(payload, recorded).raise_for_status()
    if reason:
        view = wait_for("the reason modal", lambda: demo.slack.views[seen] if len(demo.slack.views) > seen else None)
        clicker.submit_persisting(view, reason).raise_for_status()
    demo.say(cr.engagement_id, f"  {demo.who(cr.engagement_id, user)} clicked {answer.title()} on CR-{cr.number}"
             + (f" ({reason})" if reason else ""))


def _file(demo: Demo, engagement_id: str, draft: Draft, by: str) -> ChangeRequestRow:
    filed = cr_operations.file(demo.rt.sessions, engagement_id, draft, requested_by=by, source=ChangeSource.CLI)
    cr_operations.start_flow(engagement_id, filed.number)
    demo.say(engagement_id, f"{filed.name} filed by {demo.who(engagement_id, by)}: {draft.title}")
    for line in filed.assessment.lines():
        demo.say(engagement_id, f"  {line.replace('*', '')}")
    return _request(demo, engagement_id, filed.number, lambda r: r.message_ts is not None, f"{filed.name} prompt")


def scope_and_changes(demo: Demo) -> None:
    """Drift found, a change request covering it approved (timebox moved), another rejected."""
    e = "acme-churn"

    def baseline_with_issues() -> str | None:
        with transaction(demo.rt.sessions) as session:
            baseline = crs.baseline(session, e)
            links = engagements.links(session, e, Phase.POC)
        return links.get("baseline-model") if baseline is not None and "issues" in baseline.scope else None
    model = wait_for(f"{e} baseline with its Jira issues", baseline_with_issues)
    extra = demo.jira[e].add_issue("ACME", "Second model: gradient boosting", epic=model)
    found = cr_operations.drift_of(demo.rt, e)
    for line in found.lines():
        demo.say(e, f"scope drift: {line}")

    draft = dataclasses.replace(drift.draft(found), effort_days=5, schedule_days=7, cost=12_000)
    first = _file(demo, e, draft, PM)
    for user in (SPONSOR, VENDOR_LEAD):
        _answer(demo, first, user, "approve")
    done = _request(demo, e, first.number, lambda r: r.announced, "CR-1 to be announced")
    moved = crs.assessment_of(done)
    demo.say(e, f"CR-1 {done.state.value}: baseline v{done.baseline_version}, PoC timebox moved from "
                f"{moved.ends_on if moved else '?'} to {moved.new_ends_on if moved else '?'}")
    left = cr_operations.drift_of(demo.rt, e)
    demo.say(e, f"scope drift after CR-1: {'none' if not left.items else len(left.items)} ({extra} is covered)")

    second = _file(demo, e, Draft(title="Real-time scoring API in the PoC", scope_added=("realtime-api",),
                                  effort_days=15, cost=45_000), TECH_LEAD)
    for user in (SPONSOR, VENDOR_LEAD):
        _answer(demo, second, user, "reject", "after the PoC, as part of development")
    rejected = _request(demo, e, second.number, lambda r: r.announced, "CR-2 to be announced")
    demo.say(e, f"CR-2 {rejected.state.value}: {rejected.closed_reason}")


def weekly(demo: Demo, engagement_id: str) -> None:
    """This week's report from the served weekly-status deployment, while the engagement runs."""
    run = run_deployment(f"{WEEKLY_FLOW}/{WEEKLY_DEPLOYMENT_NAME}", timeout=120,
                         parameters={"engagement_ids": [engagement_id], "force": True})
    state = run.state.name if isinstance(run, FlowRun) and run.state else "unknown"
    demo.say(engagement_id, f"weekly report run: {state}")


def weekly_summary(demo: Demo) -> list[str]:
    """Where each weekly report went: the Slack message, the chart, the Prefect artifacts."""
    ui = demo.api.removesuffix("/api")
    with transaction(demo.rt.sessions) as session:
        rows = list(session.scalars(select(WeeklyReportRow).where(WeeklyReportRow.kind == ReportKind.ENGAGEMENT)
                                    .order_by(WeeklyReportRow.subject)))
    lines = []
    for r in rows:
        lines.append(f"weekly {r.subject} {r.week}: {r.rag.value}, posted to {r.channel} "
                     f"{'(ts ' + r.message_ts + ')' if r.message_ts else '(not posted)'}")
        lines.append(f"  chart:     {r.chart_path or 'none'}")
        lines.append(f"  artifacts: weekly-{r.subject} (markdown) and weekly-{r.subject}-table at {ui}/artifacts")
    return lines or ["no weekly report was recorded"]
