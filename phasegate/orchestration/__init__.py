"""Prefect flow runs: the names of the deployments, starting and waking runs, reconciling the ledger with what Prefect says, and the runtime a run or the endpoint builds once."""
