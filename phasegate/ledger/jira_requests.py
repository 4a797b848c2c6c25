"""Change requests filed from Jira in the ledger: the content each was filed on (frozen under its
digest), what an edit in Jira does to it, and where its issue went.

An edit reaches an open request as a new revision: its fields become the issue's, it is assessed
again, and the answers given to the revision before no longer count (each answer names its
revision; `change_requests.decisions` reads the current one's). A decided request is never
changed: the edit is recorded, once per new digest, as a difference for people to act on. An
issue that was deleted, or moved to another project, is recorded once; one moved back under a new
key is the same request, now under that key. Each of these is an audit event written in the same
transaction as what it describes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from phasegate.ledger import audit
from phasegate.ledger import change_requests as crs
from phasegate.ledger.models import ChangeRequestRow, JiraRevisionRow
from phasegate.rules import change_requests as cr_model
from phasegate.rules import jira_requests as jira_rules
from phasegate.states import AuditKind, ChangeRequestState, ChangeSource


@dataclass(frozen=True)
class Known:
    """A request filed from Jira, as the import compares it with the issue."""

    cr_id: int
    number: int
    name: str
    key: str  # the issue key the request names now
    issue_id: str | None  # None: filed before revisions were kept (matched by key only)
    content: jira_rules.Content | None
    digest: str | None
    state: ChangeRequestState
    revision: int
    unasked: bool  # a new revision whose prompt is not posted yet
    flow_run_id: str | None
    gone: bool  # its issue was found deleted


def latest(session: Session, cr_id: int) -> JiraRevisionRow | None:
    return session.scalar(select(JiraRevisionRow).where(JiraRevisionRow.change_request_id == cr_id)
                          .order_by(JiraRevisionRow.revision.desc()).limit(1))


def revision_changes(session: Session, cr: ChangeRequestRow) -> list[str]:
    """What the request's current revision changed against the one before (none for revision 1)."""
    rows = list(session.scalars(select(JiraRevisionRow).where(JiraRevisionRow.change_request_id == cr.id,
                                                              JiraRevisionRow.revision.in_([cr.revision - 1,
                                                                                            cr.revision]))
                                .order_by(JiraRevisionRow.revision)))
    if len(rows) != 2:
        return []
    return jira_rules.changes(jira_rules.content_from(rows[0].content), jira_rules.content_from(rows[1].content))


def superseded_prompt(session: Session, cr: ChangeRequestRow) -> str | None:
    """The ts of the prompt the current revision replaced, if it had one."""
    for event in reversed(audit.events(session, cr.engagement_id, AuditKind.CR_REVISED, cr.name)):
        if event.payload.get("revision") == cr.revision:
            ts = event.payload.get("superseded_ts")
            return str(ts) if ts else None
    return None


def known(session: Session, engagement_id: str) -> list[Known]:
    found = []
    for cr in session.scalars(select(ChangeRequestRow).where(ChangeRequestRow.engagement_id == engagement_id,
                                                             ChangeRequestRow.jira_issue.is_not(None))
                              .order_by(ChangeRequestRow.number)):
        row = latest(session, cr.id)
        found.append(Known(cr.id, cr.number, cr.name, str(cr.jira_issue), row.issue_id if row else None,
                           jira_rules.content_from(row.content) if row else None, row.digest if row else None,
                           cr.state, cr.revision, not cr.state.final and cr.revision > 1 and not cr.message_ts,
                           cr.flow_run_id, bool(audit.events(session, cr.engagement_id, AuditKind.CR_JIRA_GONE,
                                                             cr.name))))
    return found


def file(session: Session, engagement_id: str, content: jira_rules.Content, *, key: str, issue_id: str,
         requested_by: str) -> tuple[ChangeRequestRow, bool]:
    """File the issue as a request, its content frozen as revision 1 in the same transaction."""
    jira = {"issue_id": issue_id, "digest": content.digest, "content": content.as_dict()}
    cr, created = crs.submit(session, engagement_id, content.draft(key), requested_by=requested_by,
                             source=ChangeSource.JIRA, extra={"jira": jira})
    if created:
        session.add(JiraRevisionRow(change_request_id=cr.id, revision=1, digest=content.digest,
                                    content=content.as_dict(), issue_key=key, issue_id=issue_id))
    return cr, created


