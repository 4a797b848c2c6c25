"""The ledger: every engagement, gate, decision and audit event phasegate knows of."""

# Tables whose models live beside models.py join Base.metadata here, so that any use of the ledger
# (migrations, the schema check, sessions) knows every table.
from phasegate.ledger import jira_rows as jira_rows
