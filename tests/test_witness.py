"""The audit chain witnessed outside the database (issue 18 item 6), on SQLite and PostgreSQL.

Someone with write access to the database (triggers off) rewrites an event and recomputes every
later hash and the head with plain SHA-256, or deletes the newest events with the rows they sealed
and moves the head back: the chain is consistent with itself, and the database-only walk finds
nothing. The decided gate prompt in Slack (through the Slack stand-in, over HTTP, with message
metadata and paged conversations.history) witnessed the head, and `audit verify` reads it back and
names the message. With an audit key, the same rewrite recomputed without the key is caught by the
database walk alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import settings_for
from helpers import posted_gate
from pydantic import SecretStr
from sqlalchemy import select, update
from test_audit_chain import closed_port_url, decided_g1, tamper

from phasegate.cli.main import app
from phasegate.configs.schema import Engagement
from phasegate.gates.answers import after_answer
from phasegate.ledger import chain
from phasegate.ledger.db import transaction
from phasegate.ledger.models import AuditHeadRow, Base, GateRow
from phasegate.ledger.verify import verify
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.metrics_api import MetricsStandin
from phasegate.sandbox.standins.slack_api import SlackStandin

Invoke = Callable[..., Result]


@pytest.fixture
def cli(ledger_url: str, tmp_path: Path, slack: SlackStandin) -> Invoke:
    from typer.testing import CliRunner

    def invoke(*args: str, key: str = "", slack_url: str | None = None) -> Result:
        env = {"PHASEGATE_HOME": str(tmp_path), "PHASEGATE_DATABASE_URL": ledger_url, "COLUMNS": "200",
               "PREFECT_API_URL": closed_port_url(), "PHASEGATE_SLACK_API_URL": slack_url or slack.base_url,
               "PHASEGATE_SLACK_BOT_TOKEN": slack.bot_token, "PHASEGATE_AUDIT_KEY": key}
        return CliRunner(env=env).invoke(app, list(args))

    return invoke


def witnessed_decision(rt: Runtime, acme: Engagement, slack: SlackStandin, fillers: int = 0) -> tuple[int, dict[str, Any]]:
    """acme's G1 decided and its prompt redrawn as after any answer; then `fillers` newer messages in the
    channel (the prompt ends up on a later page of conversations.history). (gate id, the prompt's metadata)."""
    gate_id = decided_g1(rt, acme)
    assert after_answer(rt.sessions, rt.chat, gate_id, decided=True, wake=None).problems == []
    for n in range(fillers):
        rt.chat.post(acme.slack_channel, f"chatter {n}")
    with transaction(rt.sessions) as session:
        gate = session.get(GateRow, gate_id)
        assert gate is not None and gate.message_ts
        ts = gate.message_ts
    prompt = slack.message(acme.slack_channel, ts)
    assert prompt.metadata is not None
    return gate_id, prompt.metadata["event_payload"] | {"ts": ts}


def event_rows(url: str, engagement_id: str) -> list[dict[str, Any]]:
    from phasegate.ledger.db import make_engine

    engine = make_engine(url)
    events = Base.metadata.tables["audit_events"]
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(events).where(events.c.engagement_id == engagement_id)
                                              .order_by(events.c.seq)).mappings()]
    engine.dispose()
    return rows


def rewrite_from(url: str, engagement_id: str, seq: int, change: Callable[[dict[str, Any]], dict[str, Any]],
                 seal: str | None = None) -> None:
    """Edit event #seq and recompute its hash, every later link and the head with plain SHA-256, as
    someone with database access and no key would (`seal`: also rename the scheme of the rewritten events)."""
    rows, events, heads = event_rows(url, engagement_id), Base.metadata.tables["audit_events"], \
        Base.metadata.tables["audit_heads"]
    statements: list[Any] = []
    prev = rows[seq - 2]["hash"] if seq > 1 else chain.GENESIS
    for row in rows[seq - 1:]:
        row = change(row) if row["seq"] == seq else row
        row["prev_hash"] = prev
        prev = chain.event_hash(row)
        values = {"payload": row["payload"], "prev_hash": row["prev_hash"], "hash": prev}
        statements.append(update(events).where(events.c.id == row["id"]).values(**values, **(
            {"seal": seal} if seal else {})))
    statements.append(update(heads).where(heads.c.engagement_id == engagement_id).values(hash=prev))
    tamper(url, *statements)


