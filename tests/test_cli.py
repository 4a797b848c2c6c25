"""The `phasegate` command: what it prints, and that every refusal is one `phasegate: ...` line on
stderr with a non-zero exit, never a traceback.

Each test gets its own PHASEGATE_HOME; with PHASEGATE_DATABASE_URL unset the CLI creates the
SQLite ledger `<home>/ledger.db` on first use. PREFECT_API_URL points at a closed port, so the
Prefect parts of a command are unreachable (and no temporary Prefect server is started).
COLUMNS is pinned to 80, the width rich assumes when the output is not a terminal, so the
results do not depend on the terminal pytest runs in. (The fixtures `home` and `cli` are in
conftest.py; the gate commands are tested in test_cli_gates.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from helpers import Invoke, closed_port_url, ledger_of, ok, open_gate, os_operator, refused, squeezed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from phasegate.cli.main import guarded
from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.configs.schema import Phase
from phasegate.ledger import engagements, phases
from phasegate.ledger.db import make_engine, sessions, transaction
from phasegate.ledger.models import AttestationRow, EngagementRow, MetricSubmissionRow
from phasegate.orchestration.runtime import Runtime
from phasegate.states import EngagementState, Via

ACME_FILE = ENGAGEMENTS_DIR / "acme-churn.yaml"
SPONSOR = "U0SPONSOR1"


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# --- engagements --------------------------------------------------------------------------------

def test_engagement_create_registers_and_then_reports_unchanged(cli: Invoke, home: Path) -> None:
    assert ok(cli("engagement", "create", str(ACME_FILE))) == "acme-churn: registered"
    with ledger_of(home) as session:
        row = engagements.get(session, "acme-churn")
        assert (row.name, row.state) == ("ACME churn prediction", EngagementState.REGISTERED)
        assert engagements.config_of(row) == load_engagement(ACME_FILE)
    assert ok(cli("engagement", "create", str(ACME_FILE))) == "acme-churn: already registered, unchanged"
    with ledger_of(home) as session:
        assert [r.id for r in engagements.all_rows(session)] == ["acme-churn"]


def test_engagement_list_shows_the_registered_engagement(cli: Invoke) -> None:
    assert "acme-churn" not in ok(cli("engagement", "list"))
    ok(cli("engagement", "create", str(ACME_FILE)))
    listing = ok(cli("engagement", "list"))
    assert "acme-churn" in listing and "ACME churn prediction" in listing and "registered" in listing


def test_status_shows_engagements_in_progress_a_page_at_a_time(cli: Invoke, home: Path) -> None:
    template = load_engagement(ACME_FILE).model_dump(mode="json")
    for n in range(4):
        data = template | {"id": f"eng-{n}", "name": f"Engagement {n}", "slack_channel": f"C0ENG{n:05d}"}
        ok(cli("engagement", "create", str(write_yaml(home / f"eng-{n}.yaml", data))))
    with ledger_of(home) as session:
        config = engagements.config_of(engagements.get(session, "eng-0"))
        phases.start_phase(session, config, Phase.POC, requested_by=config.pm_slack_user, flow_run_id=None,
                           today=config.start_date)
        engagements.close(session, "eng-0", EngagementState.CLOSED, "NO-GO at G1")
    default = ok(cli("status"))
    assert "eng-0" not in default and all(f"eng-{n}" in default for n in (1, 2, 3))
    assert squeezed("not shown: 1 finished (--all)") in squeezed(default)
    first = ok(cli("status", "--limit", "2"))
    assert "eng-1" in first and "eng-2" in first and "eng-3" not in first
    assert squeezed("2 shown; not shown: 1 more in progress (--limit N), 1 finished (--all)") in squeezed(first)
    everything = ok(cli("status", "--all"))
    assert all(f"eng-{n}" in everything for n in range(4)) and "not shown" not in everything
    document = json.loads(ok(cli("status", "--json", "--limit", "1")))
    assert [e["id"] for e in document["engagements"]] == ["eng-1"]
    assert (document["matching"], document["finished_not_shown"]) == (3, 1)


def test_engagement_and_gate_lists_show_a_page_and_say_how_many_more(cli: Invoke, home: Path) -> None:
    template = load_engagement(ACME_FILE)
    ok(cli("engagement", "list"))  # creates the ledger; the gates are then written straight into it
    engine = make_engine(f"sqlite:///{home / 'ledger.db'}")
    for n in range(3):
        open_gate(sessions(engine), template.model_copy(update={"id": f"eng-{n}", "slack_channel": f"C0ENG{n:05d}"}))
    engine.dispose()
    listed = ok(cli("engagement", "list", "--limit", "2"))
    assert "eng-0" in listed and "eng-1" in listed and "eng-2" not in listed
    assert squeezed("the first 2 of 3 by id (--limit N, --all)") in squeezed(listed)
    assert "eng-2" in ok(cli("engagement", "list", "--all"))
    newest = ok(cli("gate", "list", "--limit", "1"))
    assert "eng-2" in newest and "eng-0" not in newest
    assert squeezed("the newest 1 of 3 (--limit N, --all)") in squeezed(newest)
    everything = ok(cli("gate", "list"))
    assert all(f"eng-{n}" in everything for n in range(3)) and "newest" not in everything


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


def test_engagement_create_prints_every_problem_one_per_line(cli: Invoke, home: Path, tmp_path: Path) -> None:
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
    with ledger_of(home) as session:
        assert engagements.all_rows(session) == []


def test_engagement_create_of_yaml_nested_600_deep_is_one_line(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("id: acme-churn\nname: " + "[" * 600 + "x" + "]" * 600 + "\n", encoding="utf-8")
    refused(cli("engagement", "create", str(path)), f"{path}: nested more than 50 levels deep at line 2")


def test_engagement_create_of_a_name_longer_than_its_column_names_the_field(cli: Invoke, tmp_path: Path) -> None:
    data = yaml.safe_load(ACME_FILE.read_text(encoding="utf-8"))
    data["name"] = "n" * 201
    path = write_yaml(tmp_path / "long.yaml", data)
    refused(cli("engagement", "create", str(path)), f"{path}: name: String should have at most 200 characters")


@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
def test_a_ledger_data_error_is_reported_as_what_it_is(ledger_url: str, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """PostgreSQL refusing a value (here a name past its column, written around the schema) is
    a data problem; the CLI used to blame a missing `db upgrade` for it."""
    monkeypatch.setenv("PHASEGATE_DATABASE_URL", ledger_url)
    monkeypatch.setenv("PREFECT_API_URL", closed_port_url())

    def write_a_long_name(rt: Runtime) -> None:
        with transaction(rt.sessions) as session:
            session.add(EngagementRow(id="too-long", name="n" * 300, config={}, config_digest="0" * 64))

    with pytest.raises(typer.Exit):
        guarded(write_a_long_name)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("phasegate: the ledger refused a value: ")
    assert "value too long for type character varying(200)" in lines[0]
    assert "db upgrade" not in lines[0]


def test_engagement_show_of_an_unknown_engagement(cli: Invoke) -> None:
    refused(cli("engagement", "show", "no-such-engagement"), "no engagement 'no-such-engagement'")


# --- evidence ------------------------------------------------------------------------------------

def test_evidence_attest_is_refused_for_a_milestone_that_takes_jira_evidence(cli: Invoke, home: Path) -> None:
    ok(cli("engagement", "create", str(ACME_FILE)))
    refused(cli("evidence", "attest", "acme-churn", "poc", "data-readiness", "--as", SPONSOR),
            "milestone data-readiness takes its evidence from Jira, not from an attestation")
    with ledger_of(home) as session:
        assert session.scalars(select(AttestationRow)).all() == []


def test_evidence_attest_is_recorded_for_a_milestone_that_takes_attestations(cli: Invoke, home: Path) -> None:
    ok(cli("engagement", "create", str(ACME_FILE)))
    printed = ok(cli("evidence", "attest", "acme-churn", "handover", "pair-programming", "--as", SPONSOR,
                     "--note", "sessions logged"))
    assert printed == f"acme-churn pair-programming: attested by {SPONSOR}"
    with ledger_of(home) as session:
        rows = session.scalars(select(AttestationRow)).all()
        assert [(r.engagement_id, r.phase, r.milestone, r.attested_by, r.via, r.note) for r in rows] == [
            ("acme-churn", Phase.HANDOVER, "pair-programming", SPONSOR, Via.CLI, "sessions logged")]
    again = ok(cli("evidence", "attest", "acme-churn", "handover", "pair-programming", "--as", SPONSOR))
    assert again == f"acme-churn pair-programming: already attested by {SPONSOR}; nothing recorded"
    with ledger_of(home) as session:
        assert len(session.scalars(select(AttestationRow)).all()) == 1


def test_evidence_metric_is_refused_for_an_unknown_metric(cli: Invoke, home: Path) -> None:
    ok(cli("engagement", "create", str(ACME_FILE)))
    refused(cli("evidence", "metric", "acme-churn", "accuracy", "0.9", "--as", SPONSOR),
            "acme-churn has no metric 'accuracy'")
    with ledger_of(home) as session:
        assert session.scalars(select(MetricSubmissionRow)).all() == []


def test_evidence_metric_is_recorded_for_a_manual_metric(cli: Invoke, home: Path) -> None:
    ok(cli("engagement", "create", str(ENGAGEMENTS_DIR / "globex-forecast.yaml")))
    printed = ok(cli("evidence", "metric", "globex-forecast", "data_quality_score", "0.93", "--as", "U0LEEPARK1"))
    assert printed == "globex-forecast data_quality_score = 0.93"
    with ledger_of(home) as session:
        rows = session.scalars(select(MetricSubmissionRow)).all()
        assert [(r.engagement_id, r.metric, r.value, r.submitted_by) for r in rows] == [
            ("globex-forecast", "data_quality_score", 0.93, "U0LEEPARK1")]


GLOBEX_FILE = ENGAGEMENTS_DIR / "globex-forecast.yaml"


def metric_rows(home: Path) -> list[MetricSubmissionRow]:
    engine = make_engine(f"sqlite:///{home / 'ledger.db'}")
    try:
        with transaction(sessions(engine)) as session:
            return list(session.scalars(select(MetricSubmissionRow).order_by(MetricSubmissionRow.id)))
    finally:
        engine.dispose()


@pytest.mark.parametrize(("raw", "fragment"), [
    ("nan", "'nan' is not a finite number"),
    ("inf", "'inf' is not a finite number"),
    ("1e999", "'1e999' is not a finite number"),
    ("93", "93 is outside data_quality_score's declared range [0, 1]"),
    ("0.9\nand more", "is not a decimal number such as 0.93"),
], ids=["nan", "inf", "overflow", "out-of-range", "newline"])
def test_evidence_metric_refuses_what_is_not_a_score(cli: Invoke, home: Path, raw: str, fragment: str) -> None:
    ok(cli("engagement", "create", str(GLOBEX_FILE)))
    refused(cli("evidence", "metric", "globex-forecast", "data_quality_score", "--as", "U0LEEPARK1", "--", raw),
            fragment)
    assert metric_rows(home) == []


def test_evidence_metric_only_from_the_pm_or_an_approver(cli: Invoke, home: Path) -> None:
    ok(cli("engagement", "create", str(GLOBEX_FILE)))
    refused(cli("evidence", "metric", "globex-forecast", "data_quality_score", "0.9", "--as", SPONSOR),
            f"{SPONSOR} is neither the PM nor an approver of globex-forecast")
    ok(cli("evidence", "metric", "globex-forecast", "data_quality_score", "0.9", "--as", "U0PMGLOBEX"))
    assert [r.submitted_by for r in metric_rows(home)] == ["U0PMGLOBEX"]


def test_evidence_metric_records_who_typed_what_and_where(cli: Invoke, home: Path) -> None:
    ok(cli("engagement", "create", str(GLOBEX_FILE)))
    ok(cli("evidence", "metric", "globex-forecast", "data_quality_score", "0.9400", "--as", "U0LEEPARK1"))
    [row] = metric_rows(home)
    assert (row.raw_value, row.value, row.submitted_by) == ("0.9400", 0.94, "U0LEEPARK1")
    assert row.operator == os_operator()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.text(max_size=30), st.floats().map(repr),
                     st.from_regex(r"[+-]?[0-9]{0,3}\.?[0-9]{0,4}([eE][+-]?[0-9]{1,3})?", fullmatch=True)))
def test_any_metric_text_through_the_cli_is_refused_cleanly_or_recorded_exactly(cli: Invoke, home: Path,
                                                                                 raw: str) -> None:
    with ledger_of(home) as session:
        created = session.get(EngagementRow, "globex-forecast") is not None
    if not created:
        ok(cli("engagement", "create", str(GLOBEX_FILE)))
    before = len(metric_rows(home))
    result = cli("evidence", "metric", "globex-forecast", "data_quality_score", "--as", "U0LEEPARK1", "--", raw)
    if result.exit_code != 0:
        refused(result)
        assert len(metric_rows(home)) == before
        return
    ok(result)
    last = metric_rows(home)[-1]
    assert (last.raw_value, last.value) == (raw, float(raw))


def test_evidence_metric_is_refused_for_a_metric_read_from_its_source(cli: Invoke, home: Path) -> None:
    """acme's f1 is read over HTTP; a hand-typed value would be recorded and then silently ignored."""
    ok(cli("engagement", "create", str(ACME_FILE)))
    refused(cli("evidence", "metric", "acme-churn", "f1", "0.99", "--as", SPONSOR), "f1")
    with ledger_of(home) as session:
        assert engagements.submitted_metrics(session, "acme-churn") == {}


