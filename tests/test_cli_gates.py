"""The `phasegate gate` commands: what they print, and what they record in the ledger. The CLI
fixtures (`home`, `cli`) are in conftest.py; see test_cli.py for how they isolate each test."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from helpers import Invoke, closed_port_url, ledger_of, ok, open_gate, os_operator, refused

from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.configs.schema import Phase
from phasegate.ledger import gates
from phasegate.ledger.db import make_engine, sessions
from phasegate.ledger.models import DecisionRow, GateRow
from phasegate.states import GateState, Outcome, Via

ACME_FILE = ENGAGEMENTS_DIR / "acme-churn.yaml"
SPONSOR, VENDOR_LEAD, PM = "U0SPONSOR1", "U0VENDLEAD", "U0PMACME01"


@pytest.fixture
def cli_ledger_url(home: Path) -> str:
    """The SQLite file the CLI uses for this home, migrated."""
    return f"sqlite:///{home / 'ledger.db'}"  # the `home` fixture made it


@pytest.fixture
def gate_id(cli_ledger_url: str) -> int:
    """An open G1 for acme-churn, requested by the PM, with a phase run Prefect would have to wake."""
    engine = make_engine(cli_ledger_url)
    try:
        return open_gate(sessions(engine), load_engagement(ACME_FILE), flow_run_id=str(uuid.uuid4()))
    finally:
        engine.dispose()


def gate_in_ledger(home: Path, gate_id: int) -> tuple[GateRow, list[DecisionRow]]:
    with ledger_of(home) as session:
        return gates.by_id(session, gate_id), gates.decisions(session, gate_id)


@pytest.mark.parametrize(("command", "args"), [("show", ()), ("decide", ("go", "--as", SPONSOR))])
def test_an_unknown_gate_id_is_refused(cli: Invoke, command: str, args: tuple[str, ...]) -> None:
    assert refused(cli("gate", command, "424242", *args)) == "phasegate: no gate 424242"


def test_usage_errors_are_one_line_from_the_console_script(home: Path, gate_id: int) -> None:
    """Usage errors come from click before any command runs; the installed script turns them into one line."""
    script = Path(sys.executable).parent / "phasegate"
    env = {**os.environ, "PHASEGATE_HOME": str(home), "PREFECT_API_URL": closed_port_url()}
    for args in (["gate", "decide", str(gate_id), "maybe", "--as", SPONSOR], ["gate", "decide"], ["no-such-command"]):
        done = subprocess.run([str(script), *args], capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 2, done
        assert done.stdout == "" and done.stderr.count("\n") == 1 and done.stderr.startswith("phasegate: "), done.stderr
    done = subprocess.run([str(script), "gate", "decide", str(gate_id), "maybe", "--as", SPONSOR],
                          capture_output=True, text=True, env=env, timeout=60)
    assert "'maybe' is not one of" in done.stderr


@pytest.mark.parametrize(("args", "fragment"), [
    (("go", "--as", "U0NOBODY1"), "U0NOBODY1 is not an approver of G1"),
    (("go", "--as", PM), PM),  # the requester
    (("no_go", "--as", SPONSOR), "NO-GO needs a written reason"),
    (("no_go", "--as", SPONSOR, "--reason", "   "), "NO-GO needs a written reason"),
    (("extend", "--as", VENDOR_LEAD), "EXTEND needs a written reason"),
    (("accept", "--as", SPONSOR), "ACCEPT is not an answer at G1"),
], ids=["not-an-approver", "requester", "no-go-without-reason", "no-go-blank-reason", "extend-without-reason",
        "accept-at-g1"])
def test_gate_decide_refusals_record_nothing(cli: Invoke, home: Path, gate_id: int,
                                             args: tuple[str, ...], fragment: str) -> None:
    refused(cli("gate", "decide", str(gate_id), *args), fragment)
    gate, decisions = gate_in_ledger(home, gate_id)
    assert gate.state is GateState.OPEN and decisions == []


def test_gate_decide_counts_towards_quorum_and_decides(cli: Invoke, home: Path, gate_id: int) -> None:
    """acme's G1 needs two approvers including one from each side."""
    assert ok(cli("gate", "decide", str(gate_id), "go", "--as", SPONSOR)) == (
        "acme-churn/G1: answer recorded; the quorum is not met yet")
    assert ok(cli("gate", "decide", str(gate_id), "go", "--as", SPONSOR)) == (
        "unchanged: that answer was already recorded")
    gate, decisions = gate_in_ledger(home, gate_id)
    assert gate.state is GateState.OPEN and len(decisions) == 1

    # the vendor's GO completes the quorum; waking the phase run then fails, Prefect being unreachable
    line = refused(cli("gate", "decide", str(gate_id), "go", "--as", VENDOR_LEAD))
    assert line.startswith("phasegate: decision recorded; the next step starts when the orchestrator is back "
                           "(cannot wake the phase run: the Prefect API is not reachable (ConnectError; ")

    gate, decisions = gate_in_ledger(home, gate_id)
    assert gate.state is GateState.DECIDED and gate.outcome is Outcome.GO
    assert [(d.approver, d.outcome, d.via) for d in decisions] == [
        (SPONSOR, Outcome.GO, Via.CLI), (VENDOR_LEAD, Outcome.GO, Via.CLI)]
    shown = ok(cli("gate", "show", str(gate_id)))
    assert "decided → GO" in shown and f"{VENDOR_LEAD} (vendor) GO via cli" in shown


