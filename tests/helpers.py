"""Helpers shared by the test modules: the two ways a test opens a gate, one `wait_until`, small
builders for engagements, and what the CLI tests check a command's result with. Fixtures live in
conftest.py; plain functions live here."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import pwd
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
from click.testing import Result
from sqlalchemy.orm import Session, sessionmaker

from phasegate.configs.schema import Engagement, Phase
from phasegate.integrations.http import client
from phasegate.ledger import engagements, gates, phases
from phasegate.ledger.db import make_engine, sessions, transaction
from phasegate.ledger.models import GateRow, utcnow
from phasegate.ops.servers import ServerHandle, serve_in_thread
from phasegate.orchestration.runs import RunStatus
from phasegate.orchestration.runtime import Runtime
from phasegate.rules.evidence import Snapshot
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.slack.signature import sign
from phasegate.states import RunHealth

T = TypeVar("T")
Invoke = Callable[..., Result]  # the `cli` fixture: runs `phasegate <args>` in-process


def wait_until(check: Callable[[], T], *, timeout: float = 10, what: str = "the condition", interval: float = 0.02) -> T:
    """Poll `check` until it returns something truthy and return that; fail the test after `timeout`
    seconds. For work the system does after answering (a background task, a flow run), never as a
    timed assertion: the timeout only bounds how long a broken run takes to fail. Checks that ask the
    Prefect API poll less often (`interval`)."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(interval)
    return found


def register(rt: Runtime, engagement: Engagement) -> None:
    with transaction(rt.sessions) as session:
        engagements.register(session, engagement)


def with_changes(engagement: Engagement, **changes: object) -> Engagement:
    """A copy of the engagement with top-level or dotted-path fields replaced, validated again."""
    data = json.loads(engagement.model_dump_json())
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return Engagement.model_validate(data)


def open_gate(sessions: sessionmaker[Session], engagement: Engagement, *, requested_by: str | None = None,
              flow_run_id: str | None = None, today: dt.date | None = None) -> int:
    """An open G1 written straight into the ledger: engagement registered, PoC started, empty
    evidence, nothing posted. For tests of the ledger and the CLI, which need no Slack or Jira."""
    requester = requested_by or engagement.pm_slack_user
    with transaction(sessions) as session:
        engagements.register(session, engagement)
        phases.start_phase(session, engagement, Phase.POC, requested_by=requester, flow_run_id=None,
                           today=today or engagement.start_date)
        snapshot = Snapshot(engagement_id=engagement.id, phase=Phase.POC, timebox=1, collected_at=utcnow(),
                            milestones=[], metrics=[], criteria=[])
        return gates.open_gate(session, snapshot, requested_by=requester, flow_run_id=flow_run_id,
                               channel=engagement.slack_channel).id


def posted_gate(rt: Runtime, engagement: Engagement, requested_by: str = "U0PMACME01", *,
                jira: JiraStandin | None = None) -> GateRow:
    """An open G1 reached with the real phase tasks (no Prefect run): kickoff posted, milestones in
    Jira, evidence collected and frozen, the prompt posted in Slack. With `jira`, the milestones'
    issues are done in that Jira first, so a GO needs no waiver."""
    from phasegate.tasks.gates import open_gate as open_gate_task
    from phasegate.tasks.kickoff import begin_phase, link_milestones, post_kickoff

    register(rt, engagement)
    begin_phase.fn(rt, engagement, Phase.POC, requested_by, None)
    post_kickoff.fn(rt, engagement, Phase.POC)
    link_milestones.fn(rt, engagement, Phase.POC)
    if jira is not None:
        finish_milestones(rt, jira, engagement.id, Phase.POC)
    gate_id = open_gate_task.fn(rt, engagement, Phase.POC, 1, requested_by, None)
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
    assert gate.message_ts is not None, "the prompt was not posted"
    return gate


def finish_milestones(rt: Runtime, jira: JiraStandin, engagement_id: str, phase: Phase) -> None:
    """Mark every Jira issue linked to the phase's milestones done, as the vendor would."""
    with transaction(rt.sessions) as session:
        links = engagements.links(session, engagement_id, phase)
    for key in links.values():
        jira.set_status(key, "Done", done=True)


