"""The whole product on one machine, as `phasegate demo` runs it (change requests, scope drift and
a weekly report included): a real `prefect server`, the phase flow served by a runner, the Slack endpoint answering signed requests, and the Slack, Jira (Cloud
and Data Center) and metric stand-ins over real HTTP. Each suspend re-runs the flow from the top
on resume, so these runs also prove that nothing is done twice."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from helpers import jira_issues, ok, wait_until, with_changes
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import PrefectHTTPStatusError
from prefect_seed import seeded
from sqlalchemy import select
from typer.testing import CliRunner

from phasegate.cli.main import app
from phasegate.configs.schema import Phase
from phasegate.errors import NotFound, PolicyError
from phasegate.gates import operations
from phasegate.ledger import change_requests as crs
from phasegate.ledger import engagements, gates, phases
from phasegate.ledger.db import transaction
from phasegate.ledger.models import WeeklyReportRow
from phasegate.ledger.verify import verify
from phasegate.orchestration.resume import resume_when_paused
from phasegate.sandbox.demo import acme_churn, gate_summary, globex_forecast
from phasegate.sandbox.world import Demo, demo_engagements, local_world
from phasegate.settings import Settings
from phasegate.states import EngagementState, GateState, Outcome, Via

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    settings = Settings(home=tmp_path_factory.mktemp("world"), database_url="")
    with local_world(seeded(settings)) as demo:
        # the copies of acme-churn below read acme-churn's PoC run, whichever test of the module ran first;
        # each posts in a channel of its own, so that acme-churn's channel holds its messages alone
        demo.metrics.set("acme-churn-poc", f1=0.88, data_quality_score=0.93)
        yield demo


def flow_runs(prefix: str) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=prefix)))
    return {r.name: r.state.type.value for r in runs if r.state is not None}


def settled_runs(prefix: str, count: int) -> dict[str, str]:
    """The flow runs named `prefix...` once there are `count` or more, all final. The flow records the end of an
    engagement in the ledger a moment before its run reaches a final state in Prefect."""
    def settled() -> dict[str, str] | None:
        runs = flow_runs(prefix)
        return runs if len(runs) >= count and set(runs.values()) <= FINAL else None
    return wait_until(settled, timeout=60, what=f"the {prefix}* flow runs to finish", interval=0.5)


def top_level(world: Demo, channel: str) -> list[str]:
    return [m.text for m in world.slack.messages(channel) if m.thread_ts is None]


@pytest.mark.xdist_group("end-to-end-acme")  # the longest test: its own worker and world
def test_acme_goes_through_all_three_phases_to_accept(world: Demo) -> None:
    acme_churn(world)
    with transaction(world.rt.sessions) as session:
        row = engagements.get(session, "acme-churn")
        assert row.state is EngagementState.COMPLETED
        rows = gates.all_gates(session, "acme-churn")
        assert [(g.phase.gate, g.revision, g.state, g.outcome) for g in rows] == [
            ("G1", 1, GateState.DECIDED, Outcome.GO), ("G2", 1, GateState.DECIDED, Outcome.GO),
            ("G3", 1, GateState.DECIDED, Outcome.ACCEPT)]
        for gate in rows:
            answers = gates.decisions(session, gate.id)
            assert {d.via for d in answers} == {Via.SLACK}
            assert {d.digest for d in answers} == {gate.digest == gates.snapshot_of(session, gate).digest() and gate.digest}
        g1_answers = [(d.approver, d.outcome) for d in gates.decisions(session, rows[0].id)]
        assert g1_answers == [("U0SPONSOR1", Outcome.GO), ("U0VENDLEAD", Outcome.GO)]  # the double click counted once
        attested = engagements.attestations(session, "acme-churn", Phase.HANDOVER)
        assert set(attested) == {"pair-programming", "supervised-operation", "knowledge-transfer-drill", "data-deletion"}
        g3 = gates.snapshot_of(session, rows[2])
        assert {m.key: m.source for m in g3.milestones if m.source == "attestation"}.keys() == set(attested)
        assert all(c.result.value == "pass" for c in g3.criteria)
        # the demo's change requests: drift covered by CR-1 (PoC a week longer), CR-2 rejected
        assert [(cr.state.value, cr.schedule_days) for cr in crs.all_for(session, "acme-churn")] == [
            ("approved", 7), ("rejected", 0)]
        first_box = phases.current_timebox(session, "acme-churn", Phase.POC)
        assert first_box.ends_on == row_start(session) + dt.timedelta(weeks=8, days=7)
        weekly = session.scalars(select(WeeklyReportRow).where(WeeklyReportRow.subject == "acme-churn")).all()
        assert len(weekly) == 1 and weekly[0].message_ts and weekly[0].chart_path
        assert verify(session, "acme-churn")[0].problems == []  # every state change sealed as it happened
    texts = top_level(world, "C0ACMECHURN")
    assert sum("started for *ACME churn prediction*" in t for t in texts) == 3  # one kickoff per phase
    assert sum(t.startswith("Weekly status") for t in texts) == 1
    assert len(texts) == 3 + 3 + 1 + 2 + 1  # kickoffs, gate prompts, closing note, two CR prompts, weekly
    assert len({g.message_ts for g in rows}) == 3
    for gate in rows:
        assert gate.message_ts is not None
        blocks = json.dumps(world.slack.message("C0ACMECHURN", gate.message_ts).blocks)
        assert f"Decided: {gate.outcome.label}" in blocks and '"actions"' not in blocks  # type: ignore[union-attr]
    jira = world.jira["acme-churn"]  # the copies below file their milestones in the same project, as "[acme-...] ..."
    titles = [jira.issue(key)["fields"]["summary"] for key in jira_issues(jira, "ACME")]
    own = [t for t in titles if t.startswith("[acme-churn] ") or t == "Second model: gradient boosting"]
    assert len(own) == 3 + 5 + 6 + 1  # milestones, the drifted issue
    runs = settled_runs("acme-churn-", 3)  # one flow run carried the engagement through its three phases
    assert runs == {"acme-churn-poc": "COMPLETED", "acme-churn-cr-1": "COMPLETED", "acme-churn-cr-2": "COMPLETED"}
    with transaction(world.rt.sessions) as session:
        assert len({r.flow_run_id for r in phases.phase_runs(session, "acme-churn")}) == 1
    summary = [line.split(" evidence digest ")[0] for line in gate_summary(world)  # what `phasegate demo` ends with
               if line.startswith("acme-churn/")]  # (the other tests' engagements too, when they ran first)
    assert summary == ["acme-churn/G1: GO [Dana Whitfield (sponsor) GO, Priya Natarajan (vendor lead) GO]",
                       "acme-churn/G2: GO [Dana Whitfield (sponsor) GO, Omar Haddad (tech lead) GO]",
                       "acme-churn/G3: ACCEPT [Dana Whitfield (sponsor) ACCEPT, Priya Natarajan (vendor lead) ACCEPT]"]


def row_start(session: Any) -> dt.date:
    return engagements.config_of(engagements.get(session, "acme-churn")).start_date


def test_globex_signs_past_a_red_flag_then_extends_then_stops(world: Demo) -> None:
    globex_forecast(world)
    with transaction(world.rt.sessions) as session:
        row = engagements.get(session, "globex-forecast")
        assert row.state is EngagementState.CLOSED
        assert row.closed_reason == "F1 plateaued at 0.76 after the extension; not worth building"
        rows = gates.all_gates(session, "globex-forecast")
        assert [(g.phase.gate, g.timebox, g.outcome) for g in rows] == [
            ("G0", 1, Outcome.GO), ("G1", 1, Outcome.EXTEND), ("G1", 2, Outcome.NO_GO)]
        g0 = gates.snapshot_of(session, rows[0])
        assert g0.red_flags == ["a rigid fixed-price contract: the path from raw data to a working model is rarely straight"]
        assert [(d.approver, d.outcome, d.via, d.reason.startswith("waiver: the fixed price")) for d in
                gates.decisions(session, rows[0].id)] == [("U0LEEPARK1", Outcome.GO, Via.SLACK, True),
                                                           ("U0GLXDATA1", Outcome.GO, Via.SLACK, True)]
        assert set(engagements.attestations(session, "globex-forecast", Phase.SELECTION)) == {
            "data-readiness", "mlops-walkthrough", "references"}
        f1_seen = [next(c.seen for c in gates.snapshot_of(session, g).criteria if c.label.startswith("f1"))
                   for g in rows[1:]]
        assert f1_seen == ["0.74", "0.76"]
        assert phases.weeks_used(session, "globex-forecast", Phase.POC) == 12
        extension = phases.current_timebox(session, "globex-forecast", Phase.POC)
        assert extension.reason.startswith("F1 0.74 is under 0.80")
        assert len({r.flow_run_id for r in phases.phase_runs(session, "globex-forecast")}) == 1  # G0's run went on
        assert verify(session, "globex-forecast")[0].problems == []
    # one run from Phase 0 through the PoC, no development run
    assert settled_runs("globex-forecast-", 1) == {"globex-forecast-selection": "COMPLETED"}
    assert [line.split(" [")[0] for line in gate_summary(world) if line.startswith("globex-forecast/")] == [
        "globex-forecast/G0: GO with waiver", "globex-forecast/G1: EXTEND",
        "globex-forecast/G1, after the PoC's first extension: NO-GO"]


def resume_with(flow_run_id: str, run_input: dict[str, Any]) -> str:
    """What the Prefect UI's resume form does: resume the paused run with the typed input."""
    def paused() -> Any:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(flow_run_id))
            if run.state is None or not run.state.is_paused():
                return None
            try:  # the form's description is written around the pause: not yet there is "not paused yet"
                return client.read_flow_run_input(UUID(flow_run_id), run.state.state_details.run_input_keyset["description"])
            except PrefectHTTPStatusError:
                return None
    description = wait_until(paused, timeout=60, what="the run to pause for input", interval=0.2)
    with get_client(sync_client=True) as client:
        result = client.resume_flow_run(UUID(flow_run_id), run_input=run_input)
    assert result.status == SetStateStatus.ACCEPT
    return str(json.loads(description))


