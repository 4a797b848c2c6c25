"""Engagements in the ledger: their files, milestone links, baselines, attestations and hand-typed
metric values, and their closing. Phase runs and timeboxes are in `phasegate.ledger.phases`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from phasegate.configs import checks, limits
from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import NotFound, PolicyError
from phasegate.ledger import audit, chain
from phasegate.ledger.models import (
    AttestationRow,
    BaselineRow,
    EngagementRow,
    MetricSubmissionRow,
    MilestoneLinkRow,
)
from phasegate.states import AuditKind, EngagementState, Via
from phasegate.text import checked


def digest_of(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def register(session: Session, engagement: Engagement, *, operator: str | None = None) -> tuple[EngagementRow, bool]:
    """Store the validated file; (row, True) when new or changed. A running engagement's file changes
    only through an approved change request (`phasegate engagement apply FILE` files one).
    `operator`: the user@host of the CLI command that registered it."""
    config = engagement.model_dump(mode="json")
    digest = digest_of(config)
    row = session.get(EngagementRow, engagement.id)
    if row is not None:
        if row.config_digest == digest:
            return row, False
        if row.state is not EngagementState.REGISTERED:
            raise PolicyError(f"engagement {engagement.id} is {row.state.value}; its file can no longer change "
                              "(scope changes go through change requests: `phasegate engagement apply FILE` files one)")
        row.config, row.config_digest, row.name = config, digest, engagement.name
    else:
        row = EngagementRow(id=engagement.id, name=engagement.name, config=config, config_digest=digest)
        session.add(row)
    audit.record(session, engagement.id, AuditKind.ENGAGEMENT_REGISTERED, covers=row, digest=digest,
                 operator=operator)
    return row, True


def get(session: Session, engagement_id: str, *, lock: bool = False) -> EngagementRow:
    """`lock`: hold the row until the transaction ends (one writer per engagement for what is
    decided by counting audit events, such as a run's restart number)."""
    row = session.get(EngagementRow, engagement_id, with_for_update=lock or None)
    if row is None:
        raise missing(engagement_id)
    return row


def missing(engagement_id: str) -> NotFound:
    return NotFound(f"no engagement {engagement_id!r} in the ledger (register it with `phasegate engagement create FILE`)")


# Decoded engagement files by config digest. A digest names one file for ever (an amendment gets a
# new digest) and Engagement is frozen, so the endpoint and the flows validate each file once per
# process instead of at every click and every step. Cleared when full; a miss only costs a decode.
DECODED: dict[str, Engagement] = {}
DECODED_MAX = 2048


def config_of(row: EngagementRow) -> Engagement:
    """The engagement file the row was registered (or last amended) with."""
    return DECODED.get(row.config_digest) or decoded(row.config_digest, row.config)


def decoded(digest: str, config: dict[str, Any]) -> Engagement:
    engagement = Engagement.model_validate(config, context=checks.STORED)  # checked when it was stored
    if len(DECODED) >= DECODED_MAX:
        DECODED.clear()
    DECODED[digest] = engagement
    return engagement


def all_rows(session: Session) -> list[EngagementRow]:
    return list(session.scalars(select(EngagementRow).order_by(EngagementRow.id)))


def link_milestone(session: Session, engagement_id: str, phase: Phase, milestone: str, issue_key: str) -> None:
    exists = session.scalar(select(MilestoneLinkRow).where(MilestoneLinkRow.engagement_id == engagement_id,
                                                           MilestoneLinkRow.phase == phase,
                                                           MilestoneLinkRow.milestone == milestone))
    if exists is None:
        session.add(MilestoneLinkRow(engagement_id=engagement_id, phase=phase, milestone=milestone,
                                     issue_key=issue_key))
        audit.record(session, engagement_id, AuditKind.MILESTONE_LINKED, milestone, issue=issue_key)


def links(session: Session, engagement_id: str, phase: Phase) -> dict[str, str]:
    rows = session.scalars(select(MilestoneLinkRow).where(MilestoneLinkRow.engagement_id == engagement_id,
                                                          MilestoneLinkRow.phase == phase))
    return {r.milestone: r.issue_key for r in rows}


def record_baseline(session: Session, engagement_id: str, scope: dict[str, Any]) -> BaselineRow:
    """The first baseline is recorded once; later versions come from approved change requests."""
    first = session.scalar(select(BaselineRow).where(BaselineRow.engagement_id == engagement_id,
                                                     BaselineRow.version == 1))
    if first is not None:
        return first
    row = BaselineRow(engagement_id=engagement_id, version=1, scope=scope)
    session.add(row)
    audit.record(session, engagement_id, AuditKind.BASELINE_RECORDED, "v1", covers=row, scope=scope)
    return row


def attest(session: Session, engagement: Engagement, phase: Phase, milestone: str, *, by: str, note: str,
           via: Via, operator: str | None = None) -> AttestationRow | None:
    """Record who vouched for a milestone, and when (and from where: `operator`, the CLI's user@host);
    None if its latest attestation is already theirs (a double click, a command run twice): nothing
    recorded. Only the engagement's named approvers may. The check and the write are one step: the
    engagement's chain head is locked first, so two attestations of one engagement never both pass it."""
    config = next((m for m in engagement.phases.of(phase).milestones if m.key == milestone), None)
    if config is None:
        raise NotFound(f"{engagement.id} has no milestone {milestone!r} in {phase.value}")
    if not config.attestation:
        raise PolicyError(f"milestone {milestone} takes its evidence from Jira, not from an attestation")
    checked("note", note)
    sides = {a.slack_user: a.side.value for p in engagement.phases.present() for a in engagement.phases.of(p).gate.approvers}
    if by not in sides:
        raise PolicyError(f"{by} is not an approver of {engagement.id} and so cannot attest")
    if config.attesting_side not in ("either", sides[by]):
        raise PolicyError(f"{milestone} is attested by the {config.attesting_side} side; {by} is on the "
                          f"{sides[by]} side")
    chain.lock_head(session, engagement.id)  # held until commit: a concurrent attestation waits here
    previous = attestations(session, engagement.id, phase).get(milestone)
    if previous is not None and previous[0] == by:
        return None
    row = AttestationRow(engagement_id=engagement.id, phase=phase, milestone=milestone, attested_by=by,
                         via=via, note=note, operator=operator)
    session.add(row)
    audit.record(session, engagement.id, AuditKind.ATTESTATION_RECORDED, milestone, covers=row, by=by, note=note,
                 channel=via.value, operator=operator)  # the payload key predates the name `via`
    return row


def attestations(session: Session, engagement_id: str, phase: Phase) -> dict[str, tuple[str, dt.datetime]]:
    rows = session.scalars(select(AttestationRow).where(AttestationRow.engagement_id == engagement_id,
                                                        AttestationRow.phase == phase).order_by(AttestationRow.id))
    return {r.milestone: (r.attested_by, r.created_at) for r in rows}


DECIMAL = re.compile(r"[ \t]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t]*")


def typed_value(raw: str) -> float:
    """The number in a hand-typed metric value; PolicyError unless it is a plain, finite decimal.
    Python's float() alone would take `nan`, `inf`, `1_0` and digits from other scripts."""
    shown = repr(raw) if len(raw) <= 40 else repr(raw[:40]) + "…"
    if len(raw) > limits.METRIC_VALUE:
        raise PolicyError(f"a metric value may have at most {limits.METRIC_VALUE} characters, not {len(raw)}")
    if not DECIMAL.fullmatch(raw):
        if raw.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise PolicyError(f"{shown} is not a finite number")
        raise PolicyError(f"{shown} is not a decimal number such as 0.93")
    value = float(raw)
    if not math.isfinite(value):  # 1e999
        raise PolicyError(f"{shown} is not a finite number")
    return value


def submit_metric(session: Session, engagement: Engagement, metric: str, raw: str, *, by: str,
                  operator: str | None = None) -> MetricSubmissionRow:
    """Record a metric value typed by hand, exactly as typed, with who typed it (`by`, the Slack id
    given) and from where (`operator`, the CLI's user@host). Only the PM or an approver may."""
    config = next((m for m in engagement.metrics if m.name == metric), None)
    if config is None:
        raise NotFound(f"{engagement.id} has no metric {metric!r}")
    if config.source.kind != "manual":
        raise PolicyError(f"{metric} is read from {config.source.kind}, not submitted by hand")
    approvers = {a.slack_user for p in engagement.phases.present() for a in engagement.phases.of(p).gate.approvers}
    if by != engagement.pm_slack_user and by not in approvers:
        raise PolicyError(f"{by} is neither the PM nor an approver of {engagement.id} and so cannot submit metrics")
    value = typed_value(raw)
    refusal = config.refusal(value)
    if refusal is not None:
        raise PolicyError(refusal)
    row = MetricSubmissionRow(engagement_id=engagement.id, metric=metric, value=value, raw_value=raw,
                              submitted_by=by, operator=operator)
    session.add(row)
    audit.record(session, engagement.id, AuditKind.METRIC_SUBMITTED, metric, covers=row, value=value, raw=raw, by=by,
                 operator=operator)
    return row


def submitted_metrics(session: Session, engagement_id: str) -> dict[str, float]:
    rows = session.scalars(select(MetricSubmissionRow).where(MetricSubmissionRow.engagement_id == engagement_id)
                           .order_by(MetricSubmissionRow.id))
    return {r.metric: r.value for r in rows}


def close(session: Session, engagement_id: str, state: EngagementState, reason: str) -> bool:
    """End the engagement; False when it had already ended this way."""
    row = get(session, engagement_id)
    if row.state is state:
        return False
    row.state.check_can_become(state, f"engagement {engagement_id}")
    row.state, row.closed_reason = state, reason
    audit.record(session, engagement_id, AuditKind.ENGAGEMENT_CLOSED, state.value, covers=row, reason=reason)
    return True
