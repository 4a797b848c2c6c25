"""The gate watch with an injected clock: reminders in the prompt's thread on business days in the
engagement's timezone, escalation after N business days, and a timeout that never approves."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from helpers import posted_gate, with_changes

from phasegate.configs.schema import Engagement
from phasegate.gates.watch import watch
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import GateState, Outcome, Via

BERLIN = ZoneInfo("Europe/Berlin")


def at(day: str, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hour:02d}:{minute:02d}").replace(tzinfo=BERLIN).astimezone(dt.UTC)


def opened_friday(rt: Runtime, engagement: Engagement) -> int:
    gate_id = posted_gate(rt, engagement).id
    with transaction(rt.sessions) as session:
        gates.by_id(session, gate_id).opened_at = at("2026-11-27", 16)  # a Friday afternoon in Berlin
    return gate_id


def thread_texts(slack: SlackStandin, rt: Runtime, gate_id: int) -> list[str]:
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
    assert gate.message_ts is not None
    return [m.text for m in slack.thread(gate.channel, gate.message_ts)]


def test_reminders_skip_the_weekend_and_escalate_on_the_third_business_day(
        rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    gate_id = opened_friday(rt, acme)
    woken: list[str] = []
    assert watch(rt, at("2026-11-28", 10), woken.append).reminded == []  # Saturday
    assert watch(rt, at("2026-11-30", 8, 59), woken.append).reminded == []  # Monday, before 09:00 Berlin
    monday = watch(rt, at("2026-11-30", 9, 5), woken.append)
    assert monday.reminded == ["acme-churn/G1"] and monday.escalated == []
    assert watch(rt, at("2026-11-30", 15), woken.append).reminded == []  # once a day
    with transaction(rt.sessions) as session:
        gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.GO, reason="waiver: pilot only",
                     via=Via.CLI)  # the milestones are open: a GO needs a written waiver
    assert watch(rt, at("2026-12-01", 9, 1), woken.append).reminded == ["acme-churn/G1"]
    wednesday = watch(rt, at("2026-12-02", 9, 1), woken.append)
    assert wednesday.escalated == ["acme-churn/G1"]
    texts = thread_texts(slack, rt, gate_id)
    reminders = [t for t in texts if t.startswith(":bell: Reminder")]
    assert len(reminders) == 3
    assert "<@U0SPONSOR1>" in reminders[0] and "<@U0SPONSOR1>" not in reminders[1]  # answered in between
    escalation = next(t for t in texts if "Escalation" in t)
    assert "<@U0CTOACME1>" in escalation and "3 business days" in escalation
    assert watch(rt, at("2026-12-03", 9, 1), woken.append).escalated == []  # escalates once
    assert woken == []


def test_the_schedule_follows_the_engagements_timezone(rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    """Opened Friday 23:30 UTC: already Saturday in Auckland, still Friday in Los Angeles."""
    opened = dt.datetime(2026, 11, 27, 23, 30, tzinfo=dt.UTC)
    reminded = {}
    for zone in ("Pacific/Auckland", "America/Los_Angeles"):
        engagement = with_changes(acme, id=f"tz-{zone.split('/')[1].lower().replace('_', '-')}", timezone=zone)
        gate_id = posted_gate(rt, engagement).id
        with transaction(rt.sessions) as session:
            gates.by_id(session, gate_id).opened_at = opened
        local_monday_9 = dt.datetime(2026, 11, 30, 9, 1, tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)
        before = watch(rt, local_monday_9 - dt.timedelta(minutes=2), lambda _: None)
        after = watch(rt, local_monday_9, lambda _: None)
        reminded[zone] = (engagement.id + "/G1" in before.reminded, engagement.id + "/G1" in after.reminded)
    assert reminded == {"Pacific/Auckland": (False, True), "America/Los_Angeles": (False, True)}


def test_timeout_reports_overdue_and_never_approves(rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    engagement = with_changes(acme, phases__poc__gate__timeout_business_days=2)
    gate_id = opened_friday(rt, engagement)
    report = watch(rt, at("2026-12-01", 9, 30), lambda _: None)
    assert report.overdue == ["acme-churn/G1"]
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        assert gate.state is GateState.OPEN and gate.outcome is None and gate.overdue_at is not None
    assert any("is overdue" in t and "stays open" in t for t in thread_texts(slack, rt, gate_id))


def test_timeout_no_go_when_the_file_says_so(rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    engagement = with_changes(acme, phases__poc__gate__timeout_business_days=2,
                              phases__poc__gate__timeout_outcome="no_go")
    gate_id = opened_friday(rt, engagement)
    with transaction(rt.sessions) as session:
        gates.by_id(session, gate_id).flow_run_id = "run-7"
    woken: list[str] = []
    watch(rt, at("2026-12-01", 9, 30), woken.append)
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        assert (gate.state, gate.outcome) == (GateState.DECIDED, Outcome.NO_GO)
    assert woken[0] == "run-7"