def test_the_decided_prompt_witnesses_the_head(rt: Runtime, acme: Engagement, slack: SlackStandin,
                                               cli: Invoke) -> None:
    _, witnessed = witnessed_decision(rt, acme, slack)
    with transaction(rt.sessions) as session:
        head = session.get(AuditHeadRow, acme.id)
        assert head is not None
    assert (witnessed["chain_engagement"], witnessed["chain_seq"], witnessed["chain_hash"]) == (
        acme.id, head.seq, head.hash)
    prompt = slack.message(acme.slack_channel, witnessed["ts"])
    assert f"Audit chain head #{head.seq} {head.hash}" in str(prompt.blocks[-1])
    result = cli("audit", "verify", acme.id)
    assert result.exit_code == 0, result.output
    assert f"head #{head.seq} {head.hash}; witnessed by 1 Slack message (newest: #{head.seq})" in result.stdout


def test_a_full_rewrite_with_recomputed_hashes_is_caught_by_the_slack_witness(
        rt: Runtime, acme: Engagement, slack: SlackStandin, ledger_url: str, cli: Invoke) -> None:
    _, witnessed = witnessed_decision(rt, acme, slack, fillers=230)  # the prompt is on history's second page
    decided = next(r for r in event_rows(ledger_url, acme.id) if r["kind"] == "gate_decided")
    rewrite_from(ledger_url, acme.id, decided["seq"], lambda r: r | {"payload": r["payload"] | {"outcome": "no_go"}})
    with transaction(rt.sessions) as session:
        assert verify(session, acme.id)[0].intact  # consistent with itself: the database alone cannot tell
    result = cli("audit", "verify", acme.id)
    assert result.exit_code == 1, result.output
    assert (f"phasegate: {acme.id}: rewritten: Slack message {witnessed['ts']} in {acme.slack_channel} "
            f"(phasegate_gate_prompt) witnessed event #{witnessed['chain_seq']} as {witnessed['chain_hash'][:16]}, "
            "the chain now holds") in result.stderr
    export = cli("audit", "export", acme.id)
    assert "**Audit chain broken (1 problems" in export.stdout and "rewritten: Slack message" in export.stdout


def test_a_truncated_tail_with_its_rows_and_head_moved_back_is_caught(
        rt: Runtime, acme: Engagement, slack: SlackStandin, ledger_url: str, cli: Invoke) -> None:
    _, witnessed = witnessed_decision(rt, acme, slack)
    rows = event_rows(ledger_url, acme.id)
    keep, gone = rows[:-2], rows[-2:]
    # the rows those events wrote go too; a row an earlier event sealed (the gate) is put back as it was then
    sealed = [f"DELETE FROM {r['row_table']} WHERE id = {r['row_id']}" if r["row_table"] != "gates" else
              f"UPDATE gates SET state = 'open', outcome = NULL, decided_at = NULL WHERE id = {r['row_id']}"
              for r in gone if r["row_table"]]
    tamper(ledger_url, *[f"DELETE FROM audit_events WHERE id = {r['id']}" for r in gone], *sealed,
           f"UPDATE audit_heads SET seq = {keep[-1]['seq']}, hash = '{keep[-1]['hash']}' "
           f"WHERE engagement_id = '{acme.id}'")
    with transaction(rt.sessions) as session:
        assert verify(session, acme.id)[0].intact
    result = cli("audit", "verify", acme.id)
    assert result.exit_code == 1, result.output
    assert (f"phasegate: {acme.id}: truncated: Slack message {witnessed['ts']} in {acme.slack_channel} "
            f"(phasegate_gate_prompt) witnessed event #{witnessed['chain_seq']}") in result.stderr
    assert f"but the chain ends at #{keep[-1]['seq']}" in result.stderr


