"""The one error engagement files raise; `configs` is a leaf and imports nothing of phasegate."""

from __future__ import annotations


class ConfigError(Exception):
    """An engagement file is missing, unreadable or invalid; `problems` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))
