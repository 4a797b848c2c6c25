"""The guide's planning rules (shared/context/ai-outsourcing-guide.txt), checked over a valid file.

These are not errors of the file: a plan may have reasons to differ from the guide. `engagement
create` shows them as warnings, and as errors with `--strict` or `planning_rules: strict` in the
file. Each names the guide's reason in one line, so a PM can decide rather than guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from phasegate.configs.evidence_schema import KT_DRILL
from phasegate.configs.schema import Engagement, Milestone, Side

POC_WEEKS = (6, 12)
HANDOVER_WEEKS = (4, 8)
HANDOVER_SHARE = (0.15, 0.20)
DATA_READINESS = re.compile(r"data[\s_-]*(readiness|ready)", re.IGNORECASE)
HARDENING = re.compile(r"harden", re.IGNORECASE)
API_INTERFACE = re.compile(r"api[\s_-]*(interface|contract)|interface[\s\w-]*(ml|model)", re.IGNORECASE)
# What the guide wants in the architecture from Sprint 1 (section 5, "Ignoring MLOps"; section 1, drift).
MLOPS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"deploy|serving|pipeline", re.IGNORECASE), "deployment"),
    (re.compile(r"version|registry|experiment[\s_-]*tracking", re.IGNORECASE), "model versioning"),
    (re.compile(r"retrain", re.IGNORECASE), "retraining automation"),
    (re.compile(r"monitor|drift", re.IGNORECASE), "drift monitoring"),
)
# Model-quality metrics; a development milestone tied to one is an accuracy milestone.
ACCURACY = re.compile(r"(^|[^a-z])(accuracy|acc|f1|f_1|precision|recall|auc|roc|rmse|mae|mape|mse|r2|ndcg|map|bleu"
                      r"|rouge|top\d*|error_rate|wer)([^a-z]|$)", re.IGNORECASE)

# What the guide keeps in-house, each with its reason (section 3, "What to outsource vs. what to keep").
IN_HOUSE: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"problem[\s_-]*(definition|statement)|(^|[^a-z])kpis?([^a-z]|$)|success[\s_-]*metric",
                re.IGNORECASE),
     "problem definition and KPIs", "they need business context and domain knowledge only the client has"),
    (re.compile(r"governance|(^|[^a-z])pii([^a-z]|$)|anonymi[sz]|data[\s_-]*access|privacy", re.IGNORECASE),
     "data access and governance", "security, compliance and PII anonymisation must stay internal"),
    (re.compile(r"production[\s_-]*integration|integrat\w*[\s\w-]*(production|backend)", re.IGNORECASE),
     "production integration", "it is tightly coupled to the client's own backend"),
)


@dataclass(frozen=True)
class PlanningWarning:
    path: str  # where in the file
    problem: str  # what this plan does
    reason: str  # why the guide advises otherwise, one line

    def __str__(self) -> str:
        return f"{self.path}: {self.problem} — the guide: {self.reason}"


def _mentions(milestones: list[Milestone], pattern: re.Pattern[str]) -> bool:
    return any(pattern.search(m.key) or pattern.search(m.title) for m in milestones)


def poc_warnings(engagement: Engagement) -> list[PlanningWarning]:
    poc = engagement.phases.poc
    found: list[PlanningWarning] = []
    low, high = POC_WEEKS
    if not low <= poc.planned_weeks <= high:
        found.append(PlanningWarning(
            "phases.poc.planned_weeks", f"the PoC is planned for {poc.planned_weeks} weeks, outside {low}–{high}",
            f"a PoC of {low}–{high} weeks defines the problem, assesses data readiness and builds a baseline "
            "before anyone commits to development"))
    if not _mentions(poc.milestones, DATA_READINESS):
        found.append(PlanningWarning(
            "phases.poc.milestones", "no data-readiness milestone in the PoC",
            "starting without usable data means months of data work at engineering rates; assess data "
            "readiness first"))
    return found


def development_warnings(engagement: Engagement) -> list[PlanningWarning]:
    development = engagement.phases.development
    found: list[PlanningWarning] = []
    if not _mentions(development.milestones, HARDENING):
        found.append(PlanningWarning(
            "phases.development.milestones", "no production-hardening milestone in development",
            "PoCs cut corners (hard-coded thresholds, no error handling); budget a production-hardening "
            "phase rather than pushing the PoC to production"))
    if not _mentions(development.milestones, API_INTERFACE):
        found.append(PlanningWarning(
            "phases.development.milestones", "no milestone for the API interface between the product and the ML layer",
            "the outsourced team builds the ML layer and the client's team the product; the key to success is "
            "a clean API interface between the two, agreed early"))
    missing = [what for pattern, what in MLOPS if not _mentions(development.milestones, pattern)]
    if missing:
        found.append(PlanningWarning(
            "phases.development.milestones", f"no development milestone for {', '.join(missing)}",
            "deployment, versioning, retraining automation and monitoring belong in the architecture from "
            "Sprint 1, not in the final week: models drift once they meet real data"))
    for index, criterion in enumerate(development.exit_criteria):
        if criterion.metric is not None and ACCURACY.search(criterion.metric):
            found.append(PlanningWarning(
                f"phases.development.exit_criteria[{index}]",
                f"development exits on the model metric `{criterion.label}`",
                "tie development milestones to process (e.g. pipeline deployed in staging), not strict "
                "accuracy; ML results are experimental"))
    return found


def handover_warnings(engagement: Engagement) -> list[PlanningWarning]:
    phases = engagement.phases
    weeks = phases.handover.planned_weeks
    total = sum(phases.of(phase).planned_weeks for phase in phases.present() if phase.vendor_billed)
    found: list[PlanningWarning] = []
    low, high = HANDOVER_WEEKS
    share_low, share_high = HANDOVER_SHARE
    share = weeks / total
    if not low <= weeks <= high:
        found.append(PlanningWarning(
            "phases.handover.planned_weeks", f"the handover is planned for {weeks} weeks, outside {low}–{high}",
            f"a handover of {low}–{high} weeks leaves time for documentation, pair programming and a "
            "supervised run with the vendor as a safety net"))
    if not share_low <= share <= share_high:
        found.append(PlanningWarning(
            "phases.handover.planned_weeks",
            f"the handover is {share:.0%} of the {total} planned weeks, outside "
            f"{share_low:.0%}–{share_high:.0%}",
            f"budget {share_low:.0%}–{share_high:.0%} of the total project time for the handover, or the "
            "client rents a dependency instead of building a capability"))
    if not phases.handover.milestones:
        found.append(PlanningWarning(
            "phases.handover.milestones", "the handover checklist is empty",
            "the handover covers documentation, pair programming, a supervised run, a knowledge-transfer "
            "drill, IP transfer and data deletion"))
    return found


def in_house_warnings(engagement: Engagement) -> list[PlanningWarning]:
    """Work the guide keeps in-house given to the vendor (`owner: vendor`), and a knowledge-transfer
    drill the vendor may attest: each is a dependency rented rather than a capability built."""
    found: list[PlanningWarning] = []
    for phase in engagement.phases.present():
        for index, m in enumerate(engagement.phases.of(phase).milestones):
            path = f"phases.{phase.value}.milestones[{index}]"
            for pattern, what, reason in IN_HOUSE:
                if m.owner is Side.VENDOR and (pattern.search(m.key) or pattern.search(m.title)):
                    found.append(PlanningWarning(f"{path}.owner", f"{what} ({m.key}) is given to the vendor",
                                                 f"keep {what} in-house: {reason}"))
            if m.attestation and m.attesting_side != "client" and KT_DRILL.search(f"{m.key} {m.title}"):
                found.append(PlanningWarning(
                    f"{path}.attesting_side", f"the vendor may attest the knowledge-transfer drill {m.key}",
                    "the drill shows the client's team can retrain and redeploy alone, so the client attests it"))
    return found


def planning_warnings(engagement: Engagement) -> list[PlanningWarning]:
    """Every place the plan departs from the guide, in file order."""
    return (poc_warnings(engagement) + development_warnings(engagement) + handover_warnings(engagement)
            + in_house_warnings(engagement))
