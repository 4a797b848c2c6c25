"""Change requests as actions: file one (CLI, Slack, Jira import), start its flow, decide or withdraw it. The same functions serve every surface."""