# --- db and help -------------------------------------------------------------------------------

def test_db_upgrade_reports_the_ledger_up_to_date(cli: Invoke, home: Path) -> None:
    printed = ok(cli("db", "upgrade"))
    # compared without whitespace: rich folds the long tmp path at the console width
    assert squeezed(printed) == squeezed(f"ledger at sqlite:///{home / 'ledger.db'} is up to date")
    with ledger_of(home) as session:
        assert engagements.all_rows(session) == []  # the schema is there, and empty
    assert ok(cli("db", "upgrade")) == printed


@pytest.mark.parametrize(("group", "commands"), [
    ((), ("engagement", "phase", "gate", "evidence", "audit", "db", "up", "demo")),
    (("engagement",), ("create", "list", "show")),
    (("phase",), ("start", "review")),
    (("gate",), ("list", "show", "decide")),
    (("evidence",), ("attest", "metric")),
    (("audit",), ("verify", "export")),
    (("db",), ("upgrade",)),
], ids=["top", "engagement", "phase", "gate", "evidence", "audit", "db"])
def test_help_works_for_every_command_group(cli: Invoke, group: tuple[str, ...], commands: tuple[str, ...]) -> None:
    printed = ok(cli(*group, "--help"))
    assert "Usage:" in printed
    for command in commands:
        assert command in printed


def test_crash_detection_with_prefect_down_is_one_line(cli: Invoke) -> None:
    refused(cli("crash-detection"), "cannot install the crash-detection automation", "Prefect API is not reachable")
