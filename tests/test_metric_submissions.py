"""Metric values typed by hand (`phasegate evidence metric`), on SQLite and PostgreSQL.

A typed value becomes gate evidence, so: only a finite decimal number is taken (infinity passes
any `>=`, NaN fails every comparison silently), it must lie in the metric's declared range (a
0–1 score typed as 93), only the engagement's PM or one of its approvers may submit, and the row
keeps who submitted it, when, and the exact text typed."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.configs.schema import Engagement
from phasegate.errors import PolicyError
from phasegate.ledger import engagements
from phasegate.ledger.db import transaction
from phasegate.ledger.models import MetricSubmissionRow

LEE, PM, OUTSIDER = "U0LEEPARK1", "U0PMGLOBEX", "U0SPONSOR1"  # U0SPONSOR1 approves acme, not globex
DECIMAL = re.compile(r"[ \t]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t]*")


@pytest.fixture
def globex(ledger: sessionmaker[Session]) -> Engagement:
    engagement = load_engagement(ENGAGEMENTS_DIR / "globex-forecast.yaml")
    with transaction(ledger) as session:
        engagements.register(session, engagement)
    return engagement


def submissions(ledger: sessionmaker[Session]) -> list[MetricSubmissionRow]:
    with transaction(ledger) as session:
        return list(session.scalars(select(MetricSubmissionRow).order_by(MetricSubmissionRow.id)))


def submit(ledger: sessionmaker[Session], globex: Engagement, raw: str, by: str = LEE) -> MetricSubmissionRow:
    with transaction(ledger) as session:
        return engagements.submit_metric(session, globex, "data_quality_score", raw, by=by,
                                         operator="ana@build-7")


def test_the_submission_keeps_who_when_and_the_text_typed(ledger: sessionmaker[Session], globex: Engagement) -> None:
    submit(ledger, globex, "0.930")
    [row] = submissions(ledger)
    assert (row.value, row.raw_value, row.submitted_by, row.operator) == (0.93, "0.930", LEE, "ana@build-7")
    assert row.created_at.tzinfo is not None


@pytest.mark.parametrize("raw", ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e999", "-1e400"])
def test_nan_and_infinities_are_refused(ledger: sessionmaker[Session], globex: Engagement, raw: str) -> None:
    with pytest.raises(PolicyError, match="is not a finite number"):
        submit(ledger, globex, raw)
    assert submissions(ledger) == []


@pytest.mark.parametrize("raw", ["93", "-0.01", "1.0000001"])
def test_a_value_outside_the_declared_range_is_refused(ledger: sessionmaker[Session], globex: Engagement,
                                                       raw: str) -> None:
    with pytest.raises(PolicyError, match=r"outside data_quality_score's declared range \[0, 1\]"):
        submit(ledger, globex, raw)
    assert submissions(ledger) == []


@pytest.mark.parametrize("raw", ["0", "1", "1.0", " 0.5", "5e-1"])
def test_the_range_is_inclusive(ledger: sessionmaker[Session], globex: Engagement, raw: str) -> None:
    assert submit(ledger, globex, raw).value == float(raw)


@pytest.mark.parametrize("raw", ["", "0,93", "93%", "١", "1_0", "0x1", "0.9\n", "0.9\x00", "\ud800", "1e", "."])
def test_anything_but_a_plain_decimal_is_refused(ledger: sessionmaker[Session], globex: Engagement,
                                                 raw: str) -> None:
    with pytest.raises(PolicyError, match="not a decimal number such as 0.93"):
        submit(ledger, globex, raw)
    assert submissions(ledger) == []


def test_only_the_pm_or_an_approver_may_submit(ledger: sessionmaker[Session], globex: Engagement) -> None:
    with pytest.raises(PolicyError, match=f"{OUTSIDER} is neither the PM nor an approver of globex-forecast"):
        submit(ledger, globex, "0.9", by=OUTSIDER)
    assert submissions(ledger) == []
    submit(ledger, globex, "0.91", by=PM)
    assert [(r.submitted_by, r.value) for r in submissions(ledger)] == [(PM, 0.91)]


TYPED = st.one_of(
    st.text(max_size=40),
    st.from_regex(DECIMAL, fullmatch=True),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "0.93", "١", "\x00", "\ud800", "93", " 1 "]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=TYPED)
def test_any_typed_text_is_refused_cleanly_or_recorded_exactly(ledger: sessionmaker[Session], globex: Engagement,
                                                               raw: str) -> None:
    with transaction(ledger) as session:
        before = session.scalar(select(func.count()).select_from(MetricSubmissionRow))
    try:
        row = submit(ledger, globex, raw)
    except PolicyError as refusal:
        assert "\n" not in str(refusal)
        with transaction(ledger) as session:
            assert session.scalar(select(func.count()).select_from(MetricSubmissionRow)) == before
        return
    value = float(raw)
    assert DECIMAL.fullmatch(raw) and math.isfinite(value) and 0 <= value <= 1
    [stored] = [r for r in submissions(ledger) if r.id == row.id]
    assert (stored.raw_value, stored.value) == (raw, value)
