"""The tamper matrix's parts (tests/test_tamper_matrix.py): a ledger holding a row in every table that
decides anything, written by phasegate's own code, and the UPDATE, DELETE and INSERT an attacker with
database access would try on each of those rows."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from helpers import posted_gate, with_changes
from sqlalchemy import Connection, delete, func, insert, select, update

from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import chain, change_decisions, engagements, gates, phases, spend
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import transaction
from phasegate.ledger.models import Base
from phasegate.orchestration.runtime import Runtime
from phasegate.rules.change_requests import Draft
from phasegate.states import ChangeSource, Outcome, Via
from phasegate.tasks.kickoff import record_baseline

PM, SPONSOR, TECH_LEAD, VENDOR_LEAD, OUTSIDER = "U0PMACME01", "U0SPONSOR1", "U0TECHLEAD", "U0VENDLEAD", "U0OUTSIDE1"
SEALED_TABLES = ("engagements", "gates", "change_requests", "change_decisions", "attestations", "metric_submissions",
                 "baselines", "timeboxes")  # sealed by digest (phasegate.ledger.seals), named "(table row id)"
CHAIN_TABLES = ("decisions", "evidence_snapshots", "spend_entries")  # sealed by their event's row hash, named by noun
TABLES = SEALED_TABLES + CHAIN_TABLES
OPERATIONS = ("UPDATE", "DELETE", "INSERT")


def engagement_with_a_typed_metric(acme: Engagement) -> Engagement:
    """acme, its data-quality score typed by hand instead of read from the metric server."""
    metrics = [acme.metrics[0].model_dump(mode="json"), {**acme.metrics[1].model_dump(mode="json"),
                                                         "source": {"kind": "manual"}}]
    return with_changes(acme, metrics=metrics)


def every_deciding_row(rt: Runtime, engagement: Engagement) -> dict[str, Any]:
    """G1 decided GO, a change request filed, assessed and answered once, a typed metric value, an
    attestation, the first baseline and the PoC's timebox: each written by phasegate's code. {table: the row's id}."""
    gate_id = posted_gate(rt, engagement).id
    record_baseline.fn(rt, engagement)
    for approver in (SPONSOR, VENDOR_LEAD):
        with transaction(rt.sessions) as session:
            gates.answer(session, gate_id, approver=approver, outcome=Outcome.GO, reason="pilot scope only",
                         via=Via.SLACK)
    with transaction(rt.sessions) as session:
        cr, _ = crs.submit(session, engagement.id, Draft(title="More labelling", cost=1_000, effort_days=2),
                           requested_by=TECH_LEAD, source=ChangeSource.CLI)
        crs.assess(session, cr)
        cr_id = cr.id
    with transaction(rt.sessions) as session:
        change_decisions.answer(session, cr_id, approver=SPONSOR, outcome=Outcome.APPROVE, reason="", via=Via.SLACK)
        metric = engagements.submit_metric(session, engagement, "data_quality_score", "0.93", by=PM)
        attested = engagements.attest(session, engagement, Phase.HANDOVER, "pair-programming", by=SPONSOR,
                                      note="held weekly", via=Via.SLACK)
        session.flush()
        table = Base.metadata.tables["change_decisions"]
        answer_id = session.scalar(select(table.c.id).where(table.c.change_request_id == cr_id))
        baseline = crs.baseline(session, engagement.id)
        assert baseline is not None
        box = phases.current_timebox(session, engagement.id, Phase.POC)
        spent = spend.record(session, engagement, Phase.POC, "1200", by=PM, note="labelling")
        decision = gates.decisions(session, gate_id)[0]
        return {"engagements": engagement.id, "gates": gate_id, "change_requests": cr_id,
                "change_decisions": answer_id, "attestations": attested.id, "metric_submissions": metric.id,
                "baselines": baseline.id, "timeboxes": box.id, "decisions": decision.id,
                "evidence_snapshots": gates.by_id(session, gate_id).snapshot_id, "spend_entries": spent.id}


def _edited(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """The forgery an attacker would make to the row: each one changes what was decided."""
    if table == "engagements":  # an outsider made an approver of G1 by editing the stored file
        config = dict(row["config"])
        poc = dict(config["phases"]["poc"])
        gate = dict(poc["gate"])
        gate["approvers"] = [*gate["approvers"], {"slack_user": OUTSIDER, "name": "Outsider", "side": "client",
                                                  "role": "sponsor"}]
        config["phases"] = {**config["phases"], "poc": {**poc, "gate": gate}}
        return {"config": config}
    if table == "timeboxes":  # the PoC quietly given four more weeks
        return {"ends_on": row["ends_on"] + dt.timedelta(weeks=4), "weeks": row["weeks"] + 4}
    if table == "baselines":  # the change budget already spent, forgiven
        return {"scope": {**row["scope"], "change_spent": -50_000.0}}
    if table == "evidence_snapshots":  # the evidence the approvers saw, made to look better
        return {"body": {**row["body"], "milestones": []}}  # an open milestone no longer in what was frozen
    return {"gates": {"outcome": Outcome.NO_GO.value},  # a GO rewritten as NO-GO (or back)
            "decisions": {"approver": OUTSIDER},
            "spend_entries": {"amount": 1.0},
            "change_requests": {"cost": 1.0},
            "change_decisions": {"outcome": Outcome.REJECT.value},
            "attestations": {"attested_by": OUTSIDER},
            "metric_submissions": {"value": 0.99}}[table]


def _copy(conn: Connection, table_name: str, row: dict[str, Any]) -> dict[str, Any]:
    """The row again under a new id, changed only where a unique constraint requires it."""
    table = Base.metadata.tables[table_name]
    copy = dict(row)
    if table_name == "engagements":
        copy["id"] = f"{row['id']}-x"
        return copy
    copy["id"] = int(conn.scalar(select(func.max(table.c.id))) or 0) + 1000
    for column, step in {"revision": 100, "number": 100, "version": 100}.items():  # unique per engagement
        if column in copy and table_name in ("gates", "change_requests", "baselines", "timeboxes"):
            copy[column] += step
    for column in ("delivery_id", "jira_issue"):
        if column in copy:
            copy[column] = None
    return copy


def _dependents(table_name: str, key: Any) -> list[Any]:
    """DELETE statements for the rows that reference the row (foreign keys hold even with triggers off)."""
    t = Base.metadata.tables
    if table_name == "gates":
        return [delete(t["decisions"]).where(t["decisions"].c.gate_id == key)]
    if table_name == "evidence_snapshots":  # the gates that froze it, and their answers
        frozen = select(t["gates"].c.id).where(t["gates"].c.snapshot_id == key)
        return [delete(t["decisions"]).where(t["decisions"].c.gate_id.in_(frozen)),
                delete(t["gates"]).where(t["gates"].c.snapshot_id == key)]
    if table_name == "change_requests":
        return [delete(t[name]).where(t[name].c.change_request_id == key)
                for name in ("change_decisions", "jira_revisions")]
    if table_name == "engagements":
        requests = select(t["change_requests"].c.id).where(t["change_requests"].c.engagement_id == key)
        gate_ids = select(t["gates"].c.id).where(t["gates"].c.engagement_id == key)
        statements = [delete(t["decisions"]).where(t["decisions"].c.gate_id.in_(gate_ids))]
        statements += [delete(t[name]).where(t[name].c.change_request_id.in_(requests))
                       for name in ("change_decisions", "jira_revisions")]
        statements += [delete(table).where(table.c.engagement_id == key) for table in reversed(Base.metadata.sorted_tables)
                       if "engagement_id" in table.c and table.name not in ("audit_events", "audit_heads")]
        return statements
    return []


@dataclass(frozen=True)
class Case:
    table: str
    operation: str
    key: Any  # the row's id

    def run(self, conn: Connection) -> Any:
        """Do it; the id of the row that `audit verify` must name."""
        table = Base.metadata.tables[self.table]
        row = dict(conn.execute(select(table).where(table.c.id == self.key)).mappings().one())
        if self.operation == "UPDATE":
            conn.execute(update(table).where(table.c.id == self.key).values(_edited(self.table, row)))
            return self.key
        if self.operation == "DELETE":
            for statement in _dependents(self.table, self.key):
                conn.execute(statement)
            conn.execute(delete(table).where(table.c.id == self.key))
            return self.key
        copy = _copy(conn, self.table, row)
        conn.execute(insert(table).values(copy))
        return copy["id"]


def cases(rows: dict[str, Any]) -> list[Case]:
    return [Case(table, operation, rows[table]) for table in TABLES for operation in OPERATIONS]


def names(case: Case, row: Any, problem: str) -> bool:
    """Whether one of verify's problems names the row by table and id."""
    if case.table in CHAIN_TABLES:
        return re.search(rf"\b{chain.ROW_NAMES[case.table]} {row}\b", problem) is not None
    return f"({case.table} row {row})" in problem


Attempt = Callable[[Case], tuple[bool, list[str], Any]]  # (refused by the database, verify's problems, row named)
