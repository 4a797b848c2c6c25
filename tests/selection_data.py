"""Phase 0 ("Should we sign, and with whom?") for the acme-churn example, as the tests add it."""

from __future__ import annotations

from typing import Any

from helpers import with_changes

from phasegate.configs.schema import Engagement

# The vendor's answers with no red flag; the tests change one answer at a time to raise one.
DUE_DILIGENCE: dict[str, Any] = {
    "mlops_architecture": "Airflow training pipeline, MLflow registry, models behind a versioned REST API",
    "experiment_tracking": "MLflow, one run per experiment with its data version",
    "model_versioning": "MLflow model registry, promoted by review",
    "data_validation": "Great Expectations on every load",
    "models_in_production": 14,
    "production_monitoring": "weekly F1 on labelled samples and drift alerts",
    "sample_status_reports": "data quality score and F1 per experiment, not hours",
    "pricing": "capped_time_and_materials",
}

SELECTION: dict[str, Any] = {
    "planned_weeks": 3,
    "milestones": [
        {"key": "data-readiness", "title": "Internal data readiness assessment", "owner": "client",
         "attestation": True, "attesting_side": "client"},
        {"key": "mlops-walkthrough", "title": "MLOps architecture walkthrough", "owner": "client",
         "attestation": True, "attesting_side": "client"},
    ],
    "exit_criteria": [{"all_required_milestones_done": True}],
    "gate": {"approvers": [
        {"slack_user": "U0SPONSOR1", "name": "Dana Whitfield", "side": "client", "role": "sponsor"},
        {"slack_user": "U0TECHLEAD", "name": "Omar Haddad", "side": "client", "role": "tech lead"}],
        "quorum": {"count": "all"}},
    "due_diligence": DUE_DILIGENCE,
    "sourcing": {"core_moat": False, "regulated_data": False,
                 "reasons": "churn scoring is an enhancement of the CRM, not our product; hiring takes six months"},
    "ip": {"client_owns": ["trained_models", "training_data_derivatives", "custom_code", "test_scripts"],
           "pre_existing": [{"item": "Northwind churn feature library", "terms": "licensed perpetually, royalty-free"}]},
}


def with_selection(engagement: Engagement, engagement_id: str, **due_diligence: Any) -> Engagement:
    """A copy of `engagement` under `engagement_id` with Phase 0, its due-diligence answers changed by `due_diligence`."""
    selection = SELECTION | {"due_diligence": DUE_DILIGENCE | due_diligence}
    return with_changes(engagement, id=engagement_id, phases__selection=selection)
