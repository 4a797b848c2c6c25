"""Nothing reaches Slack unescaped: outside text (engagement-file names and titles, Jira summaries and
statuses, change-request titles, rationales and scope items, reasons, notes, operator names, metric
names) is pushed through every message phasegate sends, and no live mention, link or bidirectional
control from it survives anywhere in what Slack receives.

The messages are the real ones: posted by the real tasks and endpoint to the Slack stand-in (and
read back from it), or, where a message is built only inside a flow or an answer, built by the
same builder the product calls. Every text object at any depth is checked: mrkdwn and the
notification `text` (which Slack parses) for control sequences phasegate did not write itself,
plain_text as well for bidirectional and invisible characters.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import BackgroundTasks
from helpers import closed_port_url, register, wait_until
from sqlalchemy import select

from phasegate.changes import jira_import as cr_import
from phasegate.changes import operations as cr_operations
from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import GateClosed, PolicyError
from phasegate.gates import watch
from phasegate.ledger import change_decisions, engagements, gates
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import transaction
from phasegate.ledger.models import ChangeRequestRow, utcnow
from phasegate.messages import changes as cr_messages
from phasegate.messages import gates as gate_messages
from phasegate.messages import refusals
from phasegate.messages.prompts import refresh
from phasegate.ops.local import prefect_api
from phasegate.ops.servers import serve_in_thread
from phasegate.orchestration import recovery
from phasegate.orchestration.runs import PrefectRuns
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import collect
from phasegate.reports.model import HandoverItem
from phasegate.rules import drift
from phasegate.rules.change_requests import Draft
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.metrics_api import MetricsStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_user import SlackUser
from phasegate.slack import interactions
from phasegate.slack.app import SlackDeps, create_app
from phasegate.states import ChangeSource, EngagementState, Outcome, Via
from phasegate.tasks import change_requests as cr_tasks
from phasegate.tasks.gates import close_engagement, extend_timebox, open_gate, recheck_evidence, tell_unconfirmed
from phasegate.tasks.kickoff import begin_phase, link_milestones, post_kickoff, record_baseline
from phasegate.text import literal

PM, SPONSOR, TECHLEAD, VENDOR = "U0PMACME01", "U0SPONSOR1", "U0TECHLEAD", "U0VENDLEAD"
SECRET = "test-secret"

# Everything Slack would act on, plus direction overrides, isolates and a zero-width space.
HOSTILE = ("<!channel> <!here> <!everyone> <@UEVIL0001> <https://evil.example|click> & "
           "\u202eevil\u202c \u2066x\u2069\u200b")
SHORT = "<!here><@UEVIL0001><https://evil.example|x>\u202e\u200b"  # for fields of at most 64 characters
MARK = "evil.example"  # in both: shows that outside text reached the message

INVISIBLE = re.compile("[\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")
# The control sequences phasegate writes itself: its users' and channels' ids, links to the Jira site.
OURS = re.compile(r"<(?:@U0[A-Z0-9]+|#C0[A-Z0-9]+|https://acme\.atlassian\.net/browse/ACME-\d+\|ACME-\d+)>")


def hostile(acme: Engagement, **extra: Any) -> Engagement:
    """acme-churn with outside text in every free-text field of the file."""
    data = json.loads(acme.model_dump_json())
    data.update(name=HOSTILE, vendor=HOSTILE, client_sponsor=HOSTILE, **extra)
    data["budget"]["currency"] = SHORT
    data["metrics"][0]["name"] = SHORT  # f1
    for phase in data["phases"].values():
        for milestone in phase["milestones"]:
            milestone["title"] = f"{HOSTILE} {milestone['key']}"
        for approver in phase["gate"]["approvers"]:
            approver.update(name=HOSTILE, role=SHORT)
        for criterion in phase["exit_criteria"]:
            if criterion.get("metric") == "f1":
                criterion["metric"] = SHORT
    data["phases"]["poc"]["milestones"][0]["attestation"] = True  # an "Attest: <title>" button on the kickoff
    return Engagement.model_validate(data)


# What Slack received, as (where, message) pairs, and what is wrong with it.

def text_objects(node: Any) -> Iterator[tuple[str, str]]:
    """(type, text) of every text object at any depth of blocks or a view."""
    if isinstance(node, Mapping):
        if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            yield node["type"], node["text"]
        for value in node.values():
            yield from text_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from text_objects(item)


def problems(text: str, *, parsed: bool) -> list[str]:
    found = []
    if INVISIBLE.search(text):
        found.append(f"bidi or invisible controls {sorted(set(INVISIBLE.findall(text)))!r}")
    stray = OURS.sub("", text)
    if parsed and "<" in stray:
        found.append(f"a live control sequence {stray[stray.index('<'):][:48]!r}")
    return found


def wrong(where: str, message: Mapping[str, Any], *, carries: bool = True) -> list[str]:
    """Each problem as "where: problem"; `carries`: the message must show some of the outside text."""
    found = problems(message["text"], parsed=True) if isinstance(message.get("text"), str) else []
    for kind, text in text_objects({k: v for k, v in message.items() if k != "text"}):
        found += problems(text, parsed=kind == "mrkdwn")
    if carries and MARK not in json.dumps(message, ensure_ascii=False):
        found.append("the outside text never reached it (the test does not exercise it)")
    return [f"{where}: {p}" for p in dict.fromkeys(found)]


def kind_of(message: Any) -> str:
    metadata = message.metadata or {}
    kind = str(metadata.get("event_type", "")).removeprefix("phasegate_") or (
        "thread reply" if message.thread_ts else "channel post")
    return f"{kind} {message.text[:40]!r}"


def channel_problems(slack: SlackStandin, channel: str, quiet: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """(kinds seen, problems) for every message in the channel; messages starting with one of `quiet`
    carry no outside text by design (a reminder names only ids)."""
    seen, found = [], []
    for message in slack.messages(channel):
        where = kind_of(message)
        seen.append(where)
        found += wrong(where, {"text": message.text, "blocks": message.blocks},
                       carries=not message.text.startswith(quiet))
    return seen, found


def answer(rt: Runtime, gate_id: int, approver: str, outcome: Outcome, **kwargs: Any) -> None:
    with transaction(rt.sessions) as session:
        gates.answer(session, gate_id, approver=approver, outcome=outcome, reason=HOSTILE, **kwargs)
    refresh(rt.sessions, rt.chat, gate_id)


def running(rt: Runtime, engagement: Engagement) -> dict[str, str]:
    """As the phase flow starts: registered, PoC begun, kickoff posted, milestone issues in Jira,
    baseline recorded. The milestone -> Jira issue links."""
    register(rt, engagement)
    begin_phase.fn(rt, engagement, Phase.POC, PM, None)
    post_kickoff.fn(rt, engagement, Phase.POC)
    link_milestones.fn(rt, engagement, Phase.POC)
    record_baseline.fn(rt, engagement, Phase.POC)
    with transaction(rt.sessions) as session:
        return engagements.links(session, engagement.id, Phase.POC)


def test_gate_messages_show_outside_text_literally(rt: Runtime, slack: SlackStandin, jira: JiraStandin,
                                                    metrics: MetricsStandin, acme: Engagement) -> None:
    """Kickoff, prompt (open, decided, stale, reopened), "open for answers", the stale and re-check
    notices, reminders and escalation, the extension and the closing announcement."""
    engagement = hostile(acme)
    links = running(rt, engagement)
    for key in links.values():
        jira.set_status(key, HOSTILE, done=True)  # a workflow status is outside text too
    jira.add_issue("ACME", HOSTILE, epic=links["baseline-model"])  # scope drift: a warning on the prompt
    gate_id = open_gate.fn(rt, engagement, Phase.POC, 1, PM, None)
    answer(rt, gate_id, SPONSOR, Outcome.GO, via=Via.CLI, operator=HOSTILE)
    answer(rt, gate_id, VENDOR, Outcome.GO, via=Via.SLACK)  # decided
    tell_unconfirmed(rt, engagement, gate_id, [f"{SHORT} >= 0.85: unknown: {HOSTILE}"])

    jira.set_status(links["data-readiness"], HOSTILE, done=False)
    metrics.set("acme-churn-poc", f1=0.5)  # the criterion on the metric named SHORT now fails
    reopened = recheck_evidence.fn(rt, engagement, gate_id)  # stale: the old prompt, a new one, a notice
    assert reopened is not None
    with transaction(rt.sessions) as session:
        opened_at = gates.by_id(session, reopened).opened_at
    watch.watch(rt, opened_at + dt.timedelta(days=10), wake=lambda run: None)  # reminder, escalation
    answer(rt, reopened, SPONSOR, Outcome.EXTEND, via=Via.SLACK)
    answer(rt, reopened, VENDOR, Outcome.EXTEND, via=Via.SLACK)
    extend_timebox.fn(rt, engagement, Phase.POC, reopened)
    close_engagement.fn(rt, engagement, reopened, EngagementState.CLOSED)  # the reasons given, announced

    seen, found = channel_problems(slack, engagement.slack_channel, quiet=(":bell:", ":rotating_light:"))
    assert len(seen) >= 10, seen
    assert found == [], "\n".join(found)


def test_change_request_messages_show_outside_text_literally(rt: Runtime, slack: SlackStandin,
                                                             jira: JiraStandin, acme: Engagement) -> None:
    """Prompts of requests filed from Jira (summary, description) and from Slack (title, rationale,
    scope items, a file amendment), answers with reasons, the approved, rejected and withdrawn
    announcements, the cancellation notice, and the forms' labels."""
    engagement = hostile(acme, jira={**json.loads(acme.jira.model_dump_json()),
                                     "change_requests": {"label": "change-request"}})
    running(rt, engagement)
    jira.add_issue("ACME", HOSTILE, labels=["change-request"],
                   fields={"description": HOSTILE, "reporter": {"displayName": HOSTILE}})
    amended = json.loads(engagement.model_dump_json())
    amended["phases"]["poc"]["milestones"].append({"key": "shap-report", "title": HOSTILE})
    draft = Draft(title=HOSTILE, rationale=HOSTILE, scope_added=(HOSTILE, "shap-report"), scope_removed=("poc-report",),
                  amendment=amended)
    with prefect_api(closed_port_url()):  # the flows cannot start; their tasks are run here instead
        cr_import.import_requests(rt.sessions, engagement, rt.tracker(engagement))
        for _ in range(3):
            cr_operations.file(rt.sessions, engagement.id, draft, requested_by=PM, source=ChangeSource.SLACK)
    with transaction(rt.sessions) as session:
        first, second, third, fourth = session.scalars(select(ChangeRequestRow.id).order_by(ChangeRequestRow.number))
    for cr_id in (first, second, third, fourth):
        cr_tasks.post_prompt.fn(rt, cr_id)
    for approver, cr_id, outcome in ((SPONSOR, first, Outcome.APPROVE), (VENDOR, first, Outcome.APPROVE),
                                     (SPONSOR, second, Outcome.REJECT), (VENDOR, second, Outcome.REJECT),
                                     (SPONSOR, third, Outcome.APPROVE)):
        with transaction(rt.sessions) as session:
            change_decisions.answer(session, cr_id, approver=approver, outcome=outcome, reason=HOSTILE, via=Via.SLACK)
    with transaction(rt.sessions) as session:
        crs.withdraw(session, third, by=PM, reason=HOSTILE)
    for cr_id in (first, second, third):
        cr_tasks.announce.fn(rt, engagement, cr_id)
    cr_messages.refresh(rt.sessions, rt.chat, fourth)  # assessed against the baseline the first one changed
    recovery.cancel(rt, PrefectRuns(), engagement.id, reason=HOSTILE, by=HOSTILE)

    seen, found = channel_problems(slack, engagement.slack_channel)
    assert len(seen) >= 8, seen
    items = [drift.DriftItem("ACME-9", HOSTILE, "baseline-model")]
    views = {"change-request form": cr_messages.form(engagement, Phase.POC, drift.draft(drift.Drift(
        engagement.id, Phase.POC, items)), channel=engagement.slack_channel),
             "reject reason form": cr_messages.reason_modal(first, 1)}
    for name, view in views.items():
        found += wrong(name, view, carries=name == "change-request form")
    assert found == [], "\n".join(found)


