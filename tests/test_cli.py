"""The `phasegate` command: what it prints, and that every refusal is one `phasegate: ...` line on
stderr with a non-zero exit, never a traceback.

Each test gets its own PHASEGATE_HOME; with PHASEGATE_DATABASE_URL unset the CLI creates the
SQLite ledger `<home>/ledger.db` on first use. PREFECT_API_URL points at a closed port, so the
Prefect parts of a command are unreachable (and no temporary Prefect server is started).
COLUMNS is pinned to 80, the width rich assumes when the output is not a terminal, so the
results do not depend on the terminal pytest runs in.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from configs.loader import ENGAGEMENTS_DIR, load_engagement
from configs.schema import Phase
from phasegate.cli import app
from phasegate.evidence import CriterionEvidence, Snapshot
from phasegate.evidence import Result as Check
from phasegate.ledger import engagements, gates
from phasegate.ledger.db import make_engine, sessions, transaction, upgrade
from phasegate.ledger.models import DecisionRow, GateRow
from phasegate.states import Channel, GateState, Outcome

ACME_FILE = ENGAGEMENTS_DIR / "acme-churn.yaml"
SPONSOR, TECH_LEAD, VENDOR_LEAD, PM = "U0SPONSOR1", "U0TECHLEAD", "U0VENDLEAD", "U0PMACME01"

Invoke = Callable[..., Result]


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PHASEGATE_DATABASE_URL", raising=False)
    monkeypatch.setenv("PHASEGATE_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def cli(home: Path) -> Invoke:
    runner = CliRunner(env={"PHASEGATE_HOME": str(home), "PHASEGATE_DATABASE_URL": None,
                            "PREFECT_API_URL": closed_port_url(), "COLUMNS": "80"})

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args))

    return invoke


def ok(result: Result) -> str:
    """stdout of a successful command, with rich's line wrapping undone."""
    assert result.exception is None, repr(result.exception)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return " ".join(result.stdout.split())


def squeezed(text: str) -> str:
    return "".join(text.split())


def refused(result: Result, *fragments: str) -> str:
    """The one `phasegate: ...` line of a refused command, which must mention every fragment."""
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("phasegate: "), result.output
    text = " ".join(line.strip() for line in lines)
    for fragment in fragments:
        assert fragment in text
    assert len(lines) == 1, f"the message spans {len(lines)} lines:\n{result.stderr}"
    return lines[0]


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# --- engagements --------------------------------------------------------------------------------

def test_engagement_create_registers_and_then_reports_unchanged(cli: Invoke, home: Path) -> None:
    assert ok(cli("engagement", "create", str(ACME_FILE))) == "acme-churn: registered"
    assert (home / "ledger.db").is_file()
    assert ok(cli("engagement", "create", str(ACME_FILE))) == "acme-churn: already registered, unchanged"


def test_engagement_list_shows_the_registered_engagement(cli: Invoke) -> None:
    assert "acme-churn" not in ok(cli("engagement", "list"))
    ok(cli("engagement", "create", str(ACME_FILE)))
    listing = ok(cli("engagement", "list"))
    assert "acme-churn" in listing and "ACME churn prediction" in listing and "registered" in listing


def test_engagement_show_lists_the_phases(cli: Invoke) -> None:
    ok(cli("engagement", "create", str(ACME_FILE)))
    shown = ok(cli("engagement", "show", "acme-churn"))
    assert "ACME churn prediction (acme-churn)" in shown
    assert "vendor Northwind ML" in shown
    for title, weeks in (("Phase 1: Discovery and PoC", 8), ("Phase 2: Development and iteration", 16),
                         ("Phase 3: Transition and handover", 5)):
        assert f"{title}: planned {weeks} weeks" in shown


