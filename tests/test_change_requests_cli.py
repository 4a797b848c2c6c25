"""`phasegate cr ...` and `phasegate engagement apply` on a running engagement, against the SQLite
ledger the CLI creates (Prefect unreachable, as in test_cli: the request is filed all the same)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from helpers import SetRuns, ledger_of
from sqlalchemy import func, select
from test_cli import ACME_FILE, Invoke, ok, refused, write_yaml

from phasegate.configs.loader import load_engagement
from phasegate.configs.schema import Phase
from phasegate.ledger import change_requests as crs
from phasegate.ledger import engagements, phases
from phasegate.ledger.db import make_engine, sessions, transaction
from phasegate.ledger.models import AuditEventRow, ChangeRequestRow
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import ChangeRequestState, RunHealth

PM, SPONSOR, VENDOR_LEAD = "U0PMACME01", "U0SPONSOR1", "U0VENDLEAD"


def start_poc(home: Path) -> None:
    """What the phase flow's first steps record: the PoC's run and timebox, and the first baseline."""
    engine = make_engine(f"sqlite:///{home / 'ledger.db'}")
    engagement = load_engagement(ACME_FILE)
    with transaction(sessions(engine)) as session:
        phases.start_phase(session, engagement, Phase.POC, requested_by=PM, flow_run_id=None,
                           today=dt.date(2026, 8, 3))
        engagements.record_baseline(session, "acme-churn", {
            "phases": {p.value: {"planned_weeks": engagement.phases.of(p).planned_weeks,
                                 "milestones": [m.key for m in engagement.phases.of(p).milestones]} for p in engagement.phases.present()},
            "budget": engagement.budget.model_dump(mode="json")})
    engine.dispose()


def ledger_counts(home: Path) -> tuple[int, int]:
    engine = make_engine(f"sqlite:///{home / 'ledger.db'}")
    with transaction(sessions(engine)) as session:
        result = (session.scalar(select(func.count()).select_from(ChangeRequestRow)) or 0,
                  session.scalar(select(func.count()).select_from(AuditEventRow)) or 0)
    engine.dispose()
    return result


def running(cli: Invoke, home: Path) -> None:
    ok(cli("engagement", "create", str(ACME_FILE)))
    start_poc(home)


def test_submit_from_a_file_decide_and_export_the_log(cli: Invoke, home: Path, tmp_path: Path) -> None:
    running(cli, home)
    request = write_yaml(tmp_path / "cr.yaml", {"title": "Explainability report", "rationale": "Asked by the board",
                                                "scope_added": ["shap-report"], "effort_days": 6,
                                                "schedule_days": 7, "cost": 65000})
    result = cli("cr", "submit", "acme-churn", "--as", PM, "--file", str(request))
    shown = ok(result)
    assert "acme-churn/CR-1: filed and assessed" in shown
    assert "over budget by 5,000 EUR" in shown and "slips by 7 days" in shown
    assert "its approval flow did not start" in result.stderr  # Prefect is down; the request is kept
    assert "quorum is not met yet" in ok(cli("cr", "decide", "acme-churn", "1", "approve", "--as", SPONSOR))
    refused(cli("cr", "decide", "acme-churn", "1", "approve", "--as", PM), "U0PMACME01 is not an approver")
    # No prompt was posted and no flow run started, so there is nothing to redraw or wake.
    assert ok(cli("cr", "decide", "acme-churn", "1", "approve", "--as", VENDOR_LEAD)) == \
        "acme-churn/CR-1: approved, baseline v2"
    assert "approved" in ok(cli("cr", "list", "acme-churn")) and "v2" in ok(cli("cr", "list", "acme-churn"))
    shown = ok(cli("cr", "show", "acme-churn", "1"))
    assert "Priya Natarajan (U0VENDLEAD, vendor) APPROVE via cli" in shown and "cost 65,000 EUR" in shown
    csv_log = cli("cr", "log", "acme-churn", "--format", "csv").stdout.splitlines()
    assert csv_log[0].startswith("number,title,phase,state") and csv_log[1].startswith(
        "CR-1,Explainability report,poc,approved,U0PMACME01,cli")
    markdown = cli("cr", "log", "acme-churn").stdout
    assert markdown.startswith("# Change log: ACME churn prediction") and "| CR-1 | Explainability report |" in markdown


def test_bad_input_is_one_line_and_writes_nothing(cli: Invoke, home: Path, tmp_path: Path) -> None:
    running(cli, home)
    before = ledger_counts(home)
    refused(cli("cr", "submit", "acme-churn", "--as", PM, "--title", "x", "--effort-days", "-2"),
            "effort_days: must not be negative")
    refused(cli("cr", "submit", "acme-churn", "--as", PM, "--title", "  "), "title: a change request needs a title")
    refused(cli("cr", "submit", "acme-churn", "--as", PM, "--title", "t" * 151), "at most 150 characters")
    refused(cli("cr", "submit", "nope", "--as", PM, "--title", "x"), "no engagement 'nope'")
    refused(cli("cr", "submit", "acme-churn", "--as", PM, "--file", str(write_yaml(tmp_path / "b.yaml", {"titel": "x"}))),
            "titel: unknown key")
    assert ledger_counts(home) == before


def test_a_file_field_of_the_wrong_type_is_refused_not_coerced(cli: Invoke, home: Path, tmp_path: Path) -> None:
    """The file is read as the Slack form is (rules.change_fields): an object is not filed as its repr,
    `true` is not a cost of 1, 1.5 days is not 1, and a text of scope items is not one item per letter."""
    running(cli, home)
    before = ledger_counts(home)
    for n, (fields, problem) in enumerate([
        ({"title": {"text": "More data"}}, "title: must be text"),
        ({"title": "More data", "cost": True}, "cost: must be a number"),
        ({"title": "More data", "schedule_days": 1.5}, "schedule_days: must be whole days"),
        ({"title": "More data", "phase": "discovery"}, "phase: unknown phase"),
        ({"title": "More data", "jira_issue": 42}, "jira_issue: must be an issue key"),
        ({"title": "More data", "scope_added": [{"item": "x"}]}, "scope_added: must be text"),
        ({"title": "More\x00data"}, "title: cannot be recorded: it contains a NUL character"),
    ]):
        request = write_yaml(tmp_path / f"bad-{n}.yaml", fields)
        refused(cli("cr", "submit", "acme-churn", "--as", PM, "--file", str(request)), problem)
    assert ledger_counts(home) == before
    request = write_yaml(tmp_path / "lines.yaml", {"title": "More data", "scope_added": "label-audit\nshap-report"})
    ok(cli("cr", "submit", "acme-churn", "--as", PM, "--file", str(request)))
    engine = make_engine(f"sqlite:///{home / 'ledger.db'}")
    with transaction(sessions(engine)) as session:
        assert session.scalars(select(ChangeRequestRow.scope_added)).one() == {"items": ["label-audit", "shap-report"]}
    engine.dispose()


def test_engagement_apply_files_an_approver_replacement_as_a_change_request(cli: Invoke, home: Path,
                                                                            tmp_path: Path) -> None:
    running(cli, home)
    data = yaml.safe_load(ACME_FILE.read_text(encoding="utf-8"))
    data["phases"]["poc"]["gate"]["approvers"][1] = {"slack_user": "U0NEWLEAD1", "name": "Lee Park",
                                                     "side": "client", "role": "tech lead"}
    amended = write_yaml(tmp_path / "acme.yaml", data)
    refused(cli("engagement", "create", str(amended)), "scope changes go through change requests",
            "`phasegate engagement apply FILE` files one")
    shown = ok(cli("engagement", "apply", str(amended), "--as", PM))
    assert "acme-churn is active; the file differs from the current baseline:" in shown
    assert "phases.poc.gate.approvers[U0NEWLEAD1].name: Lee Park added" in shown
    assert "acme-churn/CR-1: filed and assessed" in shown
    ok(cli("cr", "decide", "acme-churn", "1", "approve", "--as", SPONSOR))
    ok(cli("cr", "decide", "acme-churn", "1", "approve", "--as", VENDOR_LEAD))
    engine = make_engine(f"sqlite:///{home / 'ledger.db'}")
    with transaction(sessions(engine)) as session:
        config = engagements.config_of(engagements.get(session, "acme-churn"))
    engine.dispose()
    assert [a.slack_user for a in config.phases.poc.gate.approvers] == [SPONSOR, "U0NEWLEAD1", VENDOR_LEAD]
    assert ok(cli("engagement", "apply", str(amended), "--as", PM)) == "acme-churn: unchanged"


def test_cr_decide_is_refused_when_the_file_turns_cli_answers_off(cli: Invoke, home: Path, tmp_path: Path) -> None:
    """The `change_requests:` section's `cli_answers: false` holds for change requests as the gate's
    does for gates: approved from the terminal, this request would have made a new baseline."""
    data = yaml.safe_load(ACME_FILE.read_text(encoding="utf-8"))
    data["change_requests"] = {"approvers": data["phases"]["poc"]["gate"]["approvers"],
                               "quorum": {"count": 1}, "cli_answers": False}
    ok(cli("engagement", "create", str(write_yaml(tmp_path / "acme.yaml", data))))
    start_poc(home)
    ok(cli("cr", "submit", "acme-churn", "--as", PM, "--title", "Explainability report", "--add", "shap-report"))
    refused(cli("cr", "decide", "acme-churn", "1", "approve", "--as", SPONSOR),
            "acme-churn/CR-1 takes no answers from the CLI (cli_answers: false in the engagement file); "
            "answer in Slack")
    with ledger_of(home) as session:
        cr = crs.by_number(session, "acme-churn", 1)
        assert (cr.state, cr.baseline_version, crs.decisions(session, cr.id)) == (ChangeRequestState.ASSESSED,
                                                                                 None, [])
        current = crs.baseline(session, "acme-churn")
        assert current is not None and current.version == 1


def test_cr_prompt_on_a_dead_run_starts_a_new_one_and_says_so(cli: Invoke, home: Path, slack: SlackStandin,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The request's run crashed: `cr prompt` used to hand back that run (same idempotency key) as
    started. Prefect's answers come from a RunControl double; the channel is the Slack stand-in."""
    monkeypatch.setenv("PHASEGATE_SLACK_API_URL", slack.base_url)
    monkeypatch.setenv("PHASEGATE_SLACK_BOT_TOKEN", slack.bot_token)
    running(cli, home)
    ok(cli("cr", "submit", "acme-churn", "--as", PM, "--title", "Explainability report", "--add", "shap-report"))
    with ledger_of(home) as session:
        crs.by_number(session, "acme-churn", 1).flow_run_id = "dead-run"
    runs = SetRuns({"dead-run": RunHealth.CRASHED})
    monkeypatch.setattr("phasegate.orchestration.runs.PrefectRuns", lambda **_: runs)

    shown = ok(cli("cr", "prompt", "acme-churn", "1"))

    assert "flow run dead-run is crashed" in shown and "started flow run run-1" in shown
    assert runs.started == {"acme-churn-cr-1-restart-1": "run-1"}
    with ledger_of(home) as session:
        assert crs.by_number(session, "acme-churn", 1).flow_run_id == "run-1"
    assert any("acme-churn/CR-1" in m.text and "run-1" in m.text for m in slack.messages("C0ACMECHURN"))
    again = ok(cli("cr", "prompt", "acme-churn", "1"))
    assert "flow run run-1 is alive" in again and "started" not in again and len(runs.started) == 1
