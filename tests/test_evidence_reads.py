"""How old each piece of a gate's evidence is, and what reading it costs (issue 19, items 6 and 7),
against the Jira and metric stand-ins (Cloud and Data Center, through the real jira client), the
Slack stand-in, and ledgers on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator

import pytest
from jira_setup import jira_running, tracked_by_filter
from test_evidence_scope import running

from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.ledger.models import utcnow
from phasegate.messages.gates import read_time
from phasegate.orchestration.runtime import Runtime
from phasegate.rules import evidence
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.tasks.gates import open_gate
from phasegate.tasks.kickoff import record_baseline

MILESTONE_ISSUES = 2_000
CLOUD_PAGE = 100  # what Jira Cloud's search/jql sends a page when fields are asked for


@pytest.fixture(params=["cloud", "datacenter"])
def jira(request: pytest.FixtureRequest) -> Iterator[JiraStandin]:
    with jira_running(request.param, "ACME", page_size=CLOUD_PAGE) as standin:
        yield standin


@pytest.fixture
def engagement(acme: Engagement, jira: JiraStandin) -> Engagement:
    """acme-churn on this Jira flavour, its baseline model tracked by a filter (label `baseline-model`)."""
    return tracked_by_filter(acme, jira)


# -- 6. the prompt says when each source was read ---------------------------------------------------

def test_the_prompt_says_when_each_source_was_read(rt: Runtime, jira: JiraStandin, slack: SlackStandin,
                                                    engagement: Engagement) -> None:
    running(rt, engagement)
    jira.add_issue("ACME", "Train the baseline", labels=["baseline-model"])
    record_baseline.fn(rt, engagement, Phase.POC)
    before = utcnow()
    gate_id = open_gate.fn(rt, engagement, Phase.POC, 1, "U0PMACME01", None)
    after = utcnow()
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        snapshot, ts = gates.snapshot_of(session, gate), gate.message_ts
    assert ts is not None
    blocks = slack.message(engagement.slack_channel, ts).blocks
    shown = "\n".join(str(b["text"]["text"]) for b in blocks if isinstance(b.get("text"), dict))
    milestones = [m for m in snapshot.milestones if m.source == "jira"]
    assert len(milestones) == 3 and snapshot.metrics
    for m in milestones:
        assert before <= m.read_at <= after
        line = next(line for line in shown.splitlines() if m.title in line)
        assert f"Jira read {read_time(m.read_at)}" in line, line
    for metric in snapshot.metrics:
        assert before <= metric.read_at <= after
        line = next(line for line in shown.splitlines() if line.startswith(f"{metric.name}: "))
        assert f"{metric.source} read {read_time(metric.read_at)}" in line, line


def test_each_source_keeps_its_own_read_time(rt: Runtime, jira: JiraStandin, engagement: Engagement) -> None:
    """Read in turn, each source is stamped when its own read began, not with the collection's start."""
    running(rt, engagement)
    start = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
    ticks = iter(start + dt.timedelta(minutes=n) for n in range(1, 100))
    snapshot = evidence.collect(engagement, Phase.POC, 1, tracker=rt.tracker(engagement), read_json=rt.read_json,
                                facts=evidence.LedgerFacts(), now=start, metrics_base_url=rt.settings.metrics_base_url,
                                clock=lambda: next(ticks))
    stamps = [m.read_at for m in snapshot.milestones] + [m.read_at for m in snapshot.metrics]
    assert snapshot.collected_at == start
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps) and start not in stamps


# -- 7. the drift check reuses the milestone's read ------------------------------------------------

@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)  # Jira's requests are counted: one ledger will do
def test_opening_a_gate_on_a_2000_issue_milestone_reads_its_pages_once(
        rt: Runtime, jira: JiraStandin, engagement: Engagement) -> None:
    running(rt, engagement)
    for n in range(MILESTONE_ISSUES):
        jira.add_issue("ACME", f"Story {n}", labels=["baseline-model"])
    record_baseline.fn(rt, engagement, Phase.POC)
    seen = len(jira.requests)
    open_gate.fn(rt, engagement, Phase.POC, 1, "U0PMACME01", None)
    asked = [path for _, path in jira.requests[seen:]]
    pages = math.ceil(MILESTONE_ISSUES / CLOUD_PAGE)
    # each of the two milestones linked to one issue: the issue, and its children (Data Center asks
    # for the epic's issues and the sub-tasks apart)
    children = 2 * (1 if jira.deployment == "cloud" else 2)
    searches = [p for p in asked if "/search" in p]
    assert len(searches) == pages + children, asked
    assert len(asked) == pages + children + 2
