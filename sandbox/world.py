"""The local world the demo and the sandbox run in: stand-ins for Slack, Jira and an MLflow-style
metric server, a local Prefect server, the served flows and the real Slack endpoint, all on
loopback (`local_world`), and `Demo`, the handle on it that scripted users act through.

`phasegate demo` scripts it (sandbox/demo.py, sandbox/demo_changes.py); `phasegate sandbox` puts a
web page in front of it (sandbox/run.py, sandbox/page.py).
"""

from __future__ import annotations

import datetime as dt
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

from pydantic import SecretStr
from rich.console import Console

from phasegate.configs.loader import engagement_files, load_engagement
from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import PolicyError, ServiceUnavailable
from phasegate.gates import operations
from phasegate.ledger import engagements, gates, phases
from phasegate.ledger.db import transaction, upgrade
from phasegate.ledger.models import GateRow
from phasegate.ops.local import Stack
from phasegate.ops.stack import start_endpoint
from phasegate.orchestration.runtime import Runtime
from phasegate.rules import policy
from phasegate.sandbox.loopback import loopback_only
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.metrics_api import MetricsStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_user import SlackUser
from phasegate.settings import Settings
from phasegate.states import EngagementState, GateState, Outcome

T = TypeVar("T")
SECRET = "demo-signing-secret"
console = Console(soft_wrap=True)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 90) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise ServiceUnavailable(f"demo: timed out waiting for {what} (see the logs under ~/.phasegate/demo/logs)")


