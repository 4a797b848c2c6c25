"""What bench.ack sets up around the endpoints it measures: a fresh ledger on each backend, open gates
with their prompts posted, the Slack stand-in in a process of its own (handing out response URLs and
saying what was posted to them), the signed click payloads, and the ledger's exactly-once count.
"""

from __future__ import annotations

import multiprocessing
import secrets
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import engagements, gates, phases
from phasegate.ledger.db import transaction
from phasegate.ledger.models import AuditEventRow, DecisionRow, GateRow, utcnow
from phasegate.orchestration.runtime import Runtime
from phasegate.rules.evidence import Snapshot
from phasegate.slack.deps import NOT_RECORDED
from phasegate.states import AuditKind, GateState

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CLIENT, VENDOR = "U0SPONSOR1", "U0VENDLEAD"  # one from each side: the second answer decides G1
NOT_RECORDED_PREFIX = NOT_RECORDED.split(":", 1)[0]  # "Not recorded", whatever reason follows


@contextmanager
def database(backend: str, what: str) -> Iterator[str]:
    """An empty database: a SQLite file in a new directory, or a fresh PostgreSQL database at
    127.0.0.1:5432, dropped at the end."""
    if backend == "sqlite":
        yield f"sqlite:///{Path(tempfile.mkdtemp(prefix=f'phasegate-bench-{what}-')) / f'{what}.db'}"
        return
    name = f"phasegate_bench_{what}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def open_g1(session: Session, config: Engagement, flow_run_id: str | None) -> int:
    """`config` registered, its PoC begun and its G1 open on empty evidence: the gate's id."""
    engagements.register(session, config)
    phases.start_phase(session, config, Phase.POC, requested_by=config.pm_slack_user, flow_run_id=None,
                       today=config.start_date)
    snapshot = Snapshot(engagement_id=config.id, phase=Phase.POC, timebox=1, collected_at=utcnow(),
                        milestones=[], metrics=[], criteria=[])
    return gates.open_gate(session, snapshot, requested_by=config.pm_slack_user, flow_run_id=flow_run_id,
                           channel=config.slack_channel).id


def open_gates(rt: Runtime, template: Engagement, prefix: str, count: int) -> list[tuple[int, str, str]]:
    """`count` open G1 gates, each of its own engagement and suspended flow run (a UUID the Prefect
    stand-in answers for), prompt posted: (gate id, channel, ts)."""
    data = template.model_dump(mode="json")
    made: list[tuple[int, str]] = []
    with transaction(rt.sessions) as session:
        for n in range(count):
            config = Engagement.model_validate(data | {"id": f"{prefix}-{n:04d}", "slack_channel": f"C0B{prefix.upper()}{n:04d}"})
            made.append((open_g1(session, config, str(uuid.uuid4())), config.slack_channel))
    posted = []
    for gate_id, channel in made:
        ts = rt.chat.post(channel, f"G1 prompt for gate {gate_id}")
        posted.append((gate_id, channel, ts))
    with transaction(rt.sessions) as session:
        for gate_id, _, ts in posted:
            gates.by_id(session, gate_id).message_ts = ts
    return posted


def clicks(posted: list[tuple[int, str, str]], response_urls: list[str] | None = None) -> list[dict[str, Any]]:
    """Two distinct GO clicks a gate (client first, then vendor), gates interleaved so that both arrive
    mid-burst; each with a fresh trigger id (the delivery id) and, given, its own response URL."""
    out = []
    for user in (CLIENT, VENDOR):
        for gate_id, channel, ts in posted:
            payload: dict[str, Any] = {
                "type": "block_actions", "user": {"id": user}, "trigger_id": secrets.token_hex(12),
                "container": {"type": "message", "channel_id": channel, "message_ts": ts}, "channel": {"id": channel},
                "actions": [{"type": "button", "action_id": "gate:go", "block_id": f"gate-{gate_id}",
                             "value": str(gate_id), "action_ts": f"{time.time():.6f}"}]}
            if response_urls is not None:
                payload["response_url"] = response_urls[len(out)]
            out.append(payload)
    return out


def exactly_once(rt: Runtime, gate_ids: list[int]) -> tuple[int, int, int, int]:
    """(decisions, distinct approver answers, decision audit events, gates decided) for these gates."""
    with transaction(rt.sessions) as session:
        rows = session.execute(select(DecisionRow.gate_id, DecisionRow.approver)
                               .where(DecisionRow.gate_id.in_(gate_ids))).all()
        engagement_ids = select(GateRow.engagement_id).where(GateRow.id.in_(gate_ids))
        audit = session.scalar(select(func.count()).select_from(AuditEventRow)
                               .where(AuditEventRow.kind == AuditKind.DECISION_RECORDED,
                                      AuditEventRow.engagement_id.in_(engagement_ids))) or 0
        decided = session.scalar(select(func.count()).select_from(GateRow)
                                 .where(GateRow.id.in_(gate_ids), GateRow.state == GateState.DECIDED)) or 0
    return len(rows), len(set(rows)), audit, decided


def _slack_child(conn: Connection) -> None:
    from phasegate.sandbox.standins.slack_api import SlackStandin

    slack = SlackStandin()
    slack.start()
    conn.send((slack.base_url, slack.bot_token))
    while (ask := conn.recv()) != "stop":
        if isinstance(ask, int):
            conn.send([slack.response_url() for _ in range(ask)])
        else:
            said = Counter(str(body.get("text", ""))[:80] for body in list(slack.responses))
            conn.send((said, sum(1 for call in list(slack.calls) if call == "chat.update")))
    slack.stop()


class SlackWorld:
    """The Slack stand-in (phasegate.sandbox) in a process of its own."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self._process = context.Process(target=_slack_child, args=(theirs,), daemon=True)
        self._process.start()
        self.base_url, self.token = self._conn.recv()

    def response_urls(self, count: int) -> list[str]:
        self._conn.send(count)
        urls: list[str] = self._conn.recv()
        return urls

    def said(self) -> tuple[Counter[str], int]:
        """What was posted to response URLs so far (text -> times), and chat.update calls so far."""
        self._conn.send("said")
        answer: tuple[Counter[str], int] = self._conn.recv()
        return answer

    def close(self) -> None:
        self._conn.send("stop")
        self._process.join(timeout=10)


def not_recorded(said: Counter[str]) -> int:
    return sum(n for said_text, n in said.items() if said_text.startswith(NOT_RECORDED_PREFIX))
