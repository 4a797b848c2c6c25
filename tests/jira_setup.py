"""The Jira set-up the evidence tests share: a running stand-in of one flavour, and acme-churn with its
baseline model tracked by a filter on it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from helpers import with_changes

from phasegate.configs.schema import Engagement
from phasegate.sandbox.standins.jira_api import JiraStandin

FILTERED_POC = [  # acme-churn's PoC milestones, the baseline model tracked by label rather than by issue
    {"key": "data-readiness", "title": "Data readiness assessment"},
    {"key": "baseline-model", "title": "Baseline model", "jql": {"labels": ["baseline-model"]}},
    {"key": "poc-report", "title": "PoC report delivered"}]


@contextmanager
def jira_running(flavour: str, *projects: str, page_size: int = 50) -> Iterator[JiraStandin]:
    """A Jira stand-in of this flavour ("cloud", "datacenter") holding these projects, stopped after."""
    standin = JiraStandin(flavour, page_size=page_size)
    standin.start()
    for project in projects:
        standin.add_project(project)
    try:
        yield standin
    finally:
        standin.stop()


def tracked_by_filter(acme: Engagement, jira: JiraStandin, **changes: object) -> Engagement:
    """acme-churn on this Jira, its baseline model tracked by a filter (label `baseline-model`)."""
    return with_changes(acme, jira__deployment=jira.deployment, phases__poc__milestones=FILTERED_POC, **changes)