class Demo:
    """A running local world (see `local_world`): its stand-ins, runtime and endpoint, and what a scripted
    user does in it: click a gate's buttons, close Jira issues, ask for a review, wait for what follows."""

    def __init__(self, rt: Runtime, slack: SlackStandin, jira_cloud: JiraStandin, jira_dc: JiraStandin,
                 metrics: MetricsStandin, endpoint: str, api: str, log_dir: Path) -> None:
        self.rt, self.slack, self.metrics = rt, slack, metrics
        self.jira = {"acme-churn": jira_cloud, "globex-forecast": jira_dc}
        self.jira_cloud, self.jira_dc = jira_cloud, jira_dc
        self.endpoint, self.api, self.log_dir = endpoint, api, log_dir
        self.stack: Stack | None = None  # what local_world started (a test may kill and restart the runner)

    def engagement_ids(self) -> list[str]:
        with transaction(self.rt.sessions) as session:
            return [row.id for row in engagements.all_rows(session)]

    def jira_for(self, engagement_id: str) -> JiraStandin:
        """The stand-in answering for the engagement's Jira site (Cloud or Data Center)."""
        with transaction(self.rt.sessions) as session:
            config = engagements.config_of(engagements.get(session, engagement_id))
        return self.jira_cloud if config.jira.deployment == "cloud" else self.jira_dc

    def say(self, engagement_id: str, text: str) -> None:
        console.print(f"[cyan]{engagement_id:16}[/cyan] {text}", highlight=False)

    def who(self, engagement_id: str, user_id: str) -> str:
        """The name the engagement file gives a Slack user, with their role: how the narration says who acted."""
        with transaction(self.rt.sessions) as session:
            config = engagements.config_of(engagements.get(session, engagement_id))
        person = next((a for p in config.phases.present() for a in config.phases.of(p).gate.approvers
                       if a.slack_user == user_id), None)
        if person is not None:
            return f"{person.name} ({person.role})"
        return "the PM" if user_id == config.pm_slack_user else config.names().get(user_id, user_id)

    def user(self, user_id: str) -> SlackUser:
        return SlackUser(user_id, endpoint=self.endpoint, signing_secret=SECRET, slack=self.slack)

    def open_gate(self, engagement_id: str, phase: Phase, after: int = 0) -> GateRow:
        """The gate prompt for this phase once it is posted (newer than gate id `after`)."""
        def probe() -> GateRow | None:
            with transaction(self.rt.sessions) as session:
                return next((g for g in gates.open_gates(session, engagement_id)
                             if g.phase is phase and g.id > after and g.message_ts), None)
        gate = wait_for(f"{engagement_id} {phase.gate} to open", probe)
        self.say(engagement_id, f"{phase.gate} open (gate {gate.id}), evidence digest {gate.digest[:16]}…")
        return gate

    def decided(self, gate: GateRow) -> GateRow:
        def probe() -> GateRow | None:
            with transaction(self.rt.sessions) as session:
                row = gates.by_id(session, gate.id)
                return row if row.state is GateState.DECIDED else None
        return wait_for(f"gate {gate.id} to be decided", probe)

    def answers(self, gate_id: int, user: str) -> int:
        """How many answers the ledger holds from `user` on the gate."""
        with transaction(self.rt.sessions) as session:
            return sum(d.approver == user for d in gates.decisions(session, gate_id))

    def click(self, gate: GateRow, user: str, outcome: Outcome, reason: str = "") -> None:
        clicker = self.user(user)
        assert gate.message_ts is not None
        with transaction(self.rt.sessions) as session:
            unmet = gates.snapshot_of(session, gates.by_id(session, gate.id)).unmet
        if policy.needs_reason(outcome, unmet):
            response = clicker.answer_with_reason(gate.id, outcome, gate.channel, gate.message_ts, reason)
        else:
            ts = gate.message_ts
            response = clicker.persist(lambda: clicker.click_payload(gate.id, outcome, gate.channel, ts),
                                       lambda: self.answers(gate.id, user) > 0)
        response.raise_for_status()
        self.say(gate.engagement_id, f"  {self.who(gate.engagement_id, user)} clicked {outcome.label}" + (f" ({reason})" if reason else ""))

    def finish_jira_work(self, engagement_id: str, phase: Phase) -> None:
        """The vendor closes the milestone issues phasegate created or linked, and the issues filed
        under them (items that take an attestation are left to the approvers)."""
        def probe() -> list[str] | None:
            with transaction(self.rt.sessions) as session:
                config = engagements.config_of(engagements.get(session, engagement_id))
                links = engagements.links(session, engagement_id, phase)
            wanted = {m.key for m in config.phases.of(phase).milestones if not m.attestation}
            return [links[key] for key in wanted] if wanted <= set(links) else None
        jira = self.jira[engagement_id]
        milestones = set(wait_for(f"{engagement_id} {phase.value} milestones in Jira", probe))
        children = {k for k in jira.issue_keys() if (jira.issue(k)["fields"].get("parent") or {}).get("key") in milestones}
        work = sorted(milestones | children)
        started = self.phase_started(engagement_id, phase)
        span = dt.datetime.now(dt.UTC) - started
        for n, issue in enumerate(work, start=1):  # done one after another since the phase started
            jira.set_status(issue, "Done", done=True)
            jira.backdate(issue, created=started, resolved=started + span * n / len(work))

    def phase_started(self, engagement_id: str, phase: Phase) -> dt.datetime:
        """When the phase began: the engagement's start date for the PoC, the phase run's start after."""
        with transaction(self.rt.sessions) as session:
            config = engagements.config_of(engagements.get(session, engagement_id))
            run = phases.find_phase_run(session, engagement_id, phase)
        if phase is Phase.POC or run is None:
            return dt.datetime.combine(config.start_date, dt.time(9), config.tz)
        return run.started_at

    def wait_phase_run(self, engagement_id: str, phase: Phase) -> None:
        def probe() -> bool:
            with transaction(self.rt.sessions) as session:
                run = phases.find_phase_run(session, engagement_id, phase)
                return run is not None and run.kickoff_ts is not None
        wait_for(f"{engagement_id} {phase.value} to start", probe)
        self.say(engagement_id, f"{phase.heading} kicked off")

    def ended(self, engagement_id: str) -> str:
        def probe() -> str | None:
            with transaction(self.rt.sessions) as session:
                row = engagements.get(session, engagement_id)
                if row.state in (EngagementState.CLOSED, EngagementState.COMPLETED):
                    return f"{row.state.value}: {row.closed_reason}"
                return None
        return wait_for(f"{engagement_id} to end", probe)

    def review(self, engagement_id: str) -> None:
        """The PM asks for the gate review once the current timebox is open."""
        def probe() -> bool:
            try:
                operations.request_review(self.rt, engagement_id)
                return True
            except PolicyError:
                return False
        wait_for(f"{engagement_id} to accept a gate review", probe)


def seed_jira(jira: JiraStandin, engagement: Engagement) -> None:
    """The engagement's Jira project, where phasegate creates the milestone issues at kickoff, and
    the existing issues that milestones name by `jira_issue` (open, under the milestone's title), so
    they show as evidence rather than missing."""
    jira.add_project(engagement.jira.project)
    for phase in engagement.phases.present():
        for milestone in engagement.phases.of(phase).milestones:
            key = milestone.jira_issue
            if key is None or key.upper() in jira.issue_keys():
                continue
            jira.add_project(key.rsplit("-", 1)[0])
            jira.add_issue(key.rsplit("-", 1)[0], milestone.title, key=key)


def env_file(home: Path, world: Settings, api: str) -> Path:
    """`<home>/env.sh`: sourced in another terminal (`. env.sh`), it points that shell's `phasegate`
    commands at this world: its ledger, its Prefect server, its stand-ins (readable by its owner only:
    it holds the stand-ins' tokens)."""
    env = world.as_env() | {"PREFECT_API_URL": api, "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
                            "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    path = home / "env.sh"
    path.touch(mode=0o600)
    path.write_text("# Written by phasegate's sandbox or demo; removed when it stops. Use: . " + shlex.quote(str(path))
                    + "\n" + "".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(env.items())),
                    encoding="utf-8")
    return path


