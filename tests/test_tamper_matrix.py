"""Issue 18 item 5, the tamper matrix: every table that decides anything (engagements, gates, change
requests, the answers to them, attestations, typed metric values, baselines, timeboxes; and the rows the
chain seals by hash: gate answers, frozen evidence, spend) x UPDATE / DELETE /
INSERT, tried as PostgreSQL's runtime role (ordinary row rights) and as the owner with the triggers
dropped, on PostgreSQL and SQLite. Every change the database lets through is named by `audit
verify`, by table and row (and, for an edit, the column); what it refuses leaves the ledger intact.

Each case runs in its own transaction, with `verify` reading inside it before the rollback, so one
ledger written by phasegate's own code serves all 33 cases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import settings_for, triggers_off
from helpers import closed_port_url
from pg_roles import owner_and_runtime
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from tamper_matrix import (
    CHAIN_TABLES,
    SEALED_TABLES,
    SPONSOR,
    TABLES,
    Case,
    cases,
    engagement_with_a_typed_metric,
    every_deciding_row,
    names,
)
from typer.testing import CliRunner

from phasegate.cli.main import app
from phasegate.configs.schema import Engagement
from phasegate.ledger import append_only
from phasegate.ledger.db import make_engine
from phasegate.ledger.models import Base
from phasegate.ledger.verify import verify
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.metrics_api import MetricsStandin
from phasegate.sandbox.standins.slack_api import SlackStandin


def problems_of(conn: object) -> list[str]:
    session = Session(bind=conn)  # type: ignore[arg-type]
    return [p for report in verify(session) for p in report.problems]


def attempt(engine: Engine, case: Case, *, drop_triggers: bool) -> tuple[bool, list[str], object]:
    """(refused by the database, what verify then says, the row it must name), all rolled back."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            if drop_triggers:
                append_only.drop(conn)
            try:
                named = case.run(conn)
            except DBAPIError:
                return True, [], None
            return False, problems_of(conn), named
        finally:
            trans.rollback()


def uncaught(engine: Engine, rows: dict[str, object], *, drop_triggers: bool) -> tuple[list[str], list[str]]:
    """(cases the database refused, cases it let through that verify did not name by table and row)."""
    refused, missed = [], []
    for case in cases(rows):
        was_refused, problems, named = attempt(engine, case, drop_triggers=drop_triggers)
        label = f"{case.operation} {case.table}"
        if was_refused:
            refused.append(label)
        elif not any(names(case, named, p) for p in problems):
            missed.append(f"{label} row {named}: {problems}")
    return refused, missed


def test_every_change_by_the_owner_with_triggers_dropped_is_named(rt: Runtime, acme: Engagement,
                                                                  ledger_url: str) -> None:
    rows = every_deciding_row(rt, engagement_with_a_typed_metric(acme))
    engine = make_engine(ledger_url)
    try:
        with engine.connect() as conn:
            assert problems_of(conn) == []
        refused, missed = uncaught(engine, rows, drop_triggers=True)
    finally:
        engine.dispose()
    assert refused == [] and missed == []


def test_an_edit_names_its_column(rt: Runtime, acme: Engagement, ledger_url: str) -> None:
    rows = every_deciding_row(rt, engagement_with_a_typed_metric(acme))
    engine = make_engine(ledger_url)
    try:
        found = {table: attempt(engine, Case(table, "UPDATE", rows[table]), drop_triggers=True)[1]
                 for table in ("gates", "attestations", "engagements")}
    finally:
        engine.dispose()
    gate, attestation = rows["gates"], rows["attestations"]
    assert any(f"(gates row {gate}) was changed after event #" in p and "outcome now 'no_go', sealed 'go'" in p
               for p in found["gates"]), found["gates"]
    assert any(f"(attestations row {attestation})" in p and f"attested_by now 'U0OUTSIDE1', sealed '{SPONSOR}'" in p
               for p in found["attestations"]), found["attestations"]
    assert any("(engagements row acme-churn)" in p and "config now 'sha256:" in p for p in found["engagements"])


@pytest.fixture
def two_roles() -> Iterator[tuple[str, str, str]]:
    """(owner url, runtime url, runtime role): a database owned by a fresh owner role (as test_roles.py)."""
    with owner_and_runtime("tamper") as urls:
        yield urls


