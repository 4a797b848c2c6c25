"""Budget in the open, on SQLite and PostgreSQL: spend per phase against the PoC cap and the team
cost, approved changes plus extensions against the change budget (over budget included), refusals
that write nothing, append-only entries sealed by the audit chain, and the same lines in the
assessment, the gate prompt, `engagement show` and the weekly report."""

from __future__ import annotations

import pytest
from helpers import Invoke, ok, open_gate, register
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import PolicyError
from phasegate.ledger import change_decisions, engagements, gates, phases, spend
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import transaction
from phasegate.ledger.models import SpendRow, utcnow
from phasegate.ledger.verify import verify
from phasegate.messages.prompts import render
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import build, facts
from phasegate.rules import budget
from phasegate.rules.change_requests import Draft
from phasegate.states import ChangeSource, Outcome, Via

PM, SPONSOR, VENDOR_LEAD = "U0PMACME01", "U0SPONSOR1", "U0VENDLEAD"


def test_arithmetic_of_the_three_lines_including_over_budget(acme: Engagement) -> None:
    ext = budget.Extension(phase=Phase.POC, number=2, weeks=2)
    status = budget.status(acme, spent={Phase.POC: 130_000.0, Phase.DEVELOPMENT: 50_000.0},
                           approved_changes=40_000.0, extensions=[ext])
    assert budget.weekly_rate(acme, Phase.POC) == 15_000  # 120,000 EUR over 8 planned weeks
    assert (status.poc.used, status.poc.left, status.poc.over) == (130_000, -10_000, True)
    assert (status.development.left, status.development.over) == (430_000, False)
    assert (status.changes.used, status.changes.left) == (70_000, -10_000)  # 40,000 + 2 weeks x 15,000
    assert [line.label for line in status.over] == [status.poc.label, status.changes.label]
    lines = status.lines()
    assert lines[0] == "PoC spend against its time-and-materials cap: 130,000 of 120,000 EUR (*over by 10,000 EUR*)"
    assert lines[2] == "Change budget (approved changes and extensions): 70,000 of 60,000 EUR (*over by 10,000 EUR*)"
    assert lines[3] == ("Change budget used by: 40,000 EUR in approved change requests; "
                        "30,000 EUR for the PoC's first extension (+2 weeks).")
    handover = budget.status(acme, spent={}, approved_changes=0.0,
                             extensions=[budget.Extension(phase=Phase.HANDOVER, number=2, weeks=1)])
    assert handover.changes.used == 0 and not handover.over


def test_spend_extensions_and_changes_in_the_ledger(rt: Runtime, acme: Engagement) -> None:
    gate_id = open_gate(rt.sessions, acme)
    with transaction(rt.sessions) as session:
        engagements.record_baseline(session, acme.id, {"phases": {}, "items": {"poc": ["a", "b"]}})
        spend.record(session, acme, Phase.POC, "100000", by=PM, note="invoice 1")
        spend.record(session, acme, Phase.POC, " 30000.50 ", by=SPONSOR)
        phases.extend(session, acme, Phase.POC, after=1, reason="F1 short", today=acme.start_date)
    with transaction(rt.sessions) as session:
        cr, _ = crs.submit(session, acme.id, Draft(title="SHAP report", cost=35_000), requested_by=PM,
                           source=ChangeSource.CLI)
        assessment = crs.assess(session, cr)
        assert assessment.spent == 30_000 and assessment.over_budget  # the extension counts: 65,000 > 60,000
        for approver in (SPONSOR, VENDOR_LEAD):
            change_decisions.answer(session, cr.id, approver=approver, outcome=Outcome.APPROVE, reason="",
                                    via=Via.CLI)
    with transaction(rt.sessions) as session:
        status = spend.status_of(session, acme.id)
        assert status.spent[Phase.POC] == 130_000.5 and status.poc.over
        assert (status.approved_changes, status.changes.used) == (35_000, 65_000)
        _, blocks = render(session, gates.by_id(session, gate_id))
        (view,) = facts.views(session, [acme.id])
        assert verify(session, acme.id)[0].intact  # spend entries are sealed by the chain
    assert any("*Budget*" in b.get("text", {}).get("text", "") and "over by 10,000 EUR" in b["text"]["text"]
               for b in blocks)
    report = build.from_ledger(view, utcnow())
    assert report.budget.spent == 130_000.5 and len(report.budget.over) == 2
    assert report.change_requests.items == ["CR-1 SHAP report: approved (poc, cost 35,000 EUR, schedule +0 days)"]
    assert "over-budget" in {f.rule for f in report.findings}


@pytest.mark.parametrize(("raw", "by", "message"), [
    ("-5", PM, "positive amount"), ("0", PM, "positive amount"), ("nan", PM, "not a finite number"),
    ("1e999", PM, "not a finite number"), ("12,000", PM, "not a decimal number"), ("1e13", PM, "implausibly large"),
    ("100", "U0STRANGER", "neither the PM nor an approver"),
])
def test_refused_spend_writes_nothing(rt: Runtime, acme: Engagement, raw: str, by: str, message: str) -> None:
    register(rt, acme)
    with pytest.raises(PolicyError, match=message), transaction(rt.sessions) as session:
        spend.record(session, acme, Phase.POC, raw, by=by)
    with transaction(rt.sessions) as session:
        assert session.scalar(select(func.count()).select_from(SpendRow)) == 0


def test_spend_entries_are_append_only(rt: Runtime, acme: Engagement) -> None:
    register(rt, acme)
    with transaction(rt.sessions) as session:
        spend.record(session, acme, Phase.POC, "500", by=PM)
    for statement in ("UPDATE spend_entries SET amount = 1", "DELETE FROM spend_entries"):
        with pytest.raises(DBAPIError, match="append-only"), transaction(rt.sessions) as session:
            session.execute(text(statement))


def test_budget_spend_and_engagement_show_from_the_cli(cli: Invoke) -> None:
    ok(cli("engagement", "create", "configs/engagements/acme-churn.yaml"))
    shown = ok(cli("budget", "spend", "acme-churn", "poc", "125000", "--as", PM, "--note", "March invoice"))
    assert "acme-churn poc: 125,000 EUR recorded" in shown and "(over by 5,000 EUR)" in shown
    refused = cli("budget", "spend", "acme-churn", "poc", "0", "--as", PM)
    assert refused.exit_code == 1 and "positive amount" in refused.stderr
    assert "125,000 of 120,000 EUR" in ok(cli("engagement", "show", "acme-churn"))
    listed = ok(cli("budget", "show", "acme-churn"))
    assert "poc: 125,000 EUR by U0PMACME01 (March invoice)" in listed
