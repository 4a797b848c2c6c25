"""`phasegate audit export` as a steering committee reads it, from a real ledger on SQLite and
PostgreSQL written by the real tasks: G1 passed with a waiver, one change request approved and one
rejected, spend recorded, names beside the Slack ids, text people typed escaped for Markdown and
for a spreadsheet, and the chain head as `audit verify` reports it (witnessed by the decided
prompt's post in the Slack stand-in)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from helpers import posted_gate
from sqlalchemy import update
from test_audit_chain import closed_port_url, tamper

from phasegate.cli.main import app
from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import change_decisions, gates, spend
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import transaction
from phasegate.ledger.models import ChangeDecisionRow
from phasegate.messages.prompts import refresh
from phasegate.orchestration.runtime import Runtime
from phasegate.rules.change_requests import Draft
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import ChangeSource, Outcome, Via
from phasegate.tasks.kickoff import record_baseline

PM, SPONSOR, TECH_LEAD, VENDOR_LEAD = "U0PMACME01", "U0SPONSOR1", "U0TECHLEAD", "U0VENDLEAD"
HOSTILE = "ok *bold* <b>|</b> [x](http://evil) &#x202e; `tick`\nsecond line"
Invoke = Callable[..., Result]


@pytest.fixture
def cli(ledger_url: str, tmp_path: Path, slack: SlackStandin) -> Invoke:
    from typer.testing import CliRunner

    runner = CliRunner(env={"PHASEGATE_HOME": str(tmp_path), "PHASEGATE_DATABASE_URL": ledger_url,
                            "PREFECT_API_URL": closed_port_url(), "COLUMNS": "200",
                            "PHASEGATE_SLACK_API_URL": slack.base_url, "PHASEGATE_SLACK_BOT_TOKEN": slack.bot_token})
    return lambda *args: runner.invoke(app, list(args))


def file(rt: Runtime, draft: Draft) -> int:
    with transaction(rt.sessions) as session:
        cr, _ = crs.submit(session, "acme-churn", draft, requested_by=PM, source=ChangeSource.CLI)
        crs.assess(session, cr)
        return cr.id


def answer_cr(rt: Runtime, cr_id: int, approver: str, outcome: Outcome, reason: str = "") -> None:
    with transaction(rt.sessions) as session:
        change_decisions.answer(session, cr_id, approver=approver, outcome=outcome, reason=reason, via=Via.SLACK)


def steering_history(rt: Runtime, acme: Engagement) -> int:
    """G1 opened with its milestones open (a GO is a waiver), two change requests decided, spend
    recorded, then G1 passed with waivers and its prompt brought up to date in Slack (the witness)."""
    gate_id = posted_gate(rt, acme).id
    record_baseline.fn(rt, acme)
    labelling = file(rt, Draft(title="Two more weeks for labelling", schedule_days=14, cost=20_000,
                               scope_added=("label-audit",)))
    answer_cr(rt, labelling, SPONSOR, Outcome.APPROVE)
    answer_cr(rt, labelling, VENDOR_LEAD, Outcome.APPROVE)
    realtime = file(rt, Draft(title="A real-time <API> in the PoC", cost=30_000, scope_added=("realtime-api",)))
    answer_cr(rt, realtime, SPONSOR, Outcome.REJECT, HOSTILE)
    answer_cr(rt, realtime, VENDOR_LEAD, Outcome.REJECT, "not in the PoC")
    with transaction(rt.sessions) as session:
        spend.record(session, acme, Phase.POC, "90000", by=PM, note="=HYPERLINK(\"http://evil\") invoice 7")
        spend.record(session, acme, Phase.POC, "7500.50", by=SPONSOR, note="labelling vendor")
    for approver, outcome, reason, via in [(SPONSOR, Outcome.GO, "pilot scope only: *F1* is enough", Via.SLACK),
                                           (VENDOR_LEAD, Outcome.GO, "agreed | pilot scope", Via.CLI)]:
        with transaction(rt.sessions) as session:
            gates.answer(session, gate_id, approver=approver, outcome=outcome, reason=reason, via=via)
    refresh(rt.sessions, rt.chat, gate_id)
    return gate_id


def verified_head(cli: Invoke) -> str:
    result = cli("audit", "verify", "acme-churn")
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if line.startswith("acme-churn: ")]
    assert "witnessed by 1 Slack message" in line, line
    return line.removeprefix("acme-churn: ")


def test_the_markdown_export_serves_a_steering_committee(rt: Runtime, acme: Engagement, cli: Invoke) -> None:
    steering_history(rt, acme)
    head = verified_head(cli)
    result = cli("audit", "export", "acme-churn")
    assert result.exit_code == 0, result.output
    md = result.stdout
    assert md.startswith("# Decision history: ACME churn prediction (acme-churn)\n")
    assert f"- Head: {head}\n" in md  # the head, its event count and its witness, as `audit verify` says them

    gate = md[md.index("### G1 (poc)"):md.index("## Change requests")]
    assert "- State: decided, outcome GO with waiver\n" in gate
    assert "- **Waived exit criteria:** all required milestones done: fail" in gate
    assert "- **Waiver** by Dana Whitfield (U0SPONSOR1): pilot scope only: \\*F1\\* is enough\n" in gate
    assert ("| Priya Natarajan (U0VENDLEAD) | vendor | vendor lead | GO with waiver | agreed \\| pilot scope | cli |"
            in gate)

    approved = md[md.index("### CR-1 "):md.index("### CR-2 ")]
    assert approved.startswith("### CR-1 Two more weeks for labelling: approved on ")
    assert "- Filed by U0PMACME01 via cli on " in approved  # the PM has no name in the file: the id alone
    assert ("- Effect on the baseline: baseline v1 became v2: scope +1 (label-audit), schedule +14 days, "
            "cost 20,000 EUR, effort 0 days\n") in approved
    assert "| Dana Whitfield (U0SPONSOR1) | client | sponsor | APPROVE | - | slack |" in approved
    assert "| Priya Natarajan (U0VENDLEAD) | vendor | vendor lead | APPROVE | - | slack |" in approved

    rejected = md[md.index("### CR-2 "):md.index("## Spend against the budget")]
    assert rejected.startswith("### CR-2 A real-time &lt;API&gt; in the PoC: rejected on ")
    assert "- Effect on the baseline: none, baseline v2 unchanged (asked for: scope +1 (realtime-api)" in rejected
    escaped = "ok \\*bold\\* &lt;b&gt;\\|&lt;/b&gt; \\[x\\](http://evil) &amp;#x202e; \\`tick\\` second line"
    assert f"| Dana Whitfield (U0SPONSOR1) | client | sponsor | REJECT | {escaped} | slack |" in rejected
    assert f"- Reason it was rejected: {escaped}; not in the PoC\n" in rejected

    money = md[md.index("## Spend against the budget"):]
    assert "- PoC spend against its time-and-materials cap: 97,500 of 120,000 EUR (22,500 EUR left; 81% used, " \
           "past the 80% warning mark)\n" in money
    assert "- Change budget (approved changes and extensions): 20,000 of 60,000 EUR (40,000 EUR left)\n" in money
    assert "| poc | 90,000 EUR | U0PMACME01 | =HYPERLINK(\"http://evil\") invoice 7 |" in money
    assert "| poc | 7,500.50 EUR | Dana Whitfield (U0SPONSOR1) | labelling vendor |" in money


def test_the_csv_export_holds_the_same_record_and_runs_no_formula(rt: Runtime, acme: Engagement, cli: Invoke,
                                                                  tmp_path: Path) -> None:
    gate_id = steering_history(rt, acme)
    head = verified_head(cli)
    with transaction(rt.sessions) as session:
        digest = gates.by_id(session, gate_id).digest
    out = tmp_path / "steering.csv"
    result = cli("audit", "export", "acme-churn", "--format", "csv", "--out", str(out))
    assert result.exit_code == 0 and f"written to {out}" in result.stdout, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    by_kind = {kind: [r for r in rows if r["record"] == kind] for kind in {r["record"] for r in rows}}
    assert set(by_kind) == {"gate", "change_request", "spend", "budget", "chain_head"}

    assert [(r["name"], r["approver"], r["answer"], r["reason"], r["channel"]) for r in by_kind["gate"]] == [
        ("Dana Whitfield", SPONSOR, "GO with waiver", "pilot scope only: *F1* is enough", "slack"),
        ("Priya Natarajan", VENDOR_LEAD, "GO with waiver", "agreed | pilot scope", "cli")]
    assert {(r["outcome"], r["evidence_digest"], r["waived_criteria"].split(":")[0]) for r in by_kind["gate"]} == {
        ("GO with waiver", digest, "all required milestones done")}

    assert [(r["subject"], r["state"], r["answer"], r["name"]) for r in by_kind["change_request"]] == [
        ("CR-1 Two more weeks for labelling", "approved", "APPROVE", "Dana Whitfield"),
        ("CR-1 Two more weeks for labelling", "approved", "APPROVE", "Priya Natarajan"),
        ("CR-2 A real-time <API> in the PoC", "rejected", "REJECT", "Dana Whitfield"),
        ("CR-2 A real-time <API> in the PoC", "rejected", "REJECT", "Priya Natarajan")]
    assert by_kind["change_request"][0]["baseline_effect"].startswith("baseline v1 became v2: scope +1 (label-audit)")
    assert by_kind["change_request"][0]["reference"] == "baseline v2"
    assert by_kind["change_request"][2]["reason"] == "ok *bold* <b>|</b> [x](http://evil) &#x202e; `tick`\nsecond line"

    assert [(r["amount"], r["currency"], r["approver"], r["name"], r["note"]) for r in by_kind["spend"]] == [
        ("90000.00", "EUR", PM, "", "'=HYPERLINK(\"http://evil\") invoice 7"),  # a spreadsheet shows it, runs nothing
        ("7500.50", "EUR", SPONSOR, "Dana Whitfield", "labelling vendor")]
    poc = by_kind["budget"][0]
    assert (poc["subject"], poc["amount"], poc["state"]) == ("PoC spend against its time-and-materials cap",
                                                             "97500.50", "within")
    [chain] = by_kind["chain_head"]
    assert chain["note"] == head and chain["state"] == "intact"
    assert head.split(", head #")[1].startswith(f"{chain['subject'][1:]} {chain['reference']};")


def test_text_is_escaped_for_each_format_and_keeps_its_words() -> None:
    from phasegate.text import csv_cell, markdown

    assert markdown("a\r\nb\u2028c \u202eX\u200b _y_ ~z~ 1 > 0 & 2 < 3") == (
        "a  b c X \\_y\\_ \\~z\\~ 1 &gt; 0 &amp; 2 &lt; 3")
    assert markdown("F1 0.81 (seen: 0.81): fine, 100% - ok!") == "F1 0.81 (seen: 0.81): fine, 100% - ok!"
    assert [csv_cell(t) for t in ("=1+1", "+1", "-2", "@SUM(A1)", "\tx", "plain - text", "\u202e=1")] == [
        "'=1+1", "'+1", "'-2", "'@SUM(A1)", "'\tx", "plain - text", "'=1"]


def test_an_edited_change_request_answer_is_exported_as_broken(rt: Runtime, acme: Engagement, cli: Invoke,
                                                               ledger_url: str, tmp_path: Path) -> None:
    """Someone past the triggers softens a rejection's reason: both forms say the chain is broken."""
    steering_history(rt, acme)
    tamper(ledger_url, update(ChangeDecisionRow).where(ChangeDecisionRow.reason == "not in the PoC")
           .values(reason="fine by me"))
    md = cli("audit", "export", "acme-churn")
    assert md.exit_code == 0, md.output
    assert "**Audit chain broken (" in md.stdout and "Audit chain intact" not in md.stdout
    out = tmp_path / "broken.csv"
    assert cli("audit", "export", "acme-churn", "--format", "csv", "--out", str(out)).exit_code == 0
    [chain] = [r for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))) if r["record"] == "chain_head"]
    assert chain["state"] == "broken"
