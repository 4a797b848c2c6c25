"""The names Prefect knows phasegate's flows and deployments by, declared once.

The flows take their names from here and the core starts runs by these names, so the core
never imports a flow module (flows sit above it; see the layers in phasegate/__init__.py).
"""

from __future__ import annotations

PHASE_FLOW = "phasegate-phase"
PHASE_DEPLOYMENT_NAME = "engagement"
PHASE_DEPLOYMENT = f"{PHASE_FLOW}/{PHASE_DEPLOYMENT_NAME}"

WATCH_FLOW = "phasegate-gate-watch"
WATCH_DEPLOYMENT_NAME = "scheduled"

CR_FLOW = "phasegate-change-request"
CR_DEPLOYMENT_NAME = "request"
CR_DEPLOYMENT = f"{CR_FLOW}/{CR_DEPLOYMENT_NAME}"

WEEKLY_FLOW = "phasegate-weekly-status"
WEEKLY_DEPLOYMENT_NAME = "hourly"  # each run reports the engagements whose local report time has passed
WEEKLY_CRON = "0 * * * *"

# Every deployment `python -m phasegate.ops.serve_flows` serves; `phasegate up` is ready once all are registered.
SERVED = (PHASE_DEPLOYMENT, f"{WATCH_FLOW}/{WATCH_DEPLOYMENT_NAME}", CR_DEPLOYMENT, f"{WEEKLY_FLOW}/{WEEKLY_DEPLOYMENT_NAME}")

WORK_POOL = "phasegate"  # the process work pool prefect.yaml deploys to (`prefect worker start --pool phasegate`)
