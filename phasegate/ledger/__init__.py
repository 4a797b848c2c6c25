"""The ledger: every engagement, gate, decision and audit event phasegate knows of."""