def test_engagement_create_of_a_missing_file(cli: Invoke, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert refused(cli("engagement", "create", str(missing))) == f"phasegate: {missing}: no such file"


def test_engagement_create_of_invalid_yaml(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: acme-churn\nname: [unclosed\nvendor: Northwind ML\n", encoding="utf-8")
    refused(cli("engagement", "create", str(path)), f"{path}: invalid YAML at line 3, column 7")


def test_engagement_create_prints_every_problem_one_per_line(cli: Invoke, tmp_path: Path) -> None:
    data = yaml.safe_load(ACME_FILE.read_text(encoding="utf-8"))
    data["colour"] = "blue"
    data["pm_slack_user"] = "dana"
    data["timezone"] = "Mars/Olympus"
    path = write_yaml(tmp_path / "bad.yaml", data)
    result = cli("engagement", "create", str(path))
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1
    assert "Traceback" not in result.output
    text = " ".join(result.stderr.split())
    for problem in ("colour: unknown key", "pm_slack_user: must be a Slack user id", "timezone: unknown timezone"):
        assert f"{path}: {problem}" in text
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, f"3 problems printed on {len(lines)} lines:\n{result.stderr}"
    assert all(line.count(f"{path}: ") == 1 for line in lines)
    assert lines[-1].startswith("phasegate: ")
    assert ok(cli("engagement", "list")).count("acme-churn") == 0


def test_engagement_show_of_an_unknown_engagement(cli: Invoke) -> None:
    refused(cli("engagement", "show", "no-such-engagement"), "no engagement 'no-such-engagement'")


# --- evidence ------------------------------------------------------------------------------------

def test_evidence_attest_is_refused_for_a_milestone_that_takes_jira_evidence(cli: Invoke) -> None:
    ok(cli("engagement", "create", str(ACME_FILE)))
    refused(cli("evidence", "attest", "acme-churn", "poc", "data-readiness", "--as", SPONSOR),
            "milestone data-readiness takes its evidence from Jira, not from an attestation")


def test_evidence_attest_is_recorded_for_a_milestone_that_takes_attestations(cli: Invoke) -> None:
    ok(cli("engagement", "create", str(ACME_FILE)))
    printed = ok(cli("evidence", "attest", "acme-churn", "handover", "pair-programming", "--as", SPONSOR))
    assert printed == f"acme-churn pair-programming: attested by {SPONSOR}"


def test_evidence_metric_is_refused_for_an_unknown_metric(cli: Invoke) -> None:
    ok(cli("engagement", "create", str(ACME_FILE)))
    refused(cli("evidence", "metric", "acme-churn", "accuracy", "0.9", "--as", SPONSOR),
            "acme-churn has no metric 'accuracy'")


def test_evidence_metric_is_recorded_for_a_manual_metric(cli: Invoke) -> None:
    ok(cli("engagement", "create", str(ENGAGEMENTS_DIR / "globex-forecast.yaml")))
    printed = ok(cli("evidence", "metric", "globex-forecast", "data_quality_score", "0.93", "--as", "U0LEEPARK1"))
    assert printed == "globex-forecast data_quality_score = 0.93"


def test_evidence_metric_is_refused_for_a_metric_read_from_its_source(cli: Invoke) -> None:
    """acme's f1 is read over HTTP; a hand-typed value would be recorded and then silently ignored."""
    ok(cli("engagement", "create", str(ACME_FILE)))
    refused(cli("evidence", "metric", "acme-churn", "f1", "0.99", "--as", SPONSOR), "f1")


# --- db and help -------------------------------------------------------------------------------

def test_db_upgrade_reports_the_ledger_up_to_date(cli: Invoke, home: Path) -> None:
    printed = ok(cli("db", "upgrade"))
    # compared without whitespace: rich folds the long tmp path at the console width
    assert squeezed(printed) == squeezed(f"ledger at sqlite:///{home / 'ledger.db'} is up to date")
    assert (home / "ledger.db").is_file()
    assert ok(cli("db", "upgrade")) == printed


@pytest.mark.parametrize(("group", "commands"), [
    ((), ("engagement", "phase", "gate", "evidence", "db", "up", "demo")),
    (("engagement",), ("create", "list", "show")),
    (("phase",), ("start", "review")),
    (("gate",), ("list", "show", "decide")),
    (("evidence",), ("attest", "metric")),
    (("db",), ("upgrade",)),
], ids=["top", "engagement", "phase", "gate", "evidence", "db"])
def test_help_works_for_every_command_group(cli: Invoke, group: tuple[str, ...], commands: tuple[str, ...]) -> None:
    printed = ok(cli(*group, "--help"))
    assert "Usage:" in printed
    for command in commands:
        assert command in printed


# --- gates ----------------------------------------------------------------------------------------

@pytest.fixture
def cli_ledger_url(home: Path) -> str:
    """The SQLite file the CLI uses for this home, migrated."""
    url = f"sqlite:///{home / 'ledger.db'}"
    upgrade(url)
    return url


@pytest.fixture
def gate_id(cli_ledger_url: str) -> int:
    """An open G1 for acme-churn, requested by the PM, with a phase run Prefect would have to wake."""
    acme = load_engagement(ACME_FILE)
    engine = make_engine(cli_ledger_url)
    with transaction(sessions(engine)) as session:
        engagements.register(session, acme)
        engagements.start_phase(session, acme, Phase.POC, requested_by=acme.pm_slack_user, flow_run_id=None,
                                today=acme.start_date)
        snapshot = Snapshot(engagement_id=acme.id, phase=Phase.POC, timebox=1,
                            collected_at=dt.datetime.now(dt.UTC), milestones=[], metrics=[], criteria=[])
        gate = gates.open_gate(session, snapshot, requested_by=acme.pm_slack_user,
                               flow_run_id=str(uuid.uuid4()), channel=acme.slack_channel)
        gate_id = gate.id
    engine.dispose()
    return gate_id


@pytest.fixture
def failing_gate_id(cli_ledger_url: str) -> int:
    """An open G1 for acme-churn whose frozen evidence fails one exit criterion."""
    acme = load_engagement(ACME_FILE)
    engine = make_engine(cli_ledger_url)
    with transaction(sessions(engine)) as session:
        engagements.register(session, acme)
        engagements.start_phase(session, acme, Phase.POC, requested_by=acme.pm_slack_user, flow_run_id=None,
                                today=acme.start_date)
        failing = CriterionEvidence(label="f1 >= 0.85", result=Check.FAIL, seen="0.8")
        snapshot = Snapshot(engagement_id=acme.id, phase=Phase.POC, timebox=1,
                            collected_at=dt.datetime.now(dt.UTC), milestones=[], metrics=[], criteria=[failing])
        gate_id = gates.open_gate(session, snapshot, requested_by=acme.pm_slack_user, flow_run_id=None,
                                  channel=acme.slack_channel).id
    engine.dispose()
    return gate_id


def test_gate_decide_go_past_a_failing_criterion_needs_reason_as_waiver(
        cli: Invoke, cli_ledger_url: str, failing_gate_id: int) -> None:
    refused(cli("gate", "decide", str(failing_gate_id), "go", "--as", SPONSOR),
            "GO while exit criteria are not met needs a written waiver reason (f1 >= 0.85: fail (seen 0.8))")
    assert gate_in_ledger(cli_ledger_url, failing_gate_id)[1] == []
    ok(cli("gate", "decide", str(failing_gate_id), "go", "--as", SPONSOR, "--reason", "pilot scope only"))
    _, decisions = gate_in_ledger(cli_ledger_url, failing_gate_id)
    assert [(d.outcome, d.reason) for d in decisions] == [(Outcome.GO, "pilot scope only")]


def gate_in_ledger(cli_ledger_url: str, gate_id: int) -> tuple[GateRow, list[DecisionRow]]:
    engine = make_engine(cli_ledger_url)
    try:
        with transaction(sessions(engine)) as session:
            return gates.by_id(session, gate_id), gates.decisions(session, gate_id)
    finally:
        engine.dispose()


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
def test_gate_decide_refusals_record_nothing(cli: Invoke, cli_ledger_url: str, gate_id: int,
                                             args: tuple[str, ...], fragment: str) -> None:
    refused(cli("gate", "decide", str(gate_id), *args), fragment)
    gate, decisions = gate_in_ledger(cli_ledger_url, gate_id)
    assert gate.state is GateState.OPEN and decisions == []


def test_gate_decide_counts_towards_quorum_and_decides(cli: Invoke, cli_ledger_url: str, gate_id: int) -> None:
    """acme's G1 needs two approvers including one from each side."""
    assert ok(cli("gate", "decide", str(gate_id), "go", "--as", SPONSOR)) == (
        "acme-churn/G1: answer recorded; the quorum is not met yet")
    assert ok(cli("gate", "decide", str(gate_id), "go", "--as", SPONSOR)) == (
        "unchanged: that answer was already recorded")
    gate, decisions = gate_in_ledger(cli_ledger_url, gate_id)
    assert gate.state is GateState.OPEN and len(decisions) == 1

    # the vendor's GO completes the quorum; waking the phase run then fails, Prefect being unreachable
    line = refused(cli("gate", "decide", str(gate_id), "go", "--as", VENDOR_LEAD))
    assert line.startswith("phasegate: decision recorded, but ")

    gate, decisions = gate_in_ledger(cli_ledger_url, gate_id)
    assert gate.state is GateState.DECIDED and gate.outcome is Outcome.GO
    assert [(d.approver, d.outcome, d.channel) for d in decisions] == [
        (SPONSOR, Outcome.GO, Channel.CLI), (VENDOR_LEAD, Outcome.GO, Channel.CLI)]
    shown = ok(cli("gate", "show", str(gate_id)))
    assert "decided → GO" in shown and f"{VENDOR_LEAD} (vendor) GO via cli" in shown