def test_the_runtime_role_is_refused_or_named_and_the_owner_is_named(
        two_roles: tuple[str, str, str], acme: Engagement, slack: SlackStandin, jira: JiraStandin,
        metrics: MetricsStandin, tmp_path: Path) -> None:
    owner_url, runtime_url, role = two_roles
    done = CliRunner().invoke(app, ["db", "upgrade", "--runtime-role", role], env={"PHASEGATE_DATABASE_URL": owner_url})
    assert done.exit_code == 0, done.output
    rt = Runtime(settings_for(runtime_url, slack, jira, metrics, tmp_path))  # phasegate runs as the runtime role
    try:
        rows = every_deciding_row(rt, engagement_with_a_typed_metric(acme))
    finally:
        rt.close()
    runtime, owner = make_engine(runtime_url), make_engine(owner_url)
    try:
        refused, missed = uncaught(runtime, rows, drop_triggers=False)
        owner_refused, owner_missed = uncaught(owner, rows, drop_triggers=True)
    finally:
        runtime.dispose()
        owner.dispose()
    written_once = ("change_decisions", "attestations", "metric_submissions", "baselines", *CHAIN_TABLES)
    assert missed == []  # every UPDATE and INSERT the runtime role could make is named
    assert sorted(refused) == sorted([f"DELETE {t}" for t in TABLES] + [f"UPDATE {t}" for t in written_once])
    assert owner_refused == [] and owner_missed == []


@pytest.fixture
def verify_cli(ledger_url: str, tmp_path: Path) -> CliRunner:
    return CliRunner(env={"PHASEGATE_HOME": str(tmp_path), "PHASEGATE_DATABASE_URL": ledger_url,
                          "PREFECT_API_URL": closed_port_url(), "COLUMNS": "200"})


def test_a_state_the_code_does_not_know_is_a_named_problem(rt: Runtime, acme: Engagement, ledger_url: str,
                                                           verify_cli: CliRunner) -> None:
    """Issue 18: a gate state `DECIDED` (the column takes it, the code does not) crashed verify."""
    rows = every_deciding_row(rt, engagement_with_a_typed_metric(acme))
    gates = Base.metadata.tables["gates"]
    engine = make_engine(ledger_url)
    with engine.begin() as conn, triggers_off(conn):
        conn.execute(update(gates).where(gates.c.id == rows["gates"]).values(state="DECIDED"))
    engine.dispose()
    result = verify_cli.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert f"phasegate: acme-churn: gate {rows['gates']} (gates row {rows['gates']}): state 'DECIDED' is not one " \
           "phasegate knows (open, decided, stale)" in lines, lines
    assert any(f"(gates row {rows['gates']}) was changed after event #" in line for line in lines), lines


def test_a_rewritten_no_go_is_not_exported_as_intact(rt: Runtime, acme: Engagement, ledger_url: str,
                                                     verify_cli: CliRunner) -> None:
    """Issue 18: a decided gate's outcome rewritten and `audit export` printed "Audit chain intact" beside it."""
    rows = every_deciding_row(rt, engagement_with_a_typed_metric(acme))
    gates = Base.metadata.tables["gates"]
    engine = make_engine(ledger_url)
    with engine.begin() as conn:  # gates are not append-only: the runtime role's rights suffice
        conn.execute(update(gates).where(gates.c.id == rows["gates"]).values(outcome="no_go"))
    engine.dispose()
    exported = verify_cli.invoke(app, ["audit", "export", "acme-churn"])
    assert exported.exit_code == 0, exported.output
    assert "Audit chain intact" not in exported.stdout
    result = verify_cli.invoke(app, ["audit", "verify", "acme-churn"])
    assert result.exit_code == 1
    assert any(f"(gates row {rows['gates']})" in line and "outcome now 'no_go', sealed 'go'" in line
               for line in result.stderr.splitlines()), result.stderr


def test_there_is_a_case_for_every_table_phasegate_seals() -> None:
    from phasegate.ledger import chain, seals

    assert set(SEALED_TABLES) == set(seals.SEALED) and set(CHAIN_TABLES) == set(chain.ROW_COLUMNS)
