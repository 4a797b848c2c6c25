"""The ledger's record of change requests filed from Jira: each revision of what the issue asked for,
frozen under its digest (`phasegate.rules.jira_requests.Content`).

Revision 1 is written when the request is filed; a later one when an edit in Jira reached the
request while it was still open. Rows are only ever inserted (triggers refuse UPDATE and DELETE,
as for decisions): what approvers were asked stays readable after the issue changed or is gone.
The issue id is Jira's stable one; the key can change when the issue is moved.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from phasegate.configs import limits
from phasegate.ledger.models.base import Base, utcnow


class JiraRevisionRow(Base):
    __tablename__ = "jira_revisions"
    __table_args__ = (UniqueConstraint("change_request_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    change_request_id: Mapped[int] = mapped_column(ForeignKey("change_requests.id"), index=True)
    revision: Mapped[int]
    digest: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict[str, Any]]  # title, rationale, estimate_days
    issue_key: Mapped[str] = mapped_column(String(limits.ISSUE_KEY))  # the key it had then
    issue_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
