"""The vendor's team changes and the client's running checks, recorded in the audit chain.

Both decide the engagement's course (who builds it, whether knowledge is being transferred,
whether the client's data is gone), so each is an audit event, hash-chained with the rest; the
weekly report and the gate prompt read them back from there (`phasegate.rules.handoff`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from phasegate.configs.schema import Engagement, Side
from phasegate.configs.sponsor_schema import NAME, ROLE
from phasegate.errors import NotFound, PolicyError
from phasegate.ledger import audit
from phasegate.ledger.models import AuditEventRow, GateRow
from phasegate.rules.handoff import CHECKS, Attested, Change, roster
from phasegate.states import AuditKind, Via
from phasegate.text import checked


def sides(engagement: Engagement) -> dict[str, Side]:
    return {a.slack_user: a.side for p in engagement.phases.present() for a in engagement.phases.of(p).gate.approvers}


def attest_check(session: Session, engagement: Engagement, check: str, *, by: str, holds: bool, via: Via,
                 note: str = "", operator: str | None = None) -> None:
    """The client side vouches that a running check holds this week (or says it does not). Only the
    client's approvers may: the vendor saying it transfers knowledge is what the check is not."""
    if check not in CHECKS:
        raise NotFound(f"there is no check {check!r}; the checks are {', '.join(CHECKS)}")
    if sides(engagement).get(by) is not Side.CLIENT:
        raise PolicyError(f"{by} is not one of {engagement.id}'s client-side approvers, who attest its checks")
    checked("note", note)
    audit.record(session, engagement.id, AuditKind.CHECK_ATTESTED, check, by=by, holds=holds, note=note,
                 channel=via.value, operator=operator)


def change_team(session: Session, engagement: Engagement, *, joins: tuple[str, str] | None, leaves: str | None,
                by: str, reason: str, via: Via, operator: str | None = None) -> list[Change]:
    """Record that a named individual left the vendor's team and/or one joined (name, role). The PM
    or an approver records it; the reason is required (a rotating bench is what it guards against)."""
    if joins is None and leaves is None:
        raise PolicyError("say who joins and/or who leaves the vendor's team")
    if by != engagement.pm_slack_user and by not in sides(engagement):
        raise PolicyError(f"{by} is neither the PM nor an approver of {engagement.id} and so cannot change its team")
    if not reason.strip():
        raise PolicyError("give the reason for the change of the vendor's team")
    checked("reason", reason)
    now = roster(engagement.vendor_team, team_changes(session, engagement.id))
    recorded = []
    if leaves is not None:
        match = next(((n, r) for n, r in now if n.casefold() == leaves.strip().casefold()), None)
        if match is None:
            names = ", ".join(n for n, _ in now) or "nobody"
            raise NotFound(f"{leaves!r} is not on {engagement.id}'s vendor team (now: {names})")
        recorded.append(("left", match[0], match[1]))
    if joins is not None:
        name, role = checked("name", joins[0].strip(), NAME), checked("role", joins[1].strip(), ROLE)
        if not name or not role:
            raise PolicyError("a team member joining needs a name and a role")
        recorded.append(("joined", name, role))
    for kind, name, role in recorded:
        audit.record(session, engagement.id, AuditKind.ROSTER_CHANGED, kind, name=name, role=role, by=by,
                     reason=reason, channel=via.value, operator=operator)
    return team_changes(session, engagement.id)[-len(recorded):]


def change_of(row: AuditEventRow) -> Change:
    p = row.payload
    return Change(kind=row.subject, name=str(p.get("name", "")), role=str(p.get("role", "")), by=str(p.get("by", "")),
                  at=row.created_at, reason=str(p.get("reason", "")))


def attested_of(row: AuditEventRow) -> Attested:
    p = row.payload
    return Attested(check=row.subject, holds=bool(p.get("holds")), by=str(p.get("by", "")), at=row.created_at,
                    note=str(p.get("note", "")))


def team_changes(session: Session, engagement_id: str) -> list[Change]:
    return [change_of(row) for row in audit.events(session, engagement_id, AuditKind.ROSTER_CHANGED)]


def check_attestations(session: Session, engagement_id: str) -> list[Attested]:
    return [attested_of(row) for row in audit.events(session, engagement_id, AuditKind.CHECK_ATTESTED)]


def changes_before(session: Session, gate: GateRow) -> list[Change]:
    """The team changes a gate's deciders should know of: those since the engagement's previous gate
    was decided (all of them at its first gate), up to now."""
    earlier = session.scalar(select(GateRow.decided_at).where(
        GateRow.engagement_id == gate.engagement_id, GateRow.id < gate.id, GateRow.decided_at.is_not(None))
        .order_by(GateRow.decided_at.desc()).limit(1))
    return [c for c in team_changes(session, gate.engagement_id) if earlier is None or c.at > earlier]


def events_of(session: Session, ids: list[str]) -> list[AuditEventRow]:
    """Both kinds for many engagements in one query, oldest first (the report's bulk view)."""
    return list(session.scalars(select(AuditEventRow).where(
        AuditEventRow.engagement_id.in_(ids),
        AuditEventRow.kind.in_([AuditKind.ROSTER_CHANGED, AuditKind.CHECK_ATTESTED])).order_by(AuditEventRow.seq)))