def revise(session: Session, cr_id: int, content: jira_rules.Content, *, key: str,
           issue_id: str) -> list[str] | None:
    """The issue's new content as the open request's next revision, assessed again; what changed, or
    None when the current revision already holds it (another import got there first). GateClosed
    once the request is decided (see `report_change`)."""
    cr = crs.by_id(session, cr_id, lock=True)
    if cr.state.final:
        raise crs.closed(session, cr)
    before = latest(session, cr.id)
    if before is not None and before.digest == content.digest:
        return None
    old = jira_rules.content_from(before.content) if before else None
    draft = cr_model.validate(content.draft(key))
    voided = len(crs.decisions(session, cr.id))
    superseded, previous = cr.message_ts, before.digest if before else None
    cr.revision += 1
    cr.title, cr.rationale, cr.effort_days = draft.title, draft.rationale, draft.effort_days
    cr.not_estimated = {"items": list(draft.not_estimated)} if draft.not_estimated else None
    cr.state, cr.assessment, cr.message_ts = ChangeRequestState.SUBMITTED, None, None
    session.add(JiraRevisionRow(change_request_id=cr.id, revision=cr.revision, digest=content.digest,
                                content=content.as_dict(), issue_key=key, issue_id=issue_id))
    changes = jira_rules.changes(old, content) if old else ["filed before its content was kept"]
    audit.record(session, cr.engagement_id, AuditKind.CR_REVISED, cr.name, covers=cr, cr_id=cr.id, revision=cr.revision,
                 issue=key, digest=content.digest, previous_digest=previous, content=content.as_dict(),
                 changes=changes, answers_voided=voided, superseded_ts=superseded)
    crs.assess(session, cr)
    return changes


def report_change(session: Session, cr_id: int, content: jira_rules.Content, *, key: str) -> list[str] | None:
    """Record, once per new digest, that a decided request's issue no longer says what was decided;
    what changed, or None when this digest was recorded before."""
    cr = crs.by_id(session, cr_id)
    row = latest(session, cr.id)
    if row is None or audit.exists(session, cr.engagement_id, AuditKind.CR_JIRA_CHANGED, cr.name,
                                   digest=content.digest):
        return None
    changes = jira_rules.changes(jira_rules.content_from(row.content), content)
    audit.record(session, cr.engagement_id, AuditKind.CR_JIRA_CHANGED, cr.name, cr_id=cr.id, issue=key,
                 state=cr.state.value, revision=cr.revision, digest=content.digest, decided_digest=row.digest,
                 content=content.as_dict(), changes=changes)
    return changes



def gone(session: Session, cr_id: int, *, key: str) -> bool:
    """Record that the request's issue is deleted (or invisible to phasegate); False if it was before."""
    cr = crs.by_id(session, cr_id)
    if audit.exists(session, cr.engagement_id, AuditKind.CR_JIRA_GONE, cr.name):
        return False
    audit.record(session, cr.engagement_id, AuditKind.CR_JIRA_GONE, cr.name, cr_id=cr.id, issue=key,
                 state=cr.state.value)
    return True


def moved_away(session: Session, cr_id: int, *, key: str, to: str, project: str) -> bool:
    """Record that the request's issue now lives in another project as `to`; False if known before.
    The request keeps naming its old key: nothing of it is done in the other project."""
    cr = crs.by_id(session, cr_id)
    if audit.exists(session, cr.engagement_id, AuditKind.CR_JIRA_MOVED, cr.name, to=to):
        return False
    audit.record(session, cr.engagement_id, AuditKind.CR_JIRA_MOVED, cr.name, cr_id=cr.id, issue=key, to=to,
                 project=project, state=cr.state.value)
    return True


def moved_back(session: Session, cr_id: int, *, to: str, project: str) -> str:
    """The issue is in the engagement's project again under the key `to`: the request names it from
    now on. The key it was last seen under (in the other project, or the request's old key)."""
    cr = crs.by_id(session, cr_id, lock=True)
    seen = audit.events(session, cr.engagement_id, AuditKind.CR_JIRA_MOVED, cr.name)
    last = str(seen[-1].payload.get("to")) if seen else str(cr.jira_issue)
    audit.record(session, cr.engagement_id, AuditKind.CR_JIRA_MOVED, cr.name, cr_id=cr.id, issue=last, to=to,
                 project=project, state=cr.state.value, before=cr.jira_issue)
    cr.jira_issue = to
    return last