def world_settings(settings: Settings, slack: SlackStandin, metrics: MetricsStandin, cloud: JiraStandin,
                   dc: JiraStandin, sites: dict[str, str] | None = None) -> Settings:
    """`settings` pointed at the stand-ins: what this process uses, and what the served flows get
    through their environment."""
    return settings.model_copy(update={
        "slack_api_url": slack.base_url, "slack_bot_token": SecretStr(slack.bot_token),
        "slack_signing_secret": SecretStr(SECRET), "metrics_base_url": metrics.url,
        "jira_sites": sites if sites is not None else {"https://acme.atlassian.net": cloud.url,
                                                       "https://jira.globex.example": dc.url},
        "jira_email": cloud.email, "jira_api_token": SecretStr(cloud.api_token), "jira_pat": SecretStr(dc.pat),
        "slack_port": 0, "prefect_port": 0,  # any free port
    })


def current(loaded: list[Engagement], today: dt.date) -> list[Engagement]:
    """The demo's engagements moved in time, all by the same number of weeks, so that today is in the
    sixth week of the first one's first phase: whatever day the demo runs, its timeboxes are open,
    and each gate opens at the PM's review on the scripted evidence (not at once, on work not done
    yet, because its timebox ended months ago on the calendar)."""
    by = today - dt.timedelta(days=today.weekday(), weeks=5) - min(e.start_date for e in loaded)
    return [moved(e, by) for e in loaded]


def moved(engagement: Engagement, by: dt.timedelta) -> Engagement:
    """The engagement with its dates (start, data deletion deadline) `by` later."""
    handling = engagement.data_handling
    if handling is not None:
        handling = handling.model_copy(update={"deletion_deadline": handling.deletion_deadline + by})
    return engagement.model_copy(update={"start_date": engagement.start_date + by, "data_handling": handling})


def demo_engagements(today: dt.date | None = None) -> dict[str, Engagement]:
    """The demo's engagements by id, `current` on `today` (default: today's date)."""
    loaded = [load_engagement(path) for path in engagement_files()]
    return {e.id: e for e in current(loaded, today or dt.date.today())}


@contextmanager
def local_world(settings: Settings, files: list[Path] | None = None) -> Iterator[Demo]:
    """Stand-ins, a local Prefect server (always a new one, never the configured PREFECT_API_URL),
    the served flows and the Slack endpoint, all on loopback; everything is stopped on exit.
    `files`: the engagements to register (default: the demo's, `current` on today's date); each file's Jira site is answered by
    the Cloud or the Data Center stand-in, with its project and its linked issues seeded. Each part
    is said as it comes up (a first start takes half a minute, mostly Prefect's), and `<home>/env.sh`
    points another terminal's `phasegate` commands at this world until it stops."""
    started = time.monotonic()

    def up(what: str) -> None:
        console.print(f"  {what}  [{time.monotonic() - started:.0f} s]", markup=False, highlight=False)

    settings, pinned = loopback_only(settings)
    if pinned:
        console.print(pinned, markup=False, highlight=False)
    # the demo's engagements dated around today; the PM's own as written
    loaded = list(demo_engagements().values()) if files is None else [load_engagement(path) for path in files]
    slack, metrics = SlackStandin(), MetricsStandin()
    cloud, dc = JiraStandin("cloud"), JiraStandin("datacenter")
    with ExitStack() as standins:
        for standin in (slack, metrics, cloud, dc):
            standin.start()
            standins.callback(standin.stop)
        for engagement in loaded:
            seed_jira(cloud if engagement.jira.deployment == "cloud" else dc, engagement)
        up(f"stand-ins: Slack {slack.base_url}, Jira Cloud {cloud.url}, Jira Data Center {dc.url}, metrics {metrics.url}")
        sites = {e.jira.url: (cloud if e.jira.deployment == "cloud" else dc).url for e in loaded}
        world = world_settings(settings, slack, metrics, cloud, dc, sites)
        upgrade(world.ledger_url)
        up(f"ledger: {world.ledger_url}")
        with Stack(world, prefect_home=settings.home / "prefect") as stack:
            rt = Runtime(world)
            stack.callback(rt.close)
            up("starting a local Prefect server (the longest step: 20-40 s on a first start)")
            api = stack.prefect_server()
            up(f"Prefect server: {api.removesuffix('/api')}")
            stack.flows()
            up("flows served: the phases, the gate watch, change requests, weekly status")
            endpoint = start_endpoint(stack, rt)  # port 0: any free port
            up(f"Slack endpoint: {endpoint.url}")
            with transaction(rt.sessions) as session:
                for engagement in loaded:
                    engagements.register(session, engagement)
            up("registered: " + ", ".join(e.id for e in loaded))
            stack.callback(env_file(settings.home, world, api).unlink, missing_ok=True)
            demo = Demo(rt, slack, cloud, dc, metrics, endpoint.url, api, stack.log_dir)
            demo.stack = stack
            yield demo