def test_weekly_report_and_portfolio_digest_show_outside_text_literally(
        rt: Runtime, slack: SlackStandin, jira: JiraStandin, metrics: MetricsStandin, acme: Engagement) -> None:
    """The weekly report (milestones and their Jira statuses, metrics, open gates with who answered
    and who is pending, handover items, change requests, scope drift, budget) and the portfolio digest."""
    engagement = hostile(acme)
    links = running(rt, engagement)
    for key in links.values():
        jira.set_status(key, HOSTILE, done=False)
    jira.add_issue("ACME", HOSTILE, epic=links["baseline-model"])
    with prefect_api(closed_port_url()):
        cr_operations.file(rt.sessions, engagement.id, Draft(title=HOSTILE), requested_by=PM,
                           source=ChangeSource.SLACK)
    gate_id = open_gate.fn(rt, engagement, Phase.POC, 1, PM, None)
    with transaction(rt.sessions) as session:
        gates.answer(session, gate_id, approver=SPONSOR, outcome=Outcome.NO_GO, reason=HOSTILE, via=Via.SLACK)
    now = utcnow()
    (report,) = collect.collect(rt, [engagement.id], now).reports
    report.handover = [HandoverItem(key="documentation", title=HOSTILE, done=True, attested_by=HOSTILE,
                                    attested_on=now.date())]  # as in the handover phase
    slack.reset()
    assert collect.deliver_all(rt, [report], post=True)[1] == {}
    digest = Runtime(rt.settings.model_copy(update={"portfolio_channel": "C0PORTFOLIO"}))
    try:
        assert collect.post_digest(digest, now) is not None
    finally:
        digest.close()

    seen, found = channel_problems(slack, engagement.slack_channel)
    (posted,) = slack.messages("C0PORTFOLIO")
    found += wrong("portfolio digest", {"text": posted.text, "blocks": posted.blocks})
    assert seen and found == [], "\n".join(found)


