"""The sandbox's web page: each engagement channel as Slack would show it, answered as any approver.

The page renders the Block Kit phasegate posted to the Slack stand-in. A click is sent here, and
this app sends the product's endpoint exactly the signed `block_actions` (or `view_submission`)
request Slack would, so everything after it is the production path. The page can also move the
stand-ins' world: close a Jira milestone, set a metric, start a phase or ask for its review.
Because it signs for anyone, it answers only this machine's own browser page (sandbox/loopback.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, FiniteFloat, StringConstraints

from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import EXPECTED, NotFound
from phasegate.gates import operations
from phasegate.ledger import engagements
from phasegate.ledger.db import transaction
from phasegate.operator import cli_operator
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.loopback import LoopbackOnly
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.metrics_api import MetricsStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.slack.signature import sign

PAGE = Path(__file__).with_name("page.html")


class Action(BaseModel):
    user: str
    channel: str
    ts: str
    action_id: str
    block_id: str
    value: str = ""


class Field(BaseModel):
    type: str  # the input element's type: plain_text_input, number_input or static_select
    value: str


class Submission(BaseModel):
    user: str
    view: int  # index in the stand-in's opened views
    values: dict[str, dict[str, Field]]  # block_id -> action_id -> what the PM entered


class JiraChange(BaseModel):
    engagement: str
    issue: str
    done: bool


class MetricChange(BaseModel):
    engagement: str
    metric: str
    value: FiniteFloat  # JSON as Python reads it takes NaN and Infinity


class PhaseRequest(BaseModel):
    engagement: str
    action: Literal["start", "review"]


class SlashCommand(BaseModel):
    user: str
    engagement: str  # typed in its channel
    text: Annotated[str, StringConstraints(max_length=2000)] = ""


class World:
    """What the page's handlers reach: the runtime, the stand-ins and the endpoint Slack would call."""

    def __init__(self, rt: Runtime, slack: SlackStandin, jira: dict[str, JiraStandin], metrics: MetricsStandin,
                 endpoint: str, secret: str) -> None:
        self.rt, self.slack, self.jira, self.metrics = rt, slack, jira, metrics
        self.endpoint, self.secret = endpoint.rstrip("/") + "/slack/interactions", secret
        self.http = httpx.Client(timeout=10)

    def configs(self) -> list[Engagement]:
        with transaction(self.rt.sessions) as session:
            return [engagements.config_of(row) for row in engagements.all_rows(session)]

    def slash(self, command: SlashCommand) -> httpx.Response:
        """`/phasegate TEXT` typed in the engagement's channel, as Slack sends it: form-encoded, signed,
        with a trigger id (for the modal it may open) and a response URL (for the answer)."""
        config = next((c for c in self.configs() if c.id == command.engagement), None)
        if config is None:
            raise HTTPException(404, f"no engagement {command.engagement!r} in the sandbox")
        body = urlencode({"command": "/phasegate", "text": command.text, "user_id": command.user,
                          "channel_id": config.slack_channel, "trigger_id": self.slack.issue_trigger_id(),
                          "response_url": self.slack.response_url()}).encode()
        return self.http.post(self.endpoint.removesuffix("/interactions") + "/commands", content=body,
                              headers=self.signed(body))

    def signed(self, body: bytes) -> dict[str, str]:
        stamp = str(int(time.time()))
        return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": sign(self.secret, stamp, body)}

    def send(self, payload: dict[str, Any]) -> httpx.Response:
        """The request Slack sends: form-encoded `payload`, signed with the app's signing secret."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.http.post(self.endpoint, content=body, headers=self.signed(body))

    def state(self) -> dict[str, Any]:
        result = []
        for config in self.configs():
            with transaction(self.rt.sessions) as session:
                row = engagements.get(session, config.id)
                phase = row.current_phase
                named = {m.key: m.jira_issue for m in config.phases.of(phase).milestones if m.jira_issue} if phase else {}
                links = named | (engagements.links(session, config.id, phase) if phase else {})
                state = row.state.value
            people = {config.pm_slack_user: {"id": config.pm_slack_user, "name": "PM", "role": "pm", "side": ""}}
            for p in config.phases.present():
                for a in config.phases.of(p).gate.approvers:
                    people.setdefault(a.slack_user, {"id": a.slack_user, "name": a.name, "role": a.role,
                                                     "side": a.side.value})
            issues = []
            for key, issue in links.items():
                try:
                    fields = self.jira[config.id].issue(issue)["fields"]
                    status = fields["status"]["name"]
                except (KeyError, TypeError):
                    status = "?"
                issues.append({"milestone": key, "issue": issue, "status": status})
            channel = self.slack.messages(config.slack_channel)
            shared = self.slack.files.shared(config.slack_channel)  # the weekly chart, in the report's thread
            messages = [{"ts": m.ts, "text": m.text, "blocks": m.blocks, "edits": m.edits,
                         "replies": [{"ts": r.ts, "text": r.text, "blocks": r.blocks}
                                     for r in self.slack.thread(config.slack_channel, m.ts) if r.ts != m.ts],
                         "files": [{"title": f.title, "url": f"/api/files/{f.id}"}
                                   for f in shared if f.thread_ts == m.ts]}
                        for m in channel if m.thread_ts is None]
            result.append({"id": config.id, "name": config.name, "channel": config.slack_channel, "state": state,
                           "phase": phase.value if phase else None, "people": list(people.values()),
                           "first": "Phase 0" if config.phases.first() is Phase.SELECTION else "the PoC",
                           "metrics": [m.name for m in config.metrics], "issues": issues, "messages": messages})
        notices = [str(r.get("text", "")) for r in self.slack.responses[-3:]]  # response_url answers
        return {"engagements": result, "views": len(self.slack.views), "notices": notices}

    def set_metric(self, change: MetricChange) -> None:
        config = next((c for c in self.configs() if c.id == change.engagement), None)
        metric = next((m for m in config.metrics if m.name == change.metric), None) if config else None
        if config is None or metric is None:
            raise HTTPException(404, "no such engagement or metric")
        if metric.source.kind == "http_json" and metric.source.url:
            run_id = parse_qs(urlsplit(metric.source.url).query).get("run_id", [""])[0]
            self.metrics.set(run_id, **{metric.name: change.value})
        elif metric.source.kind == "manual":
            try:
                with transaction(self.rt.sessions) as session:
                    engagements.submit_metric(session, config, metric.name, repr(change.value),
                                              by=config.pm_slack_user, operator=cli_operator())
            except EXPECTED as exc:  # out of the metric's declared range
                raise HTTPException(422, str(exc)) from None
        else:
            raise HTTPException(400, f"{metric.name} is read from a Jira field; set it in the issue")


def create_page(world: World) -> FastAPI:
    app = FastAPI(title="phasegate sandbox")
    app.add_middleware(LoopbackOnly)  # it signs any click: only this machine's own browser page may ask

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        """A 422 without the input FastAPI's own handler echoes: NaN and Infinity are no JSON to send back."""
        return JSONResponse({"detail": [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]}, 422)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/state")
    def state() -> dict[str, Any]:
        return world.state()

    @app.get("/api/files/{file_id}")
    def shared_file(file_id: str) -> Response:
        """A file shared in a channel (the weekly report's chart), as Slack shows it in the thread."""
        found = world.slack.files.files.get(file_id)
        if found is None or found.channel is None:
            raise HTTPException(404, f"no shared file {file_id}")
        return Response(found.data, media_type="image/png" if found.filename.endswith(".png")
                        else "application/octet-stream")

    @app.get("/api/views/{index}")
    def view(index: int) -> dict[str, Any]:
        """The view opened as `index`, or null while it has not been opened yet (the page polls)."""
        if index < 0:
            raise HTTPException(404, f"no view {index}")
        views = world.slack.views
        return {"view": views[index] if index < len(views) else None}

    @app.post("/api/action")
    def action(act: Action) -> dict[str, Any]:
        before = len(world.slack.views)
        payload = {
            "type": "block_actions", "user": {"id": act.user, "username": act.user.lower()},
            "trigger_id": world.slack.issue_trigger_id(), "response_url": world.slack.response_url(),
            "container": {"type": "message", "channel_id": act.channel, "message_ts": act.ts},
            "channel": {"id": act.channel},
            "actions": [{"type": "button", "action_id": act.action_id, "block_id": act.block_id,
                         "value": act.value, "action_ts": f"{time.time():.6f}"}],
        }
        return {"status": world.send(payload).status_code, "views_before": before}

    @app.post("/api/slash")
    def slash(command: SlashCommand) -> dict[str, Any]:
        before = len(world.slack.views)
        answer = world.slash(command)
        said = answer.json().get("text", "") if answer.headers.get("content-type", "").startswith("application/json") \
            and answer.content else ""
        return {"status": answer.status_code, "views_before": before, "text": said}

    @app.post("/api/submit")
    def submit(sub: Submission) -> dict[str, Any]:
        if not 0 <= sub.view < len(world.slack.views):
            raise HTTPException(404, f"no view {sub.view} has been opened")
        opened = world.slack.views[sub.view]
        view = dict(opened) | {"id": f"V{time.time_ns()}", "hash": f"{time.time_ns()}.x",
                               "state": {"values": view_state(opened, sub.values)}}
        answer = world.send({"type": "view_submission", "user": {"id": sub.user}, "view": view})
        errors = answer.json().get("errors") if answer.content.strip().startswith(b"{") else None
        return {"status": answer.status_code, "errors": errors}

    @app.post("/api/jira")
    def jira(change: JiraChange) -> dict[str, str]:
        standin = world.jira.get(change.engagement)
        if standin is None:
            raise HTTPException(404, f"no engagement {change.engagement!r} in the sandbox")
        if change.issue not in standin.issue_keys():
            raise HTTPException(404, f"{change.engagement} has no Jira issue {change.issue}")
        standin.set_status(change.issue, "Done" if change.done else "To Do", done=change.done)
        return {"status": "ok"}

    @app.post("/api/metric")
    def metric(change: MetricChange) -> dict[str, str]:
        world.set_metric(change)
        return {"status": "ok"}

    @app.post("/api/phase")
    def phase(request: PhaseRequest) -> dict[str, str]:
        try:
            if request.action == "start":
                config = next((c for c in world.configs() if c.id == request.engagement), None)
                if config is None:
                    raise HTTPException(404, f"no engagement {request.engagement!r} in the sandbox")
                first = config.phases.first()  # Phase 0 when the file has it, else the PoC
                run = operations.start_phase(world.rt, config.id, first, config.pm_slack_user,
                                             operator=cli_operator())
                return {"status": f"{first.heading} flow run {run}"}
            return {"status": operations.request_review(world.rt, request.engagement, operator=cli_operator())}
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except EXPECTED as exc:
            raise HTTPException(409, str(exc)) from None

    return app


def view_state(view: dict[str, Any], entered: dict[str, dict[str, Field]]) -> dict[str, Any]:
    """`view.state.values` as Slack builds it: each element's own shape (a select sends the chosen
    option, an empty number input sends null)."""
    elements = {b.get("block_id"): b.get("element", {}) for b in view.get("blocks", []) if b.get("type") == "input"}
    values: dict[str, Any] = {}
    for block, inputs in entered.items():
        for action, field in inputs.items():
            if field.type == "static_select":
                options = elements.get(block, {}).get("options", [])
                chosen = next((o for o in options if o.get("value") == field.value), None)
                values.setdefault(block, {})[action] = {"type": field.type, "selected_option": chosen}
            else:
                values.setdefault(block, {})[action] = {"type": field.type, "value": field.value or None}
    return values
