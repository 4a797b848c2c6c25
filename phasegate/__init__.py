"""phasegate: phased AI-development engagements as Prefect workflows, with go/no-go gates in Slack.

The rooms, from the top down; each imports only from the rooms below it (pyproject.toml's
import-linter contract checks this):

- `cli`           the `phasegate` command
- `ops`           running the parts on one machine: `phasegate up`, its servers and supervision
- `flows`         Prefect flows: the phases and their gates, the change-request flow, the watches
- `tasks`         Prefect tasks, each a thin wrapper over a plain function below
- `slack`         the Slack endpoint (HTTP and Socket Mode): verify, parse, record, answer
- `reports`       weekly status reports, the portfolio, the audit and change-log exports
- `gates`         what is done with a gate: decide, review, collect evidence, remind, time out
- `changes`       what is done with a change request: file, import from Jira, decide, withdraw
- `messages`      what phasegate says in Slack, rendered from the ledger
- `orchestration` Prefect flow runs: start, wake, recover, and the runtime they share
- `ledger`        the database: engagements, gates, decisions, the hash-chained audit trail
- `rules`         the practice as plain data and functions: gate policy, evidence, change requests,
                  scope drift, budget, the business calendar
- `states`, `text`, `settings`, `operator`, `errors`   the shared vocabulary
- `integrations`, `configs`   Slack, Jira and metric clients; engagement files and their schema

`sandbox` (the local Slack, Jira and metric stand-ins, the demo) sits beside the product: nothing
in it is imported by the product, except by the CLI's `demo` and `sandbox` commands.
The repository keeps `flows/`, `tasks/`, `integrations/`, `configs/` and `sandbox/` at its top level;
the links in this folder make them `phasegate.flows`, `phasegate.tasks`, ... in the installed package.
"""