def jira_issues(jira: JiraStandin, project: str) -> list[str]:
    """Keys of every issue in the stand-in's project, by walking KEY-1, KEY-2, ..."""
    keys: list[str] = []
    while True:
        key = f"{project}-{len(keys) + 1}"
        try:
            jira.issue(key)
        except KeyError:
            return keys
        keys.append(key)


def os_operator() -> str:
    """`user@host` as the ledger records a CLI command run by this process: the account of its real
    uid (never $LOGNAME or $USER, which the caller sets) and the host name."""
    return f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"


def sent_to_prefect(timeout: float = 30.0) -> None:
    """What this process's own flow runs logged and emitted, sent to the Prefect API before its server
    stops, as `prefect_test_harness` does: else Prefect's log and event workers retry a closed port
    when the xdist worker exits ("Still processing items", then a logging error on a closed stream).
    Bounded: in one CI run the events worker kept failing an item and an unbounded drain waited out
    pytest's timeout."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=timeout)
    EventsWorker.drain_all(timeout=timeout)


@contextmanager
def no_prefect() -> Iterator[str]:
    """No Prefect API for this process's client (a closed port), for tests where Prefect's absence is
    the setting, not the subject: its client retries a refused connection three times, 1.5 s a
    call, which such a test only waits out (54 s of test_jira_change_requests' 67). Tests of what
    happens while Prefect is down (an answer in Slack's 3 s) keep the real waits."""
    import httpcore._sync.connection

    from phasegate.ops.local import prefect_api

    backoff = httpcore._sync.connection.RETRIES_BACKOFF_FACTOR
    httpcore._sync.connection.RETRIES_BACKOFF_FACTOR = 0
    try:
        with prefect_api(closed_port_url()) as url:
            yield url
    finally:
        httpcore._sync.connection.RETRIES_BACKOFF_FACTOR = backoff


@functools.cache
def closed_port_url() -> str:
    """A URL where nothing answers: a port this process keeps bound and never listens on, so that no
    server started later can take it and a connection is refused at once. The same one for the whole
    process, so that the Prefect settings pointed at it are made once (`phasegate.ops.local.prefect_api`)."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    _HELD.append(held)
    return f"http://127.0.0.1:{held.getsockname()[1]}/api"


_HELD: list[socket.socket] = []


def ok(result: Result) -> str:
    """stdout of a successful command, with rich's line wrapping undone."""
    assert result.exception is None, repr(result.exception)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return " ".join(result.stdout.split())


def squeezed(text: str) -> str:
    return "".join(text.split())


def refused(result: Result, *fragments: str) -> str:
    """The one `phasegate: ...` line of a refused command, which must mention every fragment."""
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("phasegate: "), result.output
    text = " ".join(line.strip() for line in lines)
    for fragment in fragments:
        assert fragment in text
    assert len(lines) == 1, f"the message spans {len(lines)} lines:\n{result.stderr}"
    return lines[0]


@contextmanager
def ledger_of(home: Path) -> Iterator[Session]:
    """A session on the SQLite ledger the CLI uses for this home, to check what a command recorded."""
    engine = make_engine(f"sqlite:///{home / 'ledger.db'}")
    try:
        with transaction(sessions(engine)) as session:
            yield session
    finally:
        engine.dispose()


def process_tree(pid: int) -> list[int]:
    """The process and its descendants, from /proc (the runner starts each flow run in a session of its own)."""
    from phasegate.ops.serve_flows import descendants

    return [pid, *descendants(pid)]


class SetRuns:
    """A RunControl whose Prefect answers the test sets (`health[run_id]`; unknown runs are alive), for
    the watch's and the CLI's decisions, where what Prefect says of a run is the input. Starting is
    idempotent by key, as Prefect's is; what was started and woken is kept to assert on."""

    def __init__(self, health: dict[str, RunHealth] | None = None) -> None:
        self.health = dict(health or {})
        self.started: dict[str, str] = {}  # idempotency key: run id
        self.woken: list[str] = []
        self.suspended: set[str] = set()  # runs Crashed while suspended: a false alarm put right by restore

    def status(self, flow_run_id: str) -> RunStatus:
        health = self.health.get(flow_run_id, RunHealth.ALIVE)
        return RunStatus(flow_run_id, health, "Crashed: the process was killed" if health is RunHealth.CRASHED
                         else health.value.capitalize())

    def _start(self, key: str) -> str:
        return self.started.setdefault(key, f"run-{len(self.started) + 1}")

    def start(self, engagement_id: str, phase: Phase, requested_by: str, *, key: str) -> str:
        return self._start(key)

    def start_change_request(self, engagement_id: str, number: int, *, key: str) -> str:
        return self._start(key)

    def wake(self, flow_run_id: str) -> bool:
        self.woken.append(flow_run_id)
        return False

    def cancel(self, flow_run_id: str, reason: str) -> None:
        self.health[flow_run_id] = RunHealth.CANCELLED

    def restore(self, flow_run_id: str) -> RunStatus | None:
        if flow_run_id not in self.suspended or self.health.get(flow_run_id) is not RunHealth.CRASHED:
            return None
        self.health[flow_run_id] = RunHealth.ALIVE
        return RunStatus(flow_run_id, RunHealth.ALIVE, "Suspended: suspended again after a false Crashed")


class ServerErrors(logging.Handler):
    """What the endpoint's server logged at ERROR: an exception in the app, or in a background task."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def server_errors(*names: str) -> Iterator[ServerErrors]:
    """ERROR records of the named loggers (default: uvicorn's and the Slack endpoint's) while inside."""
    errors = ServerErrors()
    names = names or ("uvicorn.error", "phasegate.slack")
    for name in names:
        logging.getLogger(name).addHandler(errors)
    try:
        yield errors
    finally:
        for name in names:
            logging.getLogger(name).removeHandler(errors)


class SignedEndpoint:
    """Signed requests to the Slack endpoint, as Slack sends them, over one keep-alive connection."""

    def __init__(self, handle: ServerHandle, secret: str, errors: ServerErrors) -> None:
        self.handle, self.secret, self.errors = handle, secret, errors
        self.url = handle.url + "/slack/interactions"
        # uvicorn closes a connection idle for 5 s, httpx reuses one idle for under 5 s: at the edge, on a
        # loaded machine, a request went out as the server closed it (a reset, in a fuzz run); 1 s clears it
        self.http = client(timeout=10, limits=httpx.Limits(keepalive_expiry=1.0))

    def post(self, path: str, body: bytes) -> httpx.Response:
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
                   "X-Slack-Signature": sign(self.secret, stamp, body)}
        return self.http.post(self.handle.url + path, content=body, headers=headers)

    def send_raw(self, body: bytes) -> httpx.Response:
        return self.post("/slack/interactions", body)

    def send(self, payload: object) -> httpx.Response:
        return self.send_raw(urlencode({"payload": json.dumps(payload)}).encode())

    def command(self, **fields: str) -> httpx.Response:
        return self.post("/slack/commands", urlencode(fields).encode())

    def close(self) -> None:
        self.http.close()


def form_opened_by(rt: Runtime, slack: SlackStandin, button: dict[str, Any], user: str,
                   channel: str) -> dict[str, Any]:
    """The form Slack shows `user` after a signed click on `button` in `channel`, answered by the
    endpoint over HTTP."""
    from phasegate.sandbox.standins.slack_user import SlackUser
    from phasegate.slack.app import create_app
    from phasegate.slack.deps import SlackDeps

    deps = SlackDeps(signing_secret="test-secret", sessions=rt.sessions, chat=rt.chat, resume=lambda _run: None)
    handle = serve_in_thread(create_app(deps))
    try:
        clicker = SlackUser(user, endpoint=handle.url, signing_secret="test-secret", slack=slack)
        seen = len(slack.views)
        clicker.send({"type": "block_actions", "user": {"id": user}, "trigger_id": slack.issue_trigger_id(),
                      "response_url": slack.response_url(), "channel": {"id": channel},
                      "actions": [{"type": "button", "action_id": button["action_id"], "value": button["value"],
                                   "action_ts": "1.0"}]}).raise_for_status()
        form: dict[str, Any] = wait_until(lambda: slack.views[seen] if len(slack.views) > seen else None,
                                          what="the form")
        return form
    finally:
        handle.stop()
