"""The evidence snapshot's shape: what each milestone, metric and exit criterion showed, frozen for a
gate as canonical JSON and identified by its SHA-256 digest (`phasegate.rules.evidence` collects it).

Fields added after the first snapshots were frozen (`not_done`, `drift`, `selection`) are left out of
the canonical JSON while empty, so a snapshot frozen before them still hashes to its digest.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from typing import Any

from pydantic import BaseModel, Field

from phasegate.configs.schema import Phase
from phasegate.rules import drift, policy
from phasegate.rules.selection import SelectionEvidence


class Result(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    MISSING = "missing"


class MilestoneEvidence(BaseModel):
    key: str
    title: str
    required: bool
    source: str  # "jira", "attestation" or "none"
    query: str
    read_at: dt.datetime
    done: bool | None  # None: the evidence is missing
    issues: list[dict[str, Any]] = []
    attested_by: str | None = None
    error: str | None = None
    # why a Jira milestone is not done: its issues that are open, resolved otherwise than as done, or
    # that left its scope ("ACME-7 In Progress", "ACME-8 Closed as Won't Do", "ACME-9 left the scope")
    not_done: list[str] = Field(default_factory=list, exclude_if=lambda value: not value)


class MetricEvidence(BaseModel):
    name: str
    source: str
    query: str
    read_at: dt.datetime
    value: float | None
    raw: Any = None
    error: str | None = None


class CriterionEvidence(BaseModel):
    label: str
    result: Result
    seen: str


class ScopeDrift(BaseModel):
    """The scope drift read with the evidence (`phasegate.rules.drift`), or why it was not checked."""

    entered: list[drift.DriftItem] = []
    left: list[drift.DriftItem] = []
    error: str | None = None

    def keys(self) -> set[str]:
        return {i.key for i in (*self.entered, *self.left)}


class Snapshot(BaseModel):
    engagement_id: str
    phase: Phase
    timebox: int
    collected_at: dt.datetime
    milestones: list[MilestoneEvidence]
    metrics: list[MetricEvidence]
    criteria: list[CriterionEvidence]
    warnings: list[str] = []
    # None: drift is not tracked for the phase (its baseline holds no issue list) or the snapshot predates it
    drift: ScopeDrift | None = Field(default=None, exclude_if=lambda value: value is None)

    # Phase 0 only: the vendor's due diligence, the sourcing decision, IP, team and red flags.
    selection: SelectionEvidence | None = Field(default=None, exclude_if=lambda value: value is None)

    def canonical(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(mode="json")
        return data

    def digest(self) -> str:
        body = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()

    @property
    def red_flags(self) -> list[str]:
        return self.selection.red_flags if self.selection is not None else []

    @property
    def all_pass(self) -> bool:
        return all(c.result is Result.PASS for c in self.criteria) and not self.red_flags

    @property
    def unmet(self) -> list[str]:
        """The exit criteria that fail or are missing, and the red flags present, as an approver reads
        them: moving on past any of them is a waiver."""
        return ([f"{c.label}: {c.result.value} (seen {c.seen})" for c in self.criteria if c.result is not Result.PASS]
                + [f"{policy.RED_FLAG}{flag}" for flag in self.red_flags])