def test_unreadable_slack_is_said_not_claimed_intact(rt: Runtime, acme: Engagement, slack: SlackStandin,
                                                     cli: Invoke) -> None:
    witnessed_decision(rt, acme, slack)
    slack.not_member.add(acme.slack_channel)
    result = cli("audit", "verify", acme.id)
    assert result.exit_code == 2, result.output
    assert "witness not checked: Slack conversations.history failed: not_in_channel" in result.stdout
    assert "audit chain intact" not in result.stdout
    down = cli("audit", "verify", acme.id, slack_url=closed_port_url() + "/")
    assert down.exit_code == 2 and "witness not checked: Slack auth.test failed" in down.stdout
    export = cli("audit", "export", acme.id)
    assert "consistent in the database (witness not checked)" in export.stdout
    assert "**Witness not checked:** Slack conversations.history failed: not_in_channel" in export.stdout


def test_the_export_carries_the_head_and_its_witnesses(rt: Runtime, acme: Engagement, slack: SlackStandin,
                                                       cli: Invoke) -> None:
    _, witnessed = witnessed_decision(rt, acme, slack)
    md = cli("audit", "export", acme.id)
    assert md.exit_code == 0, md.output
    assert "## Chain head and its witnesses" in md.stdout
    assert (f"  - Slack message {witnessed['ts']} in {acme.slack_channel} (phasegate_gate_prompt): "
            f"#{witnessed['chain_seq']} `{witnessed['chain_hash']}`") in md.stdout


@pytest.fixture
def keyed_rt(ledger_url: str, slack: SlackStandin, jira: JiraStandin, metrics: MetricsStandin, tmp_path: Path,
             rt: Runtime) -> Iterator[Runtime]:
    settings = settings_for(ledger_url, slack, jira, metrics, tmp_path).model_copy(
        update={"audit_key": SecretStr("k3y-kept-out-of-the-database")})
    keyed = Runtime(settings)
    yield keyed
    keyed.close()


def test_a_keyed_chain_recomputed_without_the_key_is_caught(keyed_rt: Runtime, acme: Engagement, ledger_url: str,
                                                            cli: Invoke) -> None:
    decided_g1(keyed_rt, acme)
    rows = event_rows(ledger_url, acme.id)
    assert {r["seal"] for r in rows} == {"hmac-sha256"}
    key = "k3y-kept-out-of-the-database"
    assert cli("audit", "verify", acme.id, key=key).exit_code == 0
    decided = next(r for r in rows if r["kind"] == "gate_decided")
    rewrite_from(ledger_url, acme.id, decided["seq"], lambda r: r | {"payload": r["payload"] | {"outcome": "no_go"}})
    result = cli("audit", "verify", acme.id, key=key)
    assert result.exit_code == 1
    assert f"event #{decided['seq']} (id {decided['id']}, gate_decided acme-churn/G1) was edited" in result.stderr
    # the same rewrite, also naming the rewritten events plain SHA-256: a chain does not go back to plain hashing
    rewrite_from(ledger_url, acme.id, decided["seq"], lambda r: r, seal="sha256")
    result = cli("audit", "verify", acme.id, key=key)
    assert result.exit_code == 1
    assert (f"event #{decided['seq']} is sealed with plain SHA-256 after event #1 was keyed "
            "(rewritten without the key)") in result.stderr
    without = cli("audit", "verify", acme.id)
    assert "PHASEGATE_AUDIT_KEY is not set: its link cannot be checked" in without.stderr