def test_prefect_ui_resume_form_is_held_to_the_same_policy(world: Demo, tmp_path: Path) -> None:
    copy = with_changes(demo_engagements()["acme-churn"], id="acme-ui", name="ACME via the UI",
                        slack_channel="C0ACMEUI")
    with transaction(world.rt.sessions) as session:
        engagements.register(session, copy)
    world.jira["acme-ui"] = world.jira["acme-churn"]
    run_id = operations.start_phase(world.rt, "acme-ui", Phase.POC, "U0PMACME01")
    world.wait_phase_run("acme-ui", Phase.POC)
    world.finish_jira_work("acme-ui", Phase.POC)
    world.review("acme-ui")
    gate = world.open_gate("acme-ui", Phase.POC)
    description = resume_with(run_id, {"outcome": "go", "approver": "U0PMACME01", "reason": ""})
    assert "| f1 >= 0.85 | pass | 0.88 |" in description and gate.digest in description
    resume_with(run_id, {"outcome": "no_go", "approver": "U0SPONSOR1", "reason": ""})  # no reason: refused
    resume_with(run_id, {"outcome": "go", "approver": "U0SPONSOR1", "reason": ""})
    resume_with(run_id, {"outcome": "go", "approver": "U0VENDLEAD", "reason": ""})
    decided = world.decided(gate)
    assert decided.outcome is Outcome.GO
    with transaction(world.rt.sessions) as session:
        answers = [(d.approver, d.outcome, d.via) for d in gates.decisions(session, gate.id)]
    assert answers == [("U0SPONSOR1", Outcome.GO, Via.PREFECT_UI), ("U0VENDLEAD", Outcome.GO, Via.PREFECT_UI)]
    world.wait_phase_run("acme-ui", Phase.DEVELOPMENT)  # kicked off by the same run, which carried on
    with transaction(world.rt.sessions) as session:
        assert phases.phase_run(session, "acme-ui", Phase.DEVELOPMENT).flow_run_id == run_id
    assert set(flow_runs("acme-ui-")) == {"acme-ui-poc"}


