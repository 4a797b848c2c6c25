"""Phase 0 run by the real phase flow, as `phasegate demo` runs the others: a local Prefect server, the
flow served, G0 answered with signed Slack clicks. A NO-GO at G0 ends the engagement before any vendor
work (no PoC kickoff, no PoC milestone in Jira); a GO carries on into the PoC in the same flow run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import wait_until, with_changes
from prefect_seed import seeded
from selection_data import with_selection

from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import NotFound, PolicyError
from phasegate.gates import operations
from phasegate.ledger import engagements, gates, phases
from phasegate.ledger.db import transaction
from phasegate.sandbox.world import Demo, demo_engagements, local_world
from phasegate.settings import Settings
from phasegate.states import GateState, Outcome, Via

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with local_world(seeded(Settings(home=tmp_path_factory.mktemp("world"), database_url=""))) as demo:
        demo.metrics.set("acme-churn-poc", f1=0.88, data_quality_score=0.93)
        yield demo


def registered(world: Demo, engagement: Engagement) -> Engagement:
    with transaction(world.rt.sessions) as session:
        engagements.register(session, engagement)
    world.jira[engagement.id] = world.jira["acme-churn"]
    return engagement


def started_phase_0(world: Demo, engagement: Engagement) -> str:
    """Phase 0 started, its own checks attested by the client, G0 asked for; the flow run's id."""
    run_id = operations.start_phase(world.rt, engagement.id, Phase.SELECTION, "U0PMACME01")
    world.wait_phase_run(engagement.id, Phase.SELECTION)
    with transaction(world.rt.sessions) as session:
        for key in ("data-readiness", "mlops-walkthrough"):
            engagements.attest(session, engagement, Phase.SELECTION, key, by="U0TECHLEAD", note="done", via=Via.CLI)
    world.review(engagement.id)
    return run_id


def summaries(world: Demo, engagement_id: str) -> list[str]:
    jira = world.jira[engagement_id]
    return [jira.issue(k)["fields"]["summary"] for k in jira.issue_keys()
            if jira.issue(k)["fields"]["summary"].startswith(f"[{engagement_id}]")]


def kickoffs(world: Demo, engagement: Engagement) -> list[str]:
    return [m.text.split("*")[1] for m in world.slack.messages(engagement.slack_channel)
            if m.thread_ts is None and f"started for *{engagement.name}*" in m.text]


def test_a_no_go_at_g0_ends_the_engagement_before_any_vendor_work(world: Demo) -> None:
    acme = demo_engagements()["acme-churn"]
    stop = registered(world, with_changes(with_selection(acme, "acme-g0-stop"), name="ACME not signed"))
    started_phase_0(world, stop)
    g0 = world.open_gate(stop.id, Phase.SELECTION)
    world.click(g0, "U0SPONSOR1", Outcome.NO_GO, "their references run no churn model in production")
    world.click(g0, "U0TECHLEAD", Outcome.NO_GO, "we build it in-house")
    assert world.ended(stop.id) == "closed: their references run no churn model in production; we build it in-house"

    assert kickoffs(world, stop) == [Phase.SELECTION.heading]
    assert sorted(summaries(world, stop.id)) == ["[acme-g0-stop] Internal data readiness assessment",
                                                 "[acme-g0-stop] MLOps architecture walkthrough"]  # no PoC work
    with transaction(world.rt.sessions) as session:
        assert [(g.phase, g.state, g.outcome) for g in gates.all_gates(session, stop.id)] == [
            (Phase.SELECTION, GateState.DECIDED, Outcome.NO_GO)]
        with pytest.raises(NotFound):
            phases.phase_run(session, stop.id, Phase.POC)
    with pytest.raises(PolicyError, match="cannot start poc: G0 has no GO"):
        operations.start_phase(world.rt, stop.id, Phase.POC, "U0PMACME01")


def test_a_go_at_g0_past_a_red_flag_carries_on_into_the_poc(world: Demo) -> None:
    acme = demo_engagements()["acme-churn"]
    signed = registered(world, with_changes(with_selection(acme, "acme-g0-go", pricing="fixed_price"),
                                            name="ACME signed"))
    run_id = started_phase_0(world, signed)
    g0 = world.open_gate(signed.id, Phase.SELECTION)
    waiver = "waiver: the fixed price covers the PoC only; development is time and materials"
    for approver in ("U0SPONSOR1", "U0TECHLEAD"):
        world.click(g0, approver, Outcome.GO, waiver)
    world.wait_phase_run(signed.id, Phase.POC)

    assert kickoffs(world, signed) == [Phase.SELECTION.heading, Phase.POC.heading]
    with transaction(world.rt.sessions) as session:
        assert {r.phase: r.flow_run_id for r in phases.phase_runs(session, signed.id)} == {
            Phase.SELECTION: run_id, Phase.POC: run_id}  # the run that waited on G0 kicked the PoC off
        answers = gates.decisions(session, g0.id)
        assert [(d.approver, d.outcome, d.reason) for d in answers] == [
            ("U0SPONSOR1", Outcome.GO, waiver), ("U0TECHLEAD", Outcome.GO, waiver)]
        assert gates.snapshot_of(session, gates.by_id(session, g0.id)).red_flags == [
            "a rigid fixed-price contract: the path from raw data to a working model is rarely straight"]
    wait_until(lambda: "[acme-g0-go] Baseline model trained on the holdout split" in summaries(world, signed.id),
               timeout=60, what="the PoC's milestones in Jira")  # linked after the kickoff
