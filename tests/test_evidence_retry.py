"""A passing outage while a gate's evidence is read is read again, not frozen into the gate.

The stand-ins answer 503 for real (once, with and without Retry-After, or for good); the waits
go through the Runtime's `sleep`, recorded here instead of slept.
"""

from __future__ import annotations

from helpers import finish_milestones, register

from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.orchestration.runtime import Runtime
from phasegate.rules.evidence import Snapshot
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.metrics_api import MetricsStandin
from phasegate.tasks.gates import open_gate
from phasegate.tasks.kickoff import begin_phase, link_milestones, post_kickoff


def ready(rt: Runtime, jira: JiraStandin, acme: Engagement) -> list[float]:
    """A PoC whose milestones are done in Jira; the waits the evidence collection asks for."""
    register(rt, acme)
    begin_phase.fn(rt, acme, Phase.POC, "U0PMACME01", None)
    post_kickoff.fn(rt, acme, Phase.POC)
    link_milestones.fn(rt, acme, Phase.POC)
    finish_milestones(rt, jira, acme.id, Phase.POC)
    rt.settings = rt.settings.model_copy(update={"evidence_retry_seconds": 10.0, "evidence_attempts": 3})
    waits: list[float] = []
    rt.sleep = waits.append
    return waits


def frozen(rt: Runtime, gate_id: int) -> Snapshot:
    with transaction(rt.sessions) as session:
        return gates.snapshot_of(session, gates.by_id(session, gate_id))


def test_one_jira_503_without_retry_after_is_read_again(rt: Runtime, jira: JiraStandin, acme: Engagement) -> None:
    waits = ready(rt, jira, acme)
    jira.fail_next("/issue/", status=503, retry_after=None)
    snapshot = frozen(rt, open_gate.fn(rt, acme, Phase.POC, 1, "U0PMACME01", None))
    assert all(m.done is True and m.error is None for m in snapshot.milestones), snapshot.milestones
    assert snapshot.all_pass and waits == [10.0]


def test_jira_503s_with_retry_after_are_waited_for_as_asked(
        rt: Runtime, jira: JiraStandin, acme: Engagement) -> None:
    waits = ready(rt, jira, acme)
    jira.fail_next("/issue/", status=503, retry_after=0, times=3)  # the client's own two retries, then ours
    snapshot = frozen(rt, open_gate.fn(rt, acme, Phase.POC, 1, "U0PMACME01", None))
    assert all(m.done is True for m in snapshot.milestones) and waits == [0.0]


def test_one_metric_503_with_retry_after_is_waited_for_as_asked(
        rt: Runtime, jira: JiraStandin, metrics: MetricsStandin, acme: Engagement) -> None:
    waits = ready(rt, jira, acme)
    metrics.fail_next(503, retry_after=7)
    snapshot = frozen(rt, open_gate.fn(rt, acme, Phase.POC, 1, "U0PMACME01", None))
    assert {m.name: m.value for m in snapshot.metrics} == {"f1": 0.88, "data_quality_score": 0.93}
    assert waits == [7.0]


def test_a_source_down_for_good_is_frozen_missing_after_the_budget(
        rt: Runtime, jira: JiraStandin, acme: Engagement) -> None:
    waits = ready(rt, jira, acme)
    jira.outage = True
    snapshot = frozen(rt, open_gate.fn(rt, acme, Phase.POC, 1, "U0PMACME01", None))
    assert waits == [10.0, 10.0]  # three reads
    assert all(m.done is None and "HTTP 503" in (m.error or "") for m in snapshot.milestones), snapshot.milestones
    assert any("read 3 times" in w and "HTTP 503" in w for w in snapshot.warnings), snapshot.warnings


def test_a_retry_after_beyond_the_wait_limit_is_not_waited_for(
        rt: Runtime, jira: JiraStandin, metrics: MetricsStandin, acme: Engagement) -> None:
    waits = ready(rt, jira, acme)
    metrics.fail_next(503, retry_after=3600)
    snapshot = frozen(rt, open_gate.fn(rt, acme, Phase.POC, 1, "U0PMACME01", None))
    f1 = next(m for m in snapshot.metrics if m.name == "f1")
    assert f1.value is None and "HTTP 503" in (f1.error or "") and "3600" in (f1.error or "")
    assert waits == []
