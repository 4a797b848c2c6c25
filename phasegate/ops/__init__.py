"""Running the parts on one machine: `phasegate up` (its Prefect server, the served flows, the Slack endpoint), ports, readiness and supervision."""
