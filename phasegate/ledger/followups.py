"""The ledger as the queue of the work after an answer.

Recording an answer leaves, in the same transaction, a mark on its prompt (`answered`, one upsert of
one row per prompt in `follow_ups`): the prompt must be redrawn from the ledger and, when the answer
decided, the run woken. The refresher (phasegate.gates.refresher), on connections of its own and
outside the process that answered the click, claims the marks oldest first (`take`), does the work
once per mark however many answers made it, and deletes the mark only when the prompt was redrawn
(`done`); a failure puts it off (`retry`). A mark made while the work was under way (a further
answer) bumps `seq`, so `done` leaves that mark for the next pass. A process that dies between the
answer and the redraw loses nothing: the mark is committed with the answer.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select, tuple_, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from phasegate.ledger import groups
from phasegate.ledger.models import Base, utcnow
from phasegate.states import Prompt, Via

TABLE = Base.metadata.tables["follow_ups"]
KEY = [TABLE.c.prompt, TABLE.c.target]


@dataclass(frozen=True)
class Pending:
    prompt: Prompt
    target: int
    seq: int
    wake: bool
    tell: str | None  # the Slack user who decided, told if the run cannot be woken
    tries: int


def answered(session: Session, prompt: Prompt, target: int, *, decided: bool, approver: str, via: Via) -> None:
    """What a recorded answer leaves for the refresher, in the answer's transaction: its prompt to
    redraw and, if it decided, the run to wake (not for an answer given in the Prefect UI, whose run
    is awake and reads the ledger next) and, if it came from Slack, the approver to tell when the
    orchestrator cannot be reached."""
    mark(session, prompt, target, wake=decided and via is not Via.PREFECT_UI,
         tell=approver if decided and via is Via.SLACK else None)


def mark(session: Session, prompt: Prompt, target: int, *, wake: bool = False, tell: str | None = None) -> None:
    """One statement: the prompt marked for a redraw (due now), its `wake` OR-ed into a pending mark's."""
    now = utcnow()
    conn = session.connection()  # Core: the ORM's execute costs more than the statement
    groups.defer(conn, _upsert(conn.dialect.name), {"prompt": prompt, "target": target, "wake": wake, "tell": tell,
                                                    "seq": 1, "marked_at": now, "due_at": now, "tries": 0},
                 key=(prompt, target), merge=_held_merged)  # a group's marks of one prompt: one upsert


def _held_merged(held: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Two marks of one prompt in one group, as one: what `_merged` makes of a pending mark marked again."""
    return new | {"wake": held["wake"] or new["wake"], "tell": new["tell"] if new["tell"] is not None else held["tell"],
                  "marked_at": held["marked_at"]}


@functools.cache
def _upsert(dialect: str) -> Any:
    """The mark's upsert for `dialect`, built once per process (building it costs more than running it)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(TABLE).inline()  # no primary key read back: nobody needs it
    return statement.on_conflict_do_update(index_elements=KEY, set_=_merged(statement.excluded))


def _merged(excluded: Any) -> dict[str, Any]:
    """A pending mark, marked again: `wake` OR-ed, `tell` kept unless a new one is given, due now."""
    return {"wake": TABLE.c.wake | excluded.wake, "tell": func.coalesce(excluded.tell, TABLE.c.tell),
            "seq": TABLE.c.seq + 1, "due_at": excluded.due_at}


def take(session: Session, now: dt.datetime, limit: int, *, lease: float,
         made_by: dt.datetime | None = None) -> list[Pending]:
    """Up to `limit` marks due by `now` (with `made_by`: first made by then), the oldest first, leased
    for `lease` seconds (one UPDATE): another refresher does not take them meanwhile, even when a
    further answer marks them again, and a refresher that dies holding them leaves them to the next
    when the lease ends."""
    free: tuple[Any, ...] = (TABLE.c.due_at <= now, or_(TABLE.c.leased_until.is_(None), TABLE.c.leased_until <= now))
    if made_by is not None:
        free += (TABLE.c.marked_at <= made_by,)
    oldest = select(TABLE.c.prompt, TABLE.c.target).where(*free).order_by(TABLE.c.marked_at, TABLE.c.target).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)  # not the rows another refresher claims right now
    claimed = session.execute(
        update(TABLE).where(tuple_(TABLE.c.prompt, TABLE.c.target).in_(oldest), *free)
        .values(leased_until=now + dt.timedelta(seconds=lease))
        .returning(TABLE.c.prompt, TABLE.c.target, TABLE.c.seq, TABLE.c.wake, TABLE.c.tell, TABLE.c.tries,
                   TABLE.c.marked_at)).all()
    return [Pending(Prompt(row.prompt), row.target, row.seq, bool(row.wake), row.tell, row.tries)
            for row in sorted(claimed, key=lambda row: (row.marked_at, row.target))]


def done(session: Session, pending: Pending) -> bool:
    """The mark deleted, unless another was made meanwhile (False: it stays, due now, and is let go
    for the next pass; until then no other refresher draws the prompt, so two draws never cross).
    A wake this pass did is not left on the mark that stays: a prompt's run is woken once per
    decision, and a redraw asked for meanwhile (a click on the decided gate) would otherwise wake the
    run again at its next suspend."""
    result: CursorResult[Any] = session.execute(delete(TABLE).where(*_same(pending)))  # type: ignore[assignment]
    if result.rowcount == 1:
        return True
    session.execute(update(TABLE).where(*_key(pending)).values(leased_until=None, **_served(pending, woken=True)))
    return False


def retry(session: Session, pending: Pending, *, at: dt.datetime, problem: str, wake: bool) -> None:
    """The mark put off until `at`, with what failed; `wake` False once the run was woken. A mark made
    meanwhile is left as it is (due now)."""
    session.execute(update(TABLE).where(*_same(pending))
                    .values(due_at=at, leased_until=None, tries=pending.tries + 1, problem=problem[:500], wake=wake))
    session.execute(update(TABLE).where(*_key(pending), TABLE.c.seq != pending.seq)
                    .values(leased_until=None, **_served(pending, woken=not wake)))


def made_since(session: Session, since: dt.datetime) -> int:
    """How many prompts were first marked since `since` (and wait): how fast answers are coming in."""
    return session.scalar(select(func.count()).select_from(TABLE).where(TABLE.c.marked_at >= since)) or 0


def waiting(session: Session, now: dt.datetime | None = None) -> int:
    """How many marks there are (with `now`: due by then)."""
    query = select(func.count()).select_from(TABLE)
    return session.scalar(query if now is None else query.where(TABLE.c.due_at <= now)) or 0


def _served(pending: Pending, *, woken: bool) -> dict[str, Any]:
    """What a pass that woke the run (`pending.wake`, done) clears from the mark made meanwhile."""
    return {"wake": False, "tell": None} if pending.wake and woken else {}


def _key(pending: Pending) -> tuple[Any, ...]:
    return TABLE.c.prompt == pending.prompt, TABLE.c.target == pending.target


def _same(pending: Pending) -> tuple[Any, ...]:
    return *_key(pending), TABLE.c.seq == pending.seq
