"""Names in our posts' Slack message metadata shared by the poster and the reader, kept apart from
slack_chat so that reading them back (phasegate.messages.witness) loads no Slack client library.

The audit chain head a post witnesses sits in its metadata's event_payload beside the post's own
mark; it is not part of what the post is, so a retried post is found whatever head it carried.
"""

from __future__ import annotations

WITNESS_KEYS = ("chain_engagement", "chain_seq", "chain_hash")
