"""Step 3 of the one way in (phasegate.slack.inbound) for whatever names an engagement: it acts only
from the engagement's own channel, so a member of one engagement's channel cannot act on another's.
Written once for the change-request command, its form and the weekly report's "Draft change request"
button, and the `team` and `check` commands.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from phasegate.configs.schema import Engagement, Phase
from phasegate.configs.schema_base import IDENT
from phasegate.errors import NotFound
from phasegate.integrations.slack_blocks import clip
from phasegate.ledger.db import transaction
from phasegate.ledger.engagements import config_of, get
from phasegate.states import EngagementState
from phasegate.text import literal


@dataclass(frozen=True)
class Act:
    """What the request would do, as its refusals say it: `lead` with `{id}` for the engagement."""
    lead: str
    done: str


FILING = Act("Change requests for `{id}` are filed", "filed")
RECORDING = Act("`{id}` is handled", "recorded")


@dataclass(frozen=True)
class Here:
    engagement: Engagement
    state: EngagementState
    phase: Phase | None


def no_engagement(engagement_id: str, act: Act) -> str:
    return f"There is no engagement `{literal(clip(engagement_id, 64))}`; nothing was {act.done}."


def wrong_channel(engagement: Engagement, channel: str | None, act: Act) -> str | None:
    """Why the request may not act on `engagement` from `channel`, or None."""
    if channel == engagement.slack_channel:
        return None
    return (f"{act.lead.format(id=literal(engagement.id))} in its channel <#{engagement.slack_channel}>, not here; "
            f"nothing was {act.done}.")


def in_its_channel(sessions: sessionmaker[Session], engagement_id: str, channel: str | None, act: Act) -> Here | str:
    """The engagement as the ledger has it, or why the request cannot act on it from `channel`."""
    if not IDENT.fullmatch(engagement_id):
        return no_engagement(engagement_id, act)
    try:
        with transaction(sessions, write=False) as session:
            row = get(session, engagement_id)
            here = Here(config_of(row), row.state, row.current_phase)
    except NotFound:
        return no_engagement(engagement_id, act)
    return wrong_channel(here.engagement, channel, act) or here