def test_answers_to_the_clicker_show_outside_text_literally(rt: Runtime, slack: SlackStandin, jira: JiraStandin,
                                                            acme: Engagement) -> None:
    """Ephemeral answers: the slash command naming an engagement that does not exist, attesting a
    milestone the kickoff never offered, a click on the gate of a cancelled engagement."""
    engagement = hostile(acme)
    running(rt, engagement)
    gate_id = open_gate.fn(rt, engagement, Phase.POC, 1, PM, None)
    deps = SlackDeps(signing_secret=SECRET, sessions=rt.sessions, chat=rt.chat, resume=lambda run: None)
    command = {"text": f"cr {SHORT}", "user_id": PM, "channel_id": engagement.slack_channel, "trigger_id": "t"}
    answered = interactions.on_command(deps, command, BackgroundTasks())
    said = {"slash command": json.loads(bytes(answered.body))}
    recovery.cancel(rt, PrefectRuns(), engagement.id, reason=HOSTILE, by=HOSTILE)
    handle = serve_in_thread(create_app(deps))
    try:
        clicker = SlackUser(SPONSOR, endpoint=handle.url, signing_secret=SECRET, slack=slack)
        with transaction(rt.sessions) as session:
            gate = gates.by_id(session, gate_id)
        clicker.click(gate_id, Outcome.GO, gate.channel, gate.message_ts or "").raise_for_status()
        clicker.send({"type": "block_actions", "user": {"id": SPONSOR}, "response_url": slack.response_url(),
                      "channel": {"id": engagement.slack_channel},
                      "actions": [{"type": "button", "action_id": f"attest:{SHORT}", "value": f"{engagement.id}:poc",
                                   "action_ts": "1.0"}]}).raise_for_status()
        wait_until(lambda: len(slack.responses) == 2, what="both answers")
    finally:
        handle.stop()
    said |= {f"answer {n}": r for n, r in enumerate(slack.responses)}
    found = [p for where, body in said.items() for p in wrong(where, body)]
    assert found == [], "\n".join(found)