def test_gate_decide_records_who_ran_it_beside_the_id_typed(cli: Invoke, home: Path, gate_id: int) -> None:
    """`--as` is only a claim; the OS user and host that ran the command are kept and shown with it."""
    operator = os_operator()
    ok(cli("gate", "decide", str(gate_id), "go", "--as", SPONSOR))
    _, [decision] = gate_in_ledger(home, gate_id)
    assert (decision.approver, decision.operator) == (SPONSOR, operator)
    shown = ok(cli("gate", "show", str(gate_id)))
    assert f"{SPONSOR} (client) GO via cli (recorded from the CLI by {operator})" in shown


def test_the_operator_is_the_real_account_whatever_logname_and_user_say(home: Path, gate_id: int) -> None:
    """$LOGNAME and $USER are the caller's to set: taken from them, one shell could be recorded as the
    sponsor's account for one answer and the vendor lead's for the next, both sides of a quorum."""
    script = Path(sys.executable).parent / "phasegate"
    env = {**os.environ, "PHASEGATE_HOME": str(home), "PREFECT_API_URL": closed_port_url(),
           **dict.fromkeys(("LOGNAME", "USER", "LNAME", "USERNAME"), SPONSOR)}
    done = subprocess.run([str(script), "gate", "decide", str(gate_id), "go", "--as", SPONSOR],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    _, [decision] = gate_in_ledger(home, gate_id)
    assert decision.operator == os_operator() and SPONSOR not in (decision.operator or "")


def test_gate_decide_is_refused_when_the_file_turns_cli_answers_off(cli: Invoke, home: Path, cli_ledger_url: str,
                                                                    tmp_path: Path) -> None:
    data = yaml.safe_load(ACME_FILE.read_text(encoding="utf-8"))
    data["phases"]["poc"]["gate"]["cli_answers"] = False
    (tmp_path / "acme.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    engine = make_engine(cli_ledger_url)
    try:
        gate_id = open_gate(sessions(engine), load_engagement(tmp_path / "acme.yaml"))
    finally:
        engine.dispose()
    refused(cli("gate", "decide", str(gate_id), "go", "--as", SPONSOR),
            "G1 takes no answers from the CLI (cli_answers: false in the engagement file); answer in Slack")
    gate, decisions = gate_in_ledger(home, gate_id)
    assert gate.state is GateState.OPEN and decisions == []


@pytest.fixture
def failing_gate_id(cli_ledger_url: str) -> int:
    """An open G1 for acme-churn whose frozen evidence fails one exit criterion."""
    from phasegate.ledger import engagements, phases
    from phasegate.ledger.db import transaction
    from phasegate.ledger.models import utcnow
    from phasegate.rules.evidence import CriterionEvidence, Result, Snapshot

    acme = load_engagement(ACME_FILE)
    engine = make_engine(cli_ledger_url)
    try:
        with transaction(sessions(engine)) as session:
            engagements.register(session, acme)
            phases.start_phase(session, acme, Phase.POC, requested_by=acme.pm_slack_user, flow_run_id=None,
                               today=acme.start_date)
            failing = CriterionEvidence(label="f1 >= 0.85", result=Result.FAIL, seen="0.8")
            snapshot = Snapshot(engagement_id=acme.id, phase=Phase.POC, timebox=1, collected_at=utcnow(),
                                milestones=[], metrics=[], criteria=[failing])
            return gates.open_gate(session, snapshot, requested_by=acme.pm_slack_user, flow_run_id=None,
                                   channel=acme.slack_channel).id
    finally:
        engine.dispose()


def test_gate_decide_go_past_a_failing_criterion_needs_reason_as_waiver(
        cli: Invoke, home: Path, failing_gate_id: int) -> None:
    refused(cli("gate", "decide", str(failing_gate_id), "go", "--as", SPONSOR),
            "GO while exit criteria are not met needs a written waiver reason (f1 >= 0.85: fail (seen 0.8))")
    assert gate_in_ledger(home, failing_gate_id)[1] == []
    ok(cli("gate", "decide", str(failing_gate_id), "go", "--as", SPONSOR, "--reason", "pilot scope only"))
    _, decisions = gate_in_ledger(home, failing_gate_id)
    assert [(d.outcome, d.reason) for d in decisions] == [(Outcome.GO, "pilot scope only")]