def test_with_auto_advance_off_a_go_waits_for_the_pm(world: Demo) -> None:
    manual = with_changes(demo_engagements()["acme-churn"], id="acme-manual", name="ACME by hand",
                          slack_channel="C0ACMEMANUAL", auto_advance=False)
    with transaction(world.rt.sessions) as session:
        engagements.register(session, manual)
    world.jira["acme-manual"] = world.jira["acme-churn"]
    with pytest.raises(PolicyError, match="has not passed G1"):
        operations.start_phase(world.rt, "acme-manual", Phase.DEVELOPMENT, "U0PMACME01")
    first = operations.start_phase(world.rt, "acme-manual", Phase.POC, "U0PMACME01")
    assert operations.start_phase(world.rt, "acme-manual", Phase.POC, "U0PMACME01") == first  # same run
    world.wait_phase_run("acme-manual", Phase.POC)
    with pytest.raises(PolicyError, match=f"already started \\(flow run {first}\\)"):
        operations.start_phase(world.rt, "acme-manual", Phase.POC, "U0PMACME01")
    world.finish_jira_work("acme-manual", Phase.POC)
    world.review("acme-manual")
    gate = world.open_gate("acme-manual", Phase.POC)
    for approver in ("U0TECHLEAD", "U0VENDLEAD"):
        operations.decide(world.rt, gate.id, approver=approver, outcome=Outcome.GO, reason="", operator="pm@laptop")
    assert world.decided(gate).outcome is Outcome.GO
    wait_until(lambda: flow_runs("acme-manual-poc").get("acme-manual-poc") == "PAUSED", timeout=90,
               what="the PoC run to pause for the PM", interval=0.5)
    with transaction(world.rt.sessions) as session:
        with pytest.raises(NotFound):
            phases.phase_run(session, "acme-manual", Phase.DEVELOPMENT)
        assert [d.via for d in gates.decisions(session, gate.id)] == [Via.CLI, Via.CLI]
    assert operations.start_phase(world.rt, "acme-manual", Phase.DEVELOPMENT, "U0PMACME01") == first  # woken
    world.wait_phase_run("acme-manual", Phase.DEVELOPMENT)
    with transaction(world.rt.sessions) as session:
        assert phases.phase_run(session, "acme-manual", Phase.DEVELOPMENT).flow_run_id == first