def test_outside_text_keeps_its_words() -> None:
    """Escaped, not removed: Slack shows the text as typed, minus the direction and invisibility tricks."""
    assert literal("R&D <!here> \u202eok\u2066\u200b") == "R&amp;D &lt;!here&gt; ok"
    assert literal("R&D <!here> \u202eok", plain=True) == "R&D <!here> ok"  # plain_text parses nothing
    joined = "\U0001f468\u200d\U0001f469\u200d\U0001f467 \u0645\u06cc\u200c\u0631\u0648\u062f"
    assert literal(joined) == joined  # emoji sequences and scripts keep their joiners
    line = gate_messages.answer_line(approver=SPONSOR, name="R&D <lead>", side="client", role="sponsor",
                                     outcome=Outcome.GO, via="slack", reason="a < b \u202eok", unmet=(),
                                     operator=None)
    assert line == "R&amp;D &lt;lead&gt; (<@U0SPONSOR1>, client sponsor) GO via slack: “a &lt; b ok”"


def test_a_refusal_keeps_only_the_deciders_it_names_as_mentions() -> None:
    closed = GateClosed("acme-churn/G1 was already decided: GO by <@U0SPONSOR1> (<@UEVIL0001>)",
                        mentions=[SPONSOR])
    assert refusals.render(closed) == "acme-churn/G1 was already decided: GO by <@U0SPONSOR1> (&lt;@UEVIL0001&gt;)"
    assert refusals.render(PolicyError("no milestone '<!here>'"), "Not recorded: ") == (
        "Not recorded: no milestone '&lt;!here&gt;'")
