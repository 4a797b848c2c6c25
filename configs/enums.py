"""The phases, sides and comparators of an engagement file, as plain enums: importing them loads no
pydantic, so the CLI's read commands can name a phase without the engagement schema."""

from __future__ import annotations

import enum


class Phase(str, enum.Enum):
    """The engagement's phases in order. `selection` (Phase 0, "Should we sign, and with whom?") is
    optional: an engagement file without it starts at the PoC, as before it existed."""

    SELECTION = "selection"
    POC = "poc"
    DEVELOPMENT = "development"
    HANDOVER = "handover"

    @property
    def gate(self) -> str:
        return {"selection": "G0", "poc": "G1", "development": "G2", "handover": "G3"}[self.value]

    @property
    def heading(self) -> str:
        return {
            "selection": "Phase 0: Choosing the vendor",
            "poc": "Phase 1: Discovery and PoC",
            "development": "Phase 2: Development and iteration",
            "handover": "Phase 3: Transition and handover",
        }[self.value]

    @property
    def question(self) -> str:
        return {
            "selection": "Should we sign?",
            "poc": "Should we continue?",
            "development": "Ready for handover?",
            "handover": "Accept handover and close",
        }[self.value]

    @property
    def vendor_billed(self) -> bool:
        """Whether the vendor works (and bills) in this phase: not before the contract is signed."""
        return self is not Phase.SELECTION

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
