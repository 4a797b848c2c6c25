"""The audit chain head on what phasegate posts, and read back from Slack for `audit verify`.

Why Slack: the database's owner can rewrite the whole chain consistently, but not the messages
phasegate has posted. Every decided gate prompt, decided change-request prompt and its announcement,
and every weekly report carries the chain head of the moment it was posted or redrawn: in its
message metadata (`chain_engagement`, `chain_seq`, `chain_hash`, beside the post's own mark) and in
a context line people can read. `read` collects those heads from the channels the engagement posts
in (conversations.history with metadata, every page), from our own bot's messages only; the ledger
compares them with the chain (phasegate.ledger.witness.compare).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from phasegate.integrations.errors import IntegrationError
from phasegate.integrations.slack_blocks import Block, context
from phasegate.integrations.slack_metadata import WITNESS_KEYS
from phasegate.ledger import witness
from phasegate.ledger.db import transaction
from phasegate.ledger.models import ChangeRequestRow, EngagementRow, GateRow, WeeklyReportRow

if TYPE_CHECKING:  # `audit verify` without a bot token loads no Slack client library
    from phasegate.integrations.slack_chat import Mark, SlackChat

ENGAGEMENT, SEQ, HASH = WITNESS_KEYS
LOOKBACK_MARGIN = dt.timedelta(minutes=5)  # clock skew between the ledger's host and Slack (as marks.py)
MAX_PAGES = 100  # 20,000 messages per channel at most; more is said, not silently skipped


def stamp(session: Session, mark: Mark, engagement_id: str) -> Mark:
    """`mark` carrying the engagement's chain head as it is in this transaction."""
    head = witness.head(session, engagement_id)
    return dataclasses.replace(mark, witness={ENGAGEMENT: engagement_id, SEQ: head.seq, HASH: head.hash})


def line(mark: Mark) -> str:
    """The head a stamped mark carries, in words: "Audit chain head #12 3fa9…" (the full hash)."""
    return f"Audit chain head #{mark.witness[SEQ]} {mark.witness[HASH]}"


def block(mark: Mark) -> Block:
    return context(line(mark))


def _witnessed(message: dict[str, Any], engagement_id: str, channel: str, bot_id: str) -> witness.Witnessed | None:
    metadata = message.get("metadata")
    payload = metadata.get("event_payload") if isinstance(metadata, dict) else None
    if not isinstance(payload, dict) or payload.get(ENGAGEMENT) != engagement_id:
        return None
    if bot_id and message.get("bot_id") != bot_id:
        return None  # another app's message: only our own posts witness our chain
    seq, digest = payload.get(SEQ), payload.get(HASH)
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(digest, str):
        return None
    kind = metadata.get("event_type", "") if isinstance(metadata, dict) else ""
    return witness.Witnessed(seq, digest, f"Slack message {message.get('ts')} in {channel} ({kind})")


def channels(session: Session, engagement_id: str) -> tuple[list[str], float]:
    """(the channels the engagement's posts went to, Unix seconds to read back to)."""
    found: set[str] = set()
    for column, where in ((GateRow.channel, GateRow.engagement_id), (ChangeRequestRow.channel,
                                                                     ChangeRequestRow.engagement_id)):
        found |= set(session.scalars(select(column).where(where == engagement_id).distinct()))
    found |= set(session.scalars(select(WeeklyReportRow.channel).where(WeeklyReportRow.subject == engagement_id)
                                 .distinct()))
    row = session.get(EngagementRow, engagement_id)
    if row is not None:
        found.add(str((row.config or {}).get("slack_channel") or ""))
    since = (row.created_at - LOOKBACK_MARGIN).timestamp() if row is not None else 0.0
    return sorted(c for c in found if c), since


def check(sessions: sessionmaker[Session], chat: SlackChat | None, engagement_id: str) -> witness.WitnessCheck:
    """The engagement's chain against every head our posts witnessed; `not_checked` says why not."""
    if chat is None:
        return witness.WitnessCheck(engagement_id, not_checked="no Slack bot token (PHASEGATE_SLACK_BOT_TOKEN)")
    with transaction(sessions, write=False) as session:
        where, since = channels(session, engagement_id)
    found: list[witness.Witnessed] = []
    try:
        bot_id = chat.bot_id()
        for channel in where:
            messages, complete = chat.history(channel, oldest=since, pages=MAX_PAGES)
            if not complete:
                return witness.WitnessCheck(engagement_id, not_checked=f"{channel} holds more than {MAX_PAGES} "
                                            "pages of messages since the engagement began")
            found += [w for m in messages if (w := _witnessed(m, engagement_id, channel, bot_id)) is not None]
    except IntegrationError as exc:
        return witness.WitnessCheck(engagement_id, not_checked=str(exc))
    with transaction(sessions, write=False) as session:
        return witness.compare(session, engagement_id, found)
