"""Lengths of the ledger's bounded text columns that engagement-file values are stored in.

The schema (`configs/schema.py`) and the ledger models (`phasegate/ledger/models/`) both read
these, so a value the schema accepts always fits its column: a longer one is a schema error
naming the field, never a database error on PostgreSQL after the file was accepted (SQLite
does not enforce the lengths at all, so only one backend would have noticed).
"""

from __future__ import annotations

ENGAGEMENT_ID = 64  # engagements.id and every engagement_id column
ENGAGEMENT_NAME = 200  # engagements.name
SLACK_USER = 64  # decisions.approver, attestations.attested_by, metric_submissions.submitted_by, requested_by
SLACK_CHANNEL = 32  # gates.channel
ROLE = 64  # decisions.role
MILESTONE_KEY = 64  # milestone_links.milestone, attestations.milestone
ISSUE_KEY = 64  # milestone_links.issue_key
METRIC_NAME = 64  # metric_submissions.metric
METRIC_VALUE = 64  # metric_submissions.raw_value: the text typed for a hand-submitted metric
OPERATOR = 200  # decisions.operator, metric_submissions.operator: user@host that ran a CLI command
