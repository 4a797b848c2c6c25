"""Phase 0's evidence: what the G0 prompt ("Should we sign?") shows beside the client's own checks.

The vendor's due-diligence answers, the in-house-or-outsource decision with its reasons, the IP
terms and the named individuals are read from the engagement file once, when the gate opens, and
frozen with the rest of the evidence (so the digest covers what the approvers read). The guide's red
flags are found here and nowhere else; every surface reads them from the snapshot, and GO past any of
them is a waiver, as past an unmet exit criterion (`Snapshot.unmet`): with `accuracy_promise: 95 %
accuracy guaranteed` in the file, G0's evidence holds the red flag "the vendor promises accuracy
before seeing our data: “95 % accuracy guaranteed”", and a GO needs a written reason.
"""

from __future__ import annotations

from pydantic import BaseModel

from phasegate.configs.schema import Engagement, Phase, SelectionPhase
from phasegate.configs.selection_schema import Asset, Pricing


class SelectionEvidence(BaseModel):
    """The G0 prompt's "should we sign, and with whom?" part, as plain lines."""

    due_diligence: list[str]  # "question: answer"
    sourcing: list[str]  # the in-house-or-outsource decision and its reasons
    ip: list[str]
    team: list[str]  # the vendor's named individuals, "name (role)"
    red_flags: list[str]

    def sections(self) -> list[tuple[str, list[str]]]:
        """(heading, lines) in the order every surface shows them: the red flags first, as they make GO a waiver."""
        flags = [("Red flags (GO needs a written waiver)", self.red_flags)] if self.red_flags else []
        return flags + [("Vendor due diligence", self.due_diligence), ("In-house or outsource", self.sourcing),
                        ("IP", self.ip), ("Named individuals the vendor commits", self.team)]


def _config(engagement: Engagement) -> SelectionPhase | None:
    config = engagement.phases.selection
    return config if isinstance(config, SelectionPhase) else None


def red_flags(engagement: Engagement) -> list[str]:
    """The guide's warnings that hold for this vendor and this decision, in the sponsor's words."""
    config = _config(engagement)
    if config is None:
        return []
    dd, sourcing, flags = config.due_diligence, config.sourcing, []
    if dd.accuracy_promise is not None:
        flags.append(f"the vendor promises accuracy before seeing our data: “{dd.accuracy_promise}”")
    if dd.models_in_production == 0:
        flags.append("no production experience: none of the vendor's models runs in production today")
    if dd.pricing is Pricing.FIXED_PRICE:
        flags.append("a rigid fixed-price contract: the path from raw data to a working model is rarely straight")
    if sourcing.core_moat:
        flags.append("AI is our core competitive moat: outsourcing it creates a dangerous dependency")
    if sourcing.regulated_data:
        flags.append("our data cannot legally be shared outside the company: the guide says build in-house")
    missing = [a.words for a in Asset if a not in config.ip.client_owns]
    if missing:
        flags.append(f"the contract does not make these ours: {', '.join(missing)}")
    return flags


def selection_evidence(engagement: Engagement, phase: Phase) -> SelectionEvidence | None:
    """The lines for the G0 prompt; None for any other phase (their snapshots stay as they were)."""
    config = _config(engagement)
    if phase is not Phase.SELECTION or config is None:
        return None
    dd, sourcing, ip = config.due_diligence, config.sourcing, config.ip
    answers = [
        ("MLOps architecture", dd.mlops_architecture),
        ("Experiment tracking", dd.experiment_tracking),
        ("Model versioning", dd.model_versioning),
        ("Data validation", dd.data_validation),
        ("Models still in production today (the golden question)", str(dd.models_in_production)),
        ("How they monitor those models' accuracy", dd.production_monitoring),
        ("Their sample weekly status reports", dd.sample_status_reports),
        ("Accuracy promised before seeing our data", dd.accuracy_promise or "none"),
        ("Pricing", dd.pricing.value.replace("_", " ")),
    ]
    moat = "AI is our core moat" if sourcing.core_moat else "AI is not our core moat"
    data = "the data cannot be shared outside" if sourcing.regulated_data else "the data may be shared with the vendor"
    owned = ", ".join(a.words for a in ip.client_owns)
    brought = [f"pre-existing IP: {p.item}: {p.terms}" for p in ip.pre_existing] or ["pre-existing IP: none"]
    return SelectionEvidence(
        due_diligence=[f"{question}: {said}" for question, said in answers],
        sourcing=[f"Outsource rather than build in-house: {sourcing.reasons}", f"{moat}; {data}."],
        ip=[f"ours exclusively: {owned}", *brought],
        team=[f"{m.name} ({m.role})" for m in engagement.vendor_team],
        red_flags=red_flags(engagement))
