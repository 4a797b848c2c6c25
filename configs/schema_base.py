"""The engagement file's building blocks: strict models, the phases, sides and comparators, and the
id formats every part checks against. (The file as a whole is `phasegate.configs.schema.Engagement`.)"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from phasegate.configs.enums import Comparator, Phase, Side

__all__ = ["Comparator", "Phase", "Side"]  # defined without pydantic (phasegate.configs.enums), named here as before

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,20}$")
PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{1,9}$")
IDENT = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


