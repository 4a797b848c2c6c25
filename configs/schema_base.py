"""The engagement file's building blocks: strict models, the phases, sides and comparators, and the
id formats every part checks against. (The file as a whole is `phasegate.configs.schema.Engagement`.)"""

from __future__ import annotations

import enum
import re

from pydantic import BaseModel, ConfigDict

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,20}$")
PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{1,9}$")
IDENT = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Phase(str, enum.Enum):
    POC = "poc"
    DEVELOPMENT = "development"
    HANDOVER = "handover"

    @property
    def gate(self) -> str:
        return {"poc": "G1", "development": "G2", "handover": "G3"}[self.value]

    @property
    def heading(self) -> str:
        return {
            "poc": "Phase 1: Discovery and PoC",
            "development": "Phase 2: Development and iteration",
            "handover": "Phase 3: Transition and handover",
        }[self.value]

    @property
    def question(self) -> str:
        return {
            "poc": "Should we continue?",
            "development": "Ready for handover?",
            "handover": "Accept handover and close",
        }[self.value]

    def next(self) -> Phase | None:
        order = list(Phase)
        index = order.index(self)
        return order[index + 1] if index + 1 < len(order) else None


class Side(str, enum.Enum):
    CLIENT = "client"
    VENDOR = "vendor"


class Comparator(str, enum.Enum):
    GE = ">="
    GT = ">"
    LE = "<="
    LT = "<"
    EQ = "=="

    def holds(self, value: float, threshold: float) -> bool:
        return {
            ">=": value >= threshold,
            ">": value > threshold,
            "<=": value <= threshold,
            "<": value < threshold,
            "==": value == threshold,
        }[self.value]