def test_a_go_carries_on_into_the_next_phase_in_the_same_flow_run(world: Demo) -> None:
    """No second deployment run after G1 GO: the run that waited on G1 kicks development off itself.
    Each later resume re-runs that flow from the top, and it goes straight to development: the PoC's
    kickoff is not posted again and G1's evidence (its Jira issues) is not read again."""
    copy = with_changes(demo_engagements()["acme-churn"], id="acme-carry", name="ACME carried on",
                        slack_channel="C0ACMECARRY")
    with transaction(world.rt.sessions) as session:
        engagements.register(session, copy)
    jira = world.jira["acme-carry"] = world.jira["acme-churn"]
    run_id = operations.start_phase(world.rt, "acme-carry", Phase.POC, "U0PMACME01")
    world.wait_phase_run("acme-carry", Phase.POC)
    world.finish_jira_work("acme-carry", Phase.POC)
    world.review("acme-carry")
    g1 = world.open_gate("acme-carry", Phase.POC)
    for approver in ("U0SPONSOR1", "U0VENDLEAD"):
        world.click(g1, approver, Outcome.GO)
    world.wait_phase_run("acme-carry", Phase.DEVELOPMENT)
    with transaction(world.rt.sessions) as session:
        assert {r.phase: r.flow_run_id for r in phases.phase_runs(session, "acme-carry")} == {
            Phase.POC: run_id, Phase.DEVELOPMENT: run_id}
        poc_issues = set(engagements.links(session, "acme-carry", Phase.POC).values())
    assert set(flow_runs("acme-carry-")) == {"acme-carry-poc"}
    seen = len(jira.requests)

    for _ in range(2):  # nudged mid-development (as a reminder or an early click would): re-run from the top
        assert resume_when_paused(run_id, wait=90)
    world.finish_jira_work("acme-carry", Phase.DEVELOPMENT)
    world.review("acme-carry")
    g2 = world.open_gate("acme-carry", Phase.DEVELOPMENT)
    assert g2.flow_run_id == run_id  # answers wake the run that carried on
    for approver in ("U0SPONSOR1", "U0TECHLEAD"):
        world.click(g2, approver, Outcome.NO_GO, "the staging pipeline cannot meet the latency target")
    assert world.ended("acme-carry").startswith("closed")

    read_again = [path for _, path in jira.requests[seen:] if path.rstrip("/").rsplit("/", 1)[-1] in poc_issues]
    assert read_again == []
    kickoffs = [t for t in top_level(world, copy.slack_channel) if "started for *ACME carried on*" in t]
    assert [k.split("*")[1] for k in kickoffs] == [Phase.POC.heading, Phase.DEVELOPMENT.heading]
    with transaction(world.rt.sessions) as session:
        assert [(g.phase, g.revision) for g in gates.all_gates(session, "acme-carry")] == [
            (Phase.POC, 1), (Phase.DEVELOPMENT, 1)]
    assert settled_runs("acme-carry-", 1) == {"acme-carry-poc": "COMPLETED"}
    env = world.rt.settings.as_env() | {"PREFECT_API_URL": world.api, "COLUMNS": "200"}
    shown = ok(CliRunner(env=env).invoke(app, ["engagement", "show", "acme-carry"]))
    assert f"flow run {run_id}: carried on into development" in shown
    assert f"flow run {run_id}: completed" in shown  # the development line: the run as Prefect sees it
