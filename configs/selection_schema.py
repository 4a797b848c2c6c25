"""What Phase 0 ("Should we sign, and with whom?") holds beside a phase's milestones and gate: the
vendor's due-diligence answers, the in-house-or-outsource decision with its reasons, and the IP terms.

The guide's red flags are read from these answers by `phasegate.rules.selection`, once, into the G0
evidence: a red flag present makes GO a waiver, as a failing exit criterion does.
"""

from __future__ import annotations

import enum

from pydantic import Field, NonNegativeInt

from phasegate.configs.schema_base import Strict

ANSWER = 500  # one answer as the client wrote it down


class Pricing(str, enum.Enum):
    """How the vendor prices the work. The guide: "AI needs flexibility" — a rigid fixed price is a red flag."""

    TIME_AND_MATERIALS = "time_and_materials"
    CAPPED_TIME_AND_MATERIALS = "capped_time_and_materials"
    DEDICATED_TEAM = "dedicated_team"
    FIXED_PRICE = "fixed_price"


class DueDiligence(Strict):
    """The vendor's answers to the guide's technical and business due diligence, as the client noted them."""

    # The technical questions, each answered from what the vendor showed (architecture diagrams, not case-study PDFs).
    mlops_architecture: str = Field(min_length=1, max_length=ANSWER)
    experiment_tracking: str = Field(min_length=1, max_length=ANSWER)
    model_versioning: str = Field(min_length=1, max_length=ANSWER)
    data_validation: str = Field(min_length=1, max_length=ANSWER)
    # The guide's golden question: "How many models have you built that are still running in
    # production today, and how do you monitor their accuracy?"
    models_in_production: NonNegativeInt
    production_monitoring: str = Field(min_length=1, max_length=ANSWER)
    # What their sample weekly status reports from a past engagement report: data quality and F1, or hours.
    sample_status_reports: str = Field(min_length=1, max_length=ANSWER)
    # An accuracy the vendor promised before a deep dive into our data, in their words ("95 % accuracy"): a red flag.
    accuracy_promise: str | None = Field(default=None, min_length=1, max_length=ANSWER)
    pricing: Pricing


class Sourcing(Strict):
    """In-house or outsource, and why. The guide keeps in-house what is the company's primary
    competitive moat, and data that cannot legally be shared outside (e.g. un-anonymised HIPAA records)."""

    core_moat: bool  # AI is the product's primary competitive moat
    regulated_data: bool  # the data cannot legally be shared with the vendor
    reasons: str = Field(min_length=1, max_length=ANSWER)  # why outsourcing, in the decision-makers' words


class Asset(str, enum.Enum):
    """What the contract must make the client's exclusive property (the guide's list)."""

    TRAINED_MODELS = "trained_models"
    TRAINING_DATA_DERIVATIVES = "training_data_derivatives"
    CUSTOM_CODE = "custom_code"
    TEST_SCRIPTS = "test_scripts"

    @property
    def words(self) -> str:
        return self.value.replace("_", " ")


class PreExistingIp(Strict):
    """IP the vendor brings (e.g. its own pre-trained base model) and the terms the client may use it on."""

    item: str = Field(min_length=1, max_length=200)
    terms: str = Field(min_length=1, max_length=ANSWER)


class IpTerms(Strict):
    """IP as the contract settles it. `pre_existing` is required: `[]` states that the vendor brings none."""

    client_owns: list[Asset] = Field(min_length=1)
    pre_existing: list[PreExistingIp]
