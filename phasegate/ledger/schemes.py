"""Which scheme sealed each event, checked: plain SHA-256 or HMAC-SHA-256 under the audit key.

Why a key: with plain SHA-256, anyone who can write the database can rewrite an event and recompute
every later hash and the head, and the chain is consistent again. With PHASEGATE_AUDIT_KEY set, new
links are HMAC-SHA-256 under a key that is not in the database, so such a rewrite no longer matches.
Each event names its scheme (`audit_events.seal`) so that chains sealed before the key was set keep
verifying. What the column cannot stop on its own, a keyed chain rewritten as plain SHA-256, is named
when it happens after a keyed event (a chain does not go back to plain hashing); a chain rewritten
unkeyed from its first event is caught by the Slack witness (phasegate.ledger.witness).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from phasegate.ledger import chain


def keyed(event: Mapping[Any, Any]) -> bool:
    return bool(event.get("seal") == chain.Seal.HMAC_SHA256.value)


def link_matches(event: Mapping[Any, Any], key: bytes | None) -> bool:
    """Whether the event's stored hash is what its content makes under its own scheme. A keyed event
    with no key at hand cannot be recomputed: `problems` names it, and it is not called edited here."""
    if keyed(event):
        return key is None or chain.event_hash(event, key) == event["hash"]
    return bool(chain.event_hash(event) == event["hash"])


def problems(engagement_id: str, events: Sequence[Mapping[Any, Any]], key: bytes | None) -> list[str]:
    """Keyed events that cannot be checked without the key; plain events after a keyed one."""
    found: list[str] = []
    first_keyed: int | None = None
    for event in events:
        scheme = event.get("seal")
        if scheme not in {s.value for s in chain.Seal}:
            found.append(f"{engagement_id}: event #{event['seq']} names an unknown seal {scheme!r} (edited)")
        elif keyed(event):
            if key is None:
                found.append(f"{engagement_id}: event #{event['seq']} is keyed (HMAC-SHA-256) and PHASEGATE_AUDIT_KEY "
                             "is not set: its link cannot be checked")
                break  # one line says it for the whole chain
            first_keyed = event["seq"] if first_keyed is None else first_keyed
        elif first_keyed is not None:
            found.append(f"{engagement_id}: event #{event['seq']} is sealed with plain SHA-256 after event "
                         f"#{first_keyed} was keyed (rewritten without the key)")
    return found
