"""Phase 0, "Should we sign, and with whom?" (issue 20 item 1): the file's due diligence is checked when
the file is read, the G0 prompt shows it with the red flags, a red flag makes GO a waiver, and the PoC
cannot start before G0 has passed. The flow itself is run end to end in test_selection_flow.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from helpers import register, with_changes
from selection_data import SELECTION, with_selection

from phasegate.configs.errors import ConfigError
from phasegate.configs.loader import ENGAGEMENTS_DIR, parse_engagement
from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import PolicyError, ReasonRequired
from phasegate.gates import operations
from phasegate.ledger import engagements, gates
from phasegate.ledger.db import transaction
from phasegate.ledger.models import utcnow
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import collect
from phasegate.rules import policy
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import Outcome, Via
from phasegate.tasks.gates import open_gate
from phasegate.tasks.kickoff import begin_phase, link_milestones, post_kickoff
from phasegate.tasks.status import gate_summary

ACME_TEXT = (ENGAGEMENTS_DIR / "acme-churn.yaml").read_text()


def problems_with(change: Any) -> list[str]:
    """The problems `parse_engagement` reports for acme-churn with Phase 0 as `change(data)` leaves it."""
    data = yaml.safe_load(ACME_TEXT)
    data["phases"] = {"selection": json.loads(json.dumps(SELECTION)), **data["phases"]}
    change(data)
    with pytest.raises(ConfigError) as caught:
        parse_engagement(yaml.safe_dump(data, sort_keys=False), "acme.yaml")
    return caught.value.problems


def test_a_file_without_phase_0_reads_as_before(acme: Engagement) -> None:
    assert acme.phases.present() == [Phase.POC, Phase.DEVELOPMENT, Phase.HANDOVER]
    assert acme.phases.before(Phase.POC) is None and acme.phases.before(Phase.DEVELOPMENT) is Phase.POC
    assert "selection" not in acme.model_dump(mode="json")["phases"]  # the stored file and its digest unchanged
    chosen = with_selection(acme, "acme-g0")
    assert chosen.phases.first() is Phase.SELECTION and chosen.phases.before(Phase.POC) is Phase.SELECTION


def test_missing_and_bad_answers_are_named_with_their_path() -> None:
    def unanswered(data: dict[str, Any]) -> None:
        dd = data["phases"]["selection"]["due_diligence"]
        del dd["mlops_architecture"], dd["models_in_production"]
        dd["pricing"] = "whatever it takes"
        dd["data_validation"] = ""
        del data["phases"]["selection"]["ip"]["pre_existing"]
        del data["phases"]["selection"]["sourcing"]

    found = problems_with(unanswered)
    path = "acme.yaml: phases.selection."
    assert f"{path}due_diligence.mlops_architecture: Field required" in found
    assert f"{path}due_diligence.models_in_production: Field required" in found
    assert any(p.startswith(f"{path}due_diligence.data_validation: String should have at least 1 character")
               for p in found)
    assert any(p.startswith(f"{path}due_diligence.pricing: Input should be 'time_and_materials'") and "fixed_price" in p
               for p in found)
    assert f"{path}ip.pre_existing: Field required" in found
    assert f"{path}sourcing: Field required" in found


def test_g0_is_the_clients_decision_and_names_the_vendors_people() -> None:
    def vendor_approves_without_a_team(data: dict[str, Any]) -> None:
        data["vendor_team"] = []
        data["phases"]["selection"]["gate"]["approvers"].append(
            {"slack_user": "U0VENDLEAD", "name": "Priya Natarajan", "side": "vendor", "role": "vendor lead"})

    assert problems_with(vendor_approves_without_a_team) == [
        "acme.yaml: vendor_team: Phase 0 (selection) needs the named individuals the vendor commits: "
        "list them under vendor_team",
        "acme.yaml: phases.selection.gate.approvers[2].side: G0 is the client's decision whether to sign: "
        "the vendor does not approve it"]


def g0(rt: Runtime, engagement: Engagement) -> int:
    """G0 opened by the real phase tasks: kickoff posted, milestones in Jira, evidence frozen, prompt posted."""
    register(rt, engagement)
    begin_phase.fn(rt, engagement, Phase.SELECTION, "U0PMACME01", None)
    post_kickoff.fn(rt, engagement, Phase.SELECTION)
    link_milestones.fn(rt, engagement, Phase.SELECTION)
    return open_gate.fn(rt, engagement, Phase.SELECTION, 1, "U0PMACME01", None)


def prompt_text(rt: Runtime, slack: SlackStandin, gate_id: int) -> str:
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
    assert gate.message_ts is not None
    message = slack.message(gate.channel, gate.message_ts)
    return "\n".join(b["text"]["text"] for b in message.blocks if b.get("type") == "section") + "\n" + json.dumps(
        message.blocks, ensure_ascii=False)


def test_the_g0_prompt_shows_the_due_diligence_and_its_red_flags(rt: Runtime, slack: SlackStandin,
                                                                 acme: Engagement) -> None:
    risky = with_selection(acme, "acme-g0", accuracy_promise="95 % accuracy guaranteed", models_in_production=0,
                           pricing="fixed_price")
    gate_id = g0(rt, risky)
    shown = prompt_text(rt, slack, gate_id)
    assert "G0 · Should we sign?" in shown
    for line in ("*Red flags (GO needs a written waiver)*",
                 ":triangular_flag_on_post: the vendor promises accuracy before seeing our data: “95 % accuracy guaranteed”",
                 ":triangular_flag_on_post: no production experience: none of the vendor's models runs in production",
                 ":triangular_flag_on_post: a rigid fixed-price contract",
                 "• Models still in production today (the golden question): 0",
                 "• MLOps architecture: Airflow training pipeline, MLflow registry",
                 "• Outsource rather than build in-house: churn scoring is an enhancement of the CRM",
                 "• AI is not our core moat; the data may be shared with the vendor.",
                 "• ours exclusively: trained models, training data derivatives, custom code, test scripts",
                 "• pre-existing IP: Northwind churn feature library: licensed perpetually, royalty-free",
                 "*Named individuals the vendor commits*\n• Priya Natarajan (vendor lead)\n• Jonas Berg (ML engineer)",
                 ":x: Internal data readiness assessment"):
        assert line in shown, line
    # the Prefect UI's resume form and the CLI read the same lines from the frozen evidence
    summary = gate_summary(rt, gate_id)
    assert "**Red flags (GO needs a written waiver)**" in summary and "- Pricing: fixed price" in summary
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        snapshot = gates.snapshot_of(session, gate)
        assert gate.digest == snapshot.digest()  # the digest covers what the approvers read
    assert [u for u in snapshot.unmet if u.startswith("red flag: ")] == [
        f"red flag: {flag}" for flag in snapshot.red_flags] and len(snapshot.red_flags) == 3


def test_a_red_flag_makes_go_a_waiver_at_g0(rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    """Every milestone attested (no exit criterion open): the red flag alone asks for the waiver."""
    moat = with_changes(with_selection(acme, "acme-moat"), phases__selection__sourcing__core_moat=True)
    register(rt, moat)
    with transaction(rt.sessions) as session:
        for key in ("data-readiness", "mlops-walkthrough"):
            engagements.attest(session, moat, Phase.SELECTION, key, by="U0TECHLEAD", note="done", via=Via.CLI)
    gate_id = g0(rt, moat)
    with transaction(rt.sessions) as session:
        snapshot = gates.snapshot_of(session, gates.by_id(session, gate_id))
    assert all(c.result.value == "pass" for c in snapshot.criteria)
    assert snapshot.unmet == ["red flag: AI is our core competitive moat: outsourcing it creates a dangerous dependency"]
    assert policy.OUTCOMES[Phase.SELECTION] == (Outcome.GO, Outcome.NO_GO, Outcome.EXTEND)
    with pytest.raises(ReasonRequired, match="^GO while a red flag stands needs a written waiver reason.*core competitive moat"):
        with transaction(rt.sessions) as session:
            gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.GO, reason="", via=Via.CLI)
    with transaction(rt.sessions) as session:
        gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.GO, via=Via.CLI,
                     reason="waiver: the moat is the data, which stays ours; the vendor builds the model layer")
    assert "Dana Whitfield (<@U0SPONSOR1>, client sponsor) GO with waiver via cli" in prompt_after(rt, slack, gate_id)


def prompt_after(rt: Runtime, slack: SlackStandin, gate_id: int) -> str:
    from phasegate.messages.prompts import refresh

    refresh(rt.sessions, rt.chat, gate_id)
    return prompt_text(rt, slack, gate_id)


def test_g0_without_red_flags_needs_no_waiver(rt: Runtime, acme: Engagement) -> None:
    clean = with_selection(acme, "acme-clean")
    register(rt, clean)
    with transaction(rt.sessions) as session:
        for key in ("data-readiness", "mlops-walkthrough"):
            engagements.attest(session, clean, Phase.SELECTION, key, by="U0SPONSOR1", note="seen", via=Via.CLI)
    gate_id = g0(rt, clean)
    with transaction(rt.sessions) as session:
        snapshot = gates.snapshot_of(session, gates.by_id(session, gate_id))
        assert snapshot.red_flags == [] and snapshot.unmet == []
        gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.GO, reason="", via=Via.CLI)
        gates.answer(session, gate_id, approver="U0TECHLEAD", outcome=Outcome.GO, reason="", via=Via.CLI)
        assert gates.by_id(session, gate_id).outcome is Outcome.GO
    (report,) = collect.collect(rt, [clean.id], utcnow()).reports
    assert report.time_to_value_weeks is None  # signing is not value delivered: the first GO after G0 is


def test_the_poc_waits_for_g0_and_phase_0_needs_the_file_to_have_it(rt: Runtime, acme: Engagement) -> None:
    chosen = with_selection(acme, "acme-wait")
    register(rt, chosen)
    register(rt, acme)
    with pytest.raises(PolicyError, match="acme-wait has not passed G0 yet"):
        operations.start_phase(rt, "acme-wait", Phase.POC, "U0PMACME01")
    with pytest.raises(PolicyError, match="acme-churn has no selection phase in its engagement file"):
        operations.start_phase(rt, "acme-churn", Phase.SELECTION, "U0PMACME01")


def test_the_weekly_report_covers_an_engagement_in_phase_0(rt: Runtime, acme: Engagement) -> None:
    from phasegate.ledger.models import utcnow
    from phasegate.reports import collect, render
    from phasegate.sandbox.standins.blockkit import validate_blocks

    g0(rt, with_selection(acme, "acme-report"))
    result = collect.collect(rt, ["acme-report"], utcnow())
    assert result.failures == {}
    (report,) = result.reports
    assert [m.key for m in report.milestones] == ["data-readiness", "mlops-walkthrough"]
    (gate,) = report.gates
    assert set(gate.pending) == {"Dana Whitfield", "Omar Haddad"}
    assert validate_blocks(render.blocks(report)) == []
    assert "Phase 0: Choosing the vendor, week 1 of 3 planned" in render.markdown(report)


def test_the_cli_shows_g0s_red_flags_and_asks_for_the_waiver(cli: Any, home: Any, acme: Engagement) -> None:
    from helpers import refused

    from phasegate.ledger import phases
    from phasegate.ledger.db import make_engine, sessions
    from phasegate.ledger.models import utcnow
    from phasegate.rules import evidence

    url = f"sqlite:///{home / 'ledger.db'}"  # migrated (the home fixture)
    engine = make_engine(url)
    promised = with_selection(acme, "acme-cli", accuracy_promise="95 % accuracy")
    try:
        with transaction(sessions(engine)) as session:
            engagements.register(session, promised)
            phases.start_phase(session, promised, Phase.SELECTION, requested_by="U0PMACME01", flow_run_id=None,
                               today=utcnow().date())
            snapshot = evidence.collect(promised, Phase.SELECTION, 1, tracker=None, read_json=lambda u, p: (0.0, None),
                                        facts=evidence.LedgerFacts(), now=utcnow())
            gate_id = gates.open_gate(session, snapshot, requested_by="U0PMACME01", flow_run_id=None,
                                      channel=promised.slack_channel).id
    finally:
        engine.dispose()
    shown = cli("gate", "show", str(gate_id)).stdout
    assert "Red flags (GO needs a written waiver):\n    the vendor promises accuracy before seeing our data: “95 % accuracy”" in shown
    assert "Named individuals the vendor commits:\n    Priya Natarajan (vendor lead)" in shown
    refused(cli("gate", "decide", str(gate_id), "go", "--as", "U0SPONSOR1"),
            "GO while exit criteria are not met and a red flag stands needs a written waiver reason",
            "red flag: the vendor promises accuracy")


def test_engagement_inits_template_begins_with_phase_0_without_red_flags() -> None:
    import datetime as dt

    from phasegate.configs.template import engagement_template
    from phasegate.rules.selection import red_flags, selection_evidence

    engagement = parse_engagement(engagement_template("new-thing", today=dt.date(2026, 11, 28)), "f.yaml")
    assert engagement.phases.first() is Phase.SELECTION
    assert {a.side.value for a in engagement.phases.of(Phase.SELECTION).gate.approvers} == {"client"}
    assert red_flags(engagement) == []
    shown = selection_evidence(engagement, Phase.SELECTION)
    assert shown is not None and shown.team == ["Val Vendor (vendor lead)", "Mo Modeller (ML engineer)"]
    assert selection_evidence(engagement, Phase.POC) is None  # the other phases' evidence is as it was


def test_no_waivers_at_g0_refuses_go_past_a_red_flag(rt: Runtime, acme: Engagement) -> None:
    strict = with_changes(with_selection(acme, "acme-strict", models_in_production=0),
                          phases__selection__gate__allow_waivers=False)
    gate_id = g0(rt, strict)
    with pytest.raises(PolicyError, match="GO is refused while exit criteria are not met .*red flag: no production"):
        with transaction(rt.sessions) as session:
            gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.GO, via=Via.SLACK,
                         reason="we like them")
