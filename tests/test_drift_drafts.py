"""A change request drafted from a large drift covers what it says it covers (issue 19, item 11),
against the Jira stand-in (Cloud and Data Center, paging) and ledgers on SQLite and PostgreSQL.

A request holds at most 25 added and 25 removed scope items, so 500 drifted issues cannot fit in
one: the draft names exactly which issues it covers and how many are left, and after its approval
exactly those, and no others, stop being drift.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jira_setup import jira_running, tracked_by_filter
from test_evidence_scope import approve_request, running

from phasegate.changes import operations as cr_operations
from phasegate.configs.schema import Engagement, Phase
from phasegate.orchestration.runtime import Runtime
from phasegate.rules import drift
from phasegate.rules.change_requests import ITEMS_LIMIT, validate
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.tasks.kickoff import record_baseline

DRIFTED = 500


@pytest.fixture(params=["cloud", "datacenter"])
def jira(request: pytest.FixtureRequest) -> Iterator[JiraStandin]:
    with jira_running(request.param, "ACME", page_size=100) as standin:
        yield standin


@pytest.fixture
def engagement(acme: Engagement, jira: JiraStandin) -> Engagement:
    return tracked_by_filter(acme, jira)


def test_a_draft_from_500_drifted_issues_names_exactly_the_ones_it_covers(
        rt: Runtime, jira: JiraStandin, engagement: Engagement) -> None:
    running(rt, engagement)
    planned = [jira.add_issue("ACME", f"Planned {n}", labels=["baseline-model"]) for n in range(ITEMS_LIMIT + 5)]
    record_baseline.fn(rt, engagement, Phase.POC)
    entered = {jira.add_issue("ACME", f"Extra {n}", labels=["baseline-model"]) for n in range(DRIFTED - 30)}
    for key in planned:  # 30 of the baseline leave the filter: more than one request's removed items too
        rt.tracker(engagement).client.issue(key).update(fields={"labels": ["later"]})
    found = cr_operations.drift_of(rt, engagement.id)
    assert found.error is None and found.count == DRIFTED

    draft = drift.draft(found)
    validate(draft)  # fileable as drafted
    covered = {i.split(" ", 1)[0] for i in draft.scope_added} | set(draft.scope_removed)
    assert len(covered) == 2 * ITEMS_LIMIT
    assert f"{len(covered)} of {DRIFTED} issues" in draft.title and "more" not in draft.title
    named = drift.keys_named([draft.rationale.split(". ", 1)[0]])
    assert named == covered, "the rationale names exactly the issues the request covers"
    assert f"The other {DRIFTED - len(covered)} stay drift" in draft.rationale

    approve_request(rt, engagement, draft)
    after = cr_operations.drift_of(rt, engagement.id)
    still = {i.key for i in (*after.items, *after.left)}
    assert after.count == DRIFTED - len(covered)
    assert still == (entered | set(planned)) - covered

    second = drift.draft(after)
    next_part = min(ITEMS_LIMIT, len(after.items)) + min(ITEMS_LIMIT, len(after.left))  # 25 entered, the 5 left
    assert f"{next_part} of {after.count} issues" in second.title
    assert not ({i.split(" ", 1)[0] for i in second.scope_added} | set(second.scope_removed)) & covered


def test_a_draft_that_covers_the_whole_drift_says_so_by_its_keys(
        rt: Runtime, jira: JiraStandin, engagement: Engagement) -> None:
    running(rt, engagement)
    record_baseline.fn(rt, engagement, Phase.POC)
    extra = [jira.add_issue("ACME", f"Extra {n}", labels=["baseline-model"]) for n in range(7)]
    draft = drift.draft(cr_operations.drift_of(rt, engagement.id))
    assert draft.title == f"Scope drift in poc: {', '.join(extra[:5])} and 2 more"
    assert "Covers" not in draft.rationale
    approve_request(rt, engagement, draft)
    assert cr_operations.drift_of(rt, engagement.id).count == 0
