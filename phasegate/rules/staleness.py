"""Whether an approval still holds: the evidence it was given on, compared with the evidence read
again before the next phase starts (`phasegate.tasks.gates.recheck_evidence`).

    reasons = staleness(approved, fresh)  # empty: the approval holds
    lines = unconfirmed(approved, fresh)  # what was unknown then and is still unknown, said anyway
"""

from __future__ import annotations

from phasegate.rules.evidence import MilestoneEvidence, Result, Snapshot


def staleness(approved: Snapshot, fresh: Snapshot) -> list[str]:
    """Why an approval made on `approved` no longer holds on `fresh` evidence (empty: it holds).

    Every required milestone and every criterion is compared, whatever it showed at approval:
    worse than then (done or missing, now open; pass or missing, now fail) is a reason. Known at
    approval but unreadable now is a reason too, worded "unknown: <why>" (not "no longer
    done"): the approval cannot be confirmed, so it must not carry the next phase; the re-read
    has already had its retry budget. What was open or failing at approval was waived then
    (a written waiver, see `policy`), so unknown now is not worse. Missing then and still
    missing now is not a reason either, since nothing new is known and a reopened gate would
    show the same; `unconfirmed` lists those so the re-check says so instead of passing silently.
    Scope drift that appeared after the freeze is a reason as well (`_drift`).
    """
    reasons: list[str] = []
    now = {m.key: m for m in fresh.milestones}
    for m in approved.milestones:
        later = now.get(m.key)
        if not m.required or m.done is False:
            continue
        if later is None or later.done is None:
            if m.done:
                reasons.append(f"required milestone {m.key}: unknown: {_why(later)}")
        elif later.done is False:
            reasons.append(f"required milestone {m.key} is no longer done" if m.done else
                           f"required milestone {m.key} is open; it was missing at approval ({m.error})")
    now_result = {c.label: c for c in fresh.criteria}
    for c in approved.criteria:
        after = now_result.get(c.label)
        if c.result is Result.FAIL or after is None:
            continue
        if after.result is Result.FAIL:
            reasons.append(f"{c.label} now fail (seen {after.seen}, was {c.seen})")
        elif after.result is Result.MISSING and c.result is Result.PASS:
            reasons.append(f"{c.label}: unknown: {after.seen}")
    return reasons + _drift(approved, fresh)


def _drift(approved: Snapshot, fresh: Snapshot) -> list[str]:
    """Scope drift that appeared after the evidence was frozen (between the freeze and the quorum, or
    since): it was never before the approvers. Drift shown at approval was seen, so it is not a
    reason again. Drift checked then and unreadable now is unknown, like a milestone; drift not
    tracked then or now (no baseline issue list, or a snapshot older than drift in evidence) is
    not compared."""
    then, now = approved.drift, fresh.drift
    if then is None or now is None:
        return []
    if now.error:
        return [] if then.error else [f"scope drift: unknown: {now.error}"]
    seen = set() if then.error else then.keys()
    since, note = ("", f" (scope drift was not checked at approval: {then.error})") if then.error else (" after approval", "")
    phase = fresh.phase.value
    return ([f"{i.key} (under {i.milestone}) entered the {phase} scope{since}, with no approved change request{note}"
             for i in now.entered if i.key not in seen]
            + [f"{i.key}{f' (under {i.milestone})' if i.milestone else ''} left the {phase} scope{since}, "
               f"with no approved change request removing it{note}" for i in now.left if i.key not in seen])


def unconfirmed(approved: Snapshot, fresh: Snapshot) -> list[str]:
    """What was missing at approval and is still missing now, with today's reason."""
    now = {m.key: m for m in fresh.milestones}
    lines = [f"required milestone {m.key}: unknown: {_why(now.get(m.key))}" for m in approved.milestones
             if m.required and m.done is None and (now.get(m.key) is None or now[m.key].done is None)]
    now_result = {c.label: c for c in fresh.criteria}
    lines += [f"{c.label}: unknown: {now_result[c.label].seen}" for c in approved.criteria
              if c.result is Result.MISSING and c.label in now_result and now_result[c.label].result is Result.MISSING]
    then, drift_now = approved.drift, fresh.drift
    if then is not None and then.error and drift_now is not None and drift_now.error:
        lines.append(f"scope drift: unknown: {drift_now.error}")
    return lines


def _why(milestone: MilestoneEvidence | None) -> str:
    return (milestone.error if milestone is not None else None) or "not in the fresh evidence"