def test_a_chain_sealed_before_the_key_keeps_verifying(rt: Runtime, acme: Engagement, slack: SlackStandin,
                                                       ledger_url: str, jira: JiraStandin, metrics: MetricsStandin,
                                                       tmp_path: Path, cli: Invoke) -> None:
    gate_id = posted_gate(rt, acme).id
    keyed = Runtime(settings_for(ledger_url, slack, jira, metrics, tmp_path).model_copy(
        update={"audit_key": SecretStr("later-key")}))
    try:
        from phasegate.ledger import gates
        from phasegate.states import Outcome, Via

        with transaction(keyed.sessions) as session:
            gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.NO_GO, reason="F1 too low",
                         via=Via.SLACK)
    finally:
        keyed.close()
    seals = [r["seal"] for r in event_rows(ledger_url, acme.id)]
    assert seals[0] == "sha256" and seals[-1] == "hmac-sha256"
    assert cli("audit", "verify", acme.id, key="later-key").exit_code == 0


def test_a_decided_change_request_and_its_announcement_witness_the_head(
        rt: Runtime, slack: SlackStandin, acme: Engagement, cli: Invoke) -> None:
    from test_change_request_runs import approved, prompted

    from phasegate.ledger.models import ChangeRequestRow
    from phasegate.tasks import change_requests as cr_tasks

    cr_id = prompted(rt, acme, "cr-run-1")
    approved(rt, cr_id)
    cr_tasks.announce.fn(rt, acme, cr_id)
    with transaction(rt.sessions) as session:
        cr = session.get(ChangeRequestRow, cr_id)
        assert cr is not None and cr.message_ts
        ts = cr.message_ts
    decided = next(e for e in event_rows(rt.settings.ledger_url, acme.id) if e["kind"] == "cr_approved")
    prompt = slack.message(acme.slack_channel, ts)
    assert prompt.metadata is not None and prompt.metadata["event_type"] == "phasegate_change_request"
    head = prompt.metadata["event_payload"]
    assert head["chain_engagement"] == acme.id and head["chain_seq"] >= decided["seq"]
    assert f"Audit chain head #{head['chain_seq']} {head['chain_hash']}" in str(prompt.blocks[-1])
    [said] = [m for m in slack.thread(acme.slack_channel, ts) if m.metadata]
    assert said.metadata is not None and said.metadata["event_payload"]["chain_seq"] == head["chain_seq"]
    assert f"Audit chain head #{head['chain_seq']}" in said.text
    result = cli("audit", "verify", acme.id)
    assert result.exit_code == 0, result.output
    assert "witnessed by 1 Slack message" in result.stdout


def test_a_weekly_report_witnesses_the_head(rt: Runtime, slack: SlackStandin, jira: JiraStandin,
                                            acme: Engagement, cli: Invoke) -> None:
    from phasegate.ledger.models import WeeklyReportRow, utcnow
    from phasegate.reports import collect

    posted_gate(rt, acme, jira=jira)
    (report,) = collect.collect(rt, [acme.id], utcnow()).reports
    assert collect.deliver_all(rt, [report], post=True)[1] == {}
    with transaction(rt.sessions) as session:
        row = session.scalar(select(WeeklyReportRow).where(WeeklyReportRow.subject == acme.id))
        assert row is not None and row.message_ts
        ts = row.message_ts
    posted = slack.message(acme.slack_channel, ts)
    assert posted.metadata is not None and posted.metadata["event_type"] == "phasegate_weekly_report"
    head = posted.metadata["event_payload"]
    rows = event_rows(rt.settings.ledger_url, acme.id)
    posted_event = next(e for e in rows if e["kind"] == "weekly_report_posted")
    # the head when it was posted: the event that records the post comes after it
    assert (head["chain_seq"], head["chain_hash"]) == (posted_event["seq"] - 1, posted_event["prev_hash"])
    assert f"Audit chain head #{head['chain_seq']} {head['chain_hash']}" in str(posted.blocks[-1])
    result = cli("audit", "verify", acme.id)
    assert result.exit_code == 0 and "witnessed by 1 Slack message" in result.stdout, result.output
