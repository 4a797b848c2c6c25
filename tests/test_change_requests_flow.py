"""A change request's whole life through signed Slack requests on a real Prefect server: the slash
command opens the form, the submission files it, the served flow posts the prompt, clicks meet the
quorum, the approval writes a new baseline, and the suspended phase run sees its new timebox."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from helpers import with_changes
from prefect_seed import seeded
from sqlalchemy import func, select

from phasegate.changes import jira_import as cr_import
from phasegate.configs.schema import Phase
from phasegate.gates import operations
from phasegate.ledger import change_requests as crs
from phasegate.ledger import engagements, phases
from phasegate.ledger.db import transaction
from phasegate.ledger.models import ChangeRequestRow
from phasegate.sandbox.world import Demo, demo_engagements, local_world, wait_for
from phasegate.settings import Settings
from phasegate.slack.signature import sign
from phasegate.states import ChangeRequestState

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
SECRET, CHANNEL, ENGAGEMENT = "demo-signing-secret", "C0ACMECHURN", "acme-cr"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    settings = Settings(home=tmp_path_factory.mktemp("cr-world"), database_url="")
    with local_world(seeded(settings)) as demo:
        yield demo


def signed_post(world: Demo, path: str, body: bytes) -> httpx.Response:
    stamp = str(int(time.time()))
    return httpx.post(world.endpoint + path, content=body, timeout=10, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(SECRET, stamp, body)})


def slash(world: Demo, user: str, text: str, channel: str = CHANNEL) -> httpx.Response:
    return signed_post(world, "/slack/commands", urlencode({
        "command": "/phasegate", "text": text, "user_id": user, "channel_id": channel,
        "trigger_id": world.slack.issue_trigger_id(), "response_url": world.slack.response_url()}).encode())


def interact(world: Demo, payload: dict[str, Any]) -> httpx.Response:
    return signed_post(world, "/slack/interactions", urlencode({"payload": json.dumps(payload)}).encode())


def submit_form(world: Demo, user: str, view: dict[str, Any], **fields: str) -> httpx.Response:
    values = {name: {name: {"type": "plain_text_input", "value": value}} for name, value in fields.items()}
    submitted = view | {"id": f"V{time.time_ns()}", "hash": f"{time.time_ns()}.x", "state": {"values": values}}
    return interact(world, {"type": "view_submission", "user": {"id": user}, "view": submitted})


def click(world: Demo, user: str, cr_id: int, answer: str) -> httpx.Response:
    return interact(world, {"type": "block_actions", "user": {"id": user}, "trigger_id": world.slack.issue_trigger_id(),
                            "response_url": world.slack.response_url(),
                            "actions": [{"type": "button", "action_id": f"cr:{answer}", "value": str(cr_id),
                                         "action_ts": f"{time.time():.6f}"}]})


def next_view(world: Demo, seen: int) -> dict[str, Any]:
    return wait_for("a modal", lambda: world.slack.views[seen] if len(world.slack.views) > seen else None, 20)


def request_count(world: Demo) -> int:
    with transaction(world.rt.sessions) as session:
        return session.scalar(select(func.count()).select_from(ChangeRequestRow)) or 0


def cr_when(world: Demo, number: int, ready: Any, what: str) -> ChangeRequestRow:
    def probe() -> ChangeRequestRow | None:
        with transaction(world.rt.sessions) as session:
            row = crs.by_number(session, ENGAGEMENT, number)
            return row if ready(row) else None
    return wait_for(what, probe, 90)


def test_slash_command_to_new_baseline_and_moved_timebox(world: Demo) -> None:
    today = dt.date.today()
    engagement = with_changes(demo_engagements()["acme-churn"], id=ENGAGEMENT,
                              start_date=(today - dt.timedelta(days=50)).isoformat())  # PoC ends in 6 days
    with transaction(world.rt.sessions) as session:
        engagements.register(session, engagement)
    world.jira[ENGAGEMENT] = world.jira["acme-churn"]
    operations.start_phase(world.rt, ENGAGEMENT, Phase.POC, "U0PMACME01")
    world.wait_phase_run(ENGAGEMENT, Phase.POC)
    wait_for("the baseline", lambda: _baseline(world) is not None)

    # Refused without writing anything: unknown engagement, wrong channel, bad form input.
    unknown = slash(world, "U0PMACME01", "cr nope")
    assert unknown.json() == {"response_type": "ephemeral", "text": "There is no engagement `nope`; nothing was filed."}
    elsewhere = slash(world, "U0PMACME01", f"cr {ENGAGEMENT}", channel="C0SOMEWHERE")
    assert "are filed in its channel <#C0ACMECHURN>, not here" in elsewhere.json()["text"]
    assert "Usage" in slash(world, "U0PMACME01", "hello").json()["text"]
    seen = len(world.slack.views)
    assert slash(world, "U0TECHLEAD", f"cr {ENGAGEMENT}").status_code == 200
    form = next_view(world, seen)
    assert form["callback_id"] == "cr_submit" and form["private_metadata"] == f"{ENGAGEMENT}:{CHANNEL}"
    bad = submit_form(world, "U0TECHLEAD", form, title=" ", effort_days="-3", rationale="x" * 3001).json()
    assert bad["response_action"] == "errors"
    assert set(bad["errors"]) == {"title", "effort_days", "rationale"}
    assert request_count(world) == 0

    # CR-1, rejected through the reason modal; the requester is told.
    assert submit_form(world, "U0TECHLEAD", form, title="A second model family", cost="5000").status_code == 200
    first = cr_when(world, 1, lambda r: r.message_ts is not None, "the CR-1 prompt")
    assert first.requested_by == "U0TECHLEAD" and first.state is ChangeRequestState.ASSESSED
    for user in ("U0SPONSOR1", "U0VENDLEAD"):
        seen = len(world.slack.views)
        assert click(world, user, first.id, "reject").status_code == 200
        reason = next_view(world, seen)
        interact(world, {"type": "view_submission", "user": {"id": user}, "view": reason | {
            "id": f"V{time.time_ns()}", "hash": "h", "state": {"values": {"reason": {"reason": {"value": "not now"}}}}}})
    rejected = cr_when(world, 1, lambda r: r.announced, "CR-1 to be announced")
    assert rejected.state is ChangeRequestState.REJECTED and rejected.closed_reason == "not now"
    assert any("<@U0TECHLEAD> CR-1" in m.text and "rejected" in m.text for m in world.slack.messages(CHANNEL))

    # CR-2 pulls the PoC in by six days: approved by clicks, the phase run's gate opens today.
    seen = len(world.slack.views)
    slash(world, "U0PMACME01", f"cr {ENGAGEMENT}")
    form = next_view(world, seen)
    submit_form(world, "U0PMACME01", form, title="Review the PoC this week", schedule_days="-6", cost="0",
                scope_added="early readout")
    second = cr_when(world, 2, lambda r: r.message_ts is not None, "the CR-2 prompt")
    prompt = json.dumps(world.slack.message(CHANNEL, second.message_ts).blocks)
    assert "is pulled in by 6 days" in prompt and "+7 % cumulative growth" in prompt  # one item added to a baseline of 14
    assert click(world, "U0PMACME01", second.id, "approve").status_code == 200  # not an approver: refused
    click(world, "U0SPONSOR1", second.id, "approve")
    click(world, "U0VENDLEAD", second.id, "approve")
    approved = cr_when(world, 2, lambda r: r.announced, "CR-2 to be announced")
    assert approved.state is ChangeRequestState.APPROVED and approved.baseline_version == 2
    with transaction(world.rt.sessions) as session:
        assert [(d.approver, d.outcome.value) for d in crs.decisions(session, approved.id)] == [
            ("U0SPONSOR1", "approve"), ("U0VENDLEAD", "approve")]
        assert phases.current_timebox(session, ENGAGEMENT, Phase.POC).ends_on == today
    gate = world.open_gate(ENGAGEMENT, Phase.POC)  # the suspended phase run re-read its timebox
    assert gate.timebox == 1
    assert "Decided" not in json.dumps(world.slack.message(CHANNEL, approved.message_ts).blocks)
    assert "Approved" in json.dumps(world.slack.message(CHANNEL, approved.message_ts).blocks)


def test_a_jira_request_edited_while_open_is_asked_again_by_its_flow(world: Demo) -> None:
    """The import wakes the suspended change-request run, which posts the new revision's prompt; the
    answer given to the first revision does not count towards the quorum."""
    engagement_id, label = "acme-jira-cr", "cr-acme-jira"
    start = dt.date.today() - dt.timedelta(days=30)  # no gate opens (its evidence collection would import too)
    engagement = with_changes(demo_engagements()["acme-churn"], id=engagement_id,
                              jira__change_requests={"label": label}, start_date=start.isoformat())
    with transaction(world.rt.sessions) as session:
        engagements.register(session, engagement)
    world.jira[engagement_id] = world.jira["acme-churn"]
    operations.start_phase(world.rt, engagement_id, Phase.POC, "U0PMACME01")
    world.wait_phase_run(engagement_id, Phase.POC)
    wait_for("the baseline", lambda: _baseline(world, engagement_id) is not None)
    key = world.jira_cloud.add_issue("ACME", "Explain churn reasons", labels=[label],
                                     fields={"timetracking": {"originalEstimate": "3d"}})
    tracker = world.rt.tracker(engagement)
    filed = cr_import.import_requests(world.rt.sessions, engagement, tracker, world.rt.chat)
    assert (filed.filed, filed.problems) == ([(key, 1)], [])

    def prompt_of(revision: int) -> ChangeRequestRow | None:
        with transaction(world.rt.sessions) as session:
            row = crs.by_number(session, engagement_id, 1)
            return row if row.revision == revision and row.message_ts else None

    first = wait_for("the first prompt", lambda: prompt_of(1))
    click(world, "U0SPONSOR1", first.id, "approve")
    wait_for("the sponsor's answer", lambda: _answers(world, first.id))
    tracker.client.issue(key).update(fields={"timetracking": {"originalEstimate": "80d"}})
    revised = cr_import.import_requests(world.rt.sessions, engagement, tracker, world.rt.chat)
    assert (revised.revised, revised.problems) == ([(key, 1)], [])
    second = wait_for("the second revision's prompt", lambda: prompt_of(2))
    assert second.message_ts != first.message_ts
    prompt = json.dumps(world.slack.message(CHANNEL, str(second.message_ts)).blocks, ensure_ascii=False)
    assert "Revision 2: estimate: 3 → 80 days" in prompt and "*effort* 80 days" in prompt
    click(world, "U0VENDLEAD", second.id, "approve")
    wait_for("the vendor lead's answer", lambda: _answers(world, second.id))
    with transaction(world.rt.sessions) as session:
        assert crs.by_id(session, second.id).state is ChangeRequestState.ASSESSED  # the sponsor answered rev 1
    click(world, "U0SPONSOR1", second.id, "approve")
    done = wait_for("the approval announced", lambda: (row := prompt_of(2)) and row.announced and row)
    assert done.state is ChangeRequestState.APPROVED and done.effort_days == 80


def _answers(world: Demo, cr_id: int) -> list[str]:
    with transaction(world.rt.sessions) as session:
        return [d.approver for d in crs.decisions(session, cr_id)]


def _baseline(world: Demo, engagement_id: str = ENGAGEMENT) -> object:
    with transaction(world.rt.sessions) as session:
        return crs.baseline(session, engagement_id)
