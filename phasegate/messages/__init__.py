"""What phasegate says in Slack, rendered from domain objects and the ledger: gate and change-request prompts, kickoffs, the ids their buttons carry, and the marks that find a post again."""
