"""The sandbox stays on this machine. Its Slack endpoint accepts anything signed with the demo's
secret, which is published in this repository, and its page signs a click for any user id: so the
endpoint listens on loopback whatever PHASEGATE_SLACK_HOST says, and the page answers only requests
whose Host and Origin name a loopback address on its own port (no DNS rebinding, no cross-site
request). Bad input to the page is a 4xx, never a 500.

Over real HTTP: the page is served as `phasegate sandbox` serves it, over a World on the test
ledger and stand-ins; the endpoint it forwards clicks to is a small recorder (the Slack endpoint
itself is tested in test_slack_endpoint.py and, behind the page, in test_sandbox_page.py).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import migrated_sqlite, settings_for
from fastapi import FastAPI, Request
from helpers import register
from prefect_seed import seeded

from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.configs.schema import Engagement
from phasegate.ledger import engagements
from phasegate.ledger.db import transaction
from phasegate.ops.servers import ServerHandle, serve_in_thread
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.page import World, create_page
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.metrics_api import MetricsStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.world import SECRET, local_world
from phasegate.settings import Settings
from phasegate.slack.signature import sign

CLICK = {"user": "U0SPONSOR1", "channel": "C0ACMECHURN", "ts": "1.000001", "action_id": "gate_go",
         "block_id": "gate:1", "value": "1"}


@dataclass
class Recorder:
    """What reached the endpoint the page forwards clicks to."""

    bodies: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, str]]:
    seen = Recorder()
    app = FastAPI()

    @app.post("/slack/interactions")
    async def interactions(request: Request) -> dict[str, str]:
        seen.bodies.append((dict(request.headers), await request.body()))
        return {}

    handle = serve_in_thread(app)
    yield seen, handle.url
    handle.stop()


@pytest.fixture
def rt(slack: SlackStandin, jira: JiraStandin, metrics: MetricsStandin, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime on a SQLite ledger of its own: the page does the same on either backend."""
    runtime = Runtime(settings_for(migrated_sqlite(tmp_path / "ledger.db"), slack, jira, metrics, tmp_path))
    yield runtime
    runtime.close()


@pytest.fixture
def page(rt: Runtime, slack: SlackStandin, jira: JiraStandin, metrics: MetricsStandin, acme: Engagement,
         recorder: tuple[Recorder, str]) -> Iterator[ServerHandle]:
    """The page over acme (metrics read over HTTP) and globex (one metric typed by hand)."""
    register(rt, acme)
    register(rt, load_engagement(ENGAGEMENTS_DIR / "globex-forecast.yaml"))
    world = World(rt, slack, {"acme-churn": jira, "globex-forecast": jira}, metrics, recorder[1], SECRET)
    handle = serve_in_thread(create_page(world), "127.0.0.1", 0)
    yield handle
    handle.stop()


def call(page: ServerHandle, method: str, path: str, *, host: str | None = None, origin: str | None = None,
         headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    sent = {"Host": f"127.0.0.1:{page.port}" if host is None else host} | (headers or {})
    if origin is not None:
        sent["Origin"] = origin
    return httpx.request(method, f"{page.url}{path}", headers=sent, timeout=10, **kwargs)


# --- Host and Origin -----------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["attacker.example:{port}", "attacker.example", "127.0.0.1:{other}",
                                  "localhost:{other}", "127.0.0.1.attacker.example:{port}", "10.0.0.7:{port}", ""],
                         ids=["rebound-name", "no-port", "other-port", "localhost-other-port", "lookalike", "lan-ip",
                              "empty"])
def test_a_host_other_than_loopback_on_the_page_port_is_refused(page: ServerHandle, recorder: tuple[Recorder, str],
                                                                 host: str) -> None:
    """DNS rebinding: a page at attacker.example whose name now resolves to 127.0.0.1 is same-origin
    with the sandbox in the browser's eyes; only the Host header gives it away."""
    named = host.format(port=page.port, other=page.port + 1)
    for method, path, body in (("GET", "/api/state", None), ("POST", "/api/action", CLICK), ("GET", "/", None)):
        answer = call(page, method, path, host=named, json=body)
        assert answer.status_code == 403, (method, path, answer.text)
        assert "loopback" in answer.json()["detail"]
    assert recorder[0].bodies == []  # no click was signed and sent


@pytest.mark.parametrize("origin", ["http://attacker.example", "http://attacker.example:{port}", "null",
                                    "https://127.0.0.1:{port}", "http://127.0.0.1:{other}", "http://localhost",
                                    "file://"],
                         ids=["cross-site", "rebound-origin", "null", "https", "other-port", "default-port", "file"])
def test_a_browser_request_from_another_origin_is_refused(page: ServerHandle, recorder: tuple[Recorder, str],
                                                          origin: str) -> None:
    """A cross-site POST carries the attacker's Origin even with a correct Host."""
    named = origin.format(port=page.port, other=page.port + 1)
    answer = call(page, "POST", "/api/action", origin=named, json=CLICK)
    assert answer.status_code == 403, answer.text
    assert call(page, "GET", "/api/state", origin=named).status_code == 403
    assert recorder[0].bodies == []


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "LOCALHOST", "[::1]"])
def test_the_page_answers_itself_under_a_loopback_name(page: ServerHandle, recorder: tuple[Recorder, str],
                                                       name: str) -> None:
    """What the browser sends from the page itself; clicks are forwarded signed with the secret."""
    own = f"{name}:{page.port}"
    assert call(page, "GET", "/", host=own).status_code == 200
    state = call(page, "GET", "/api/state", host=own, origin=f"http://{own}")
    assert state.status_code == 200 and {e["id"] for e in state.json()["engagements"]} == {"acme-churn",
                                                                                          "globex-forecast"}
    answer = call(page, "POST", "/api/action", host=own, origin=f"http://{own}", json=CLICK)
    assert answer.status_code == 200 and answer.json()["status"] == 200
    [(headers, body)] = recorder[0].bodies
    assert headers["x-slack-signature"] == sign(SECRET, headers["x-slack-request-timestamp"], body)


def test_a_chart_shared_in_a_reports_thread_is_shown_under_it(rt: Runtime, page: ServerHandle, tmp_path: Path) -> None:
    """The weekly report's chart, uploaded in its thread as phasegate does, is in the page's state
    under that message and served as the PNG uploaded; an id never shared is not found."""
    chart = tmp_path / "burnup.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\n chart bytes")
    ts = rt.chat.post("C0ACMECHURN", "Weekly status: ACME churn prediction")
    rt.chat.upload("C0ACMECHURN", chart, "ACME churn prediction burn-up, 2026-W49", thread_ts=ts)
    rt.chat.post("C0ACMECHURN", "a later message")
    state = call(page, "GET", "/api/state").json()
    [acme] = [e for e in state["engagements"] if e["id"] == "acme-churn"]
    shown = {m["ts"]: m["files"] for m in acme["messages"]}
    [shared] = shown.pop(ts)
    assert shared["title"] == "ACME churn prediction burn-up, 2026-W49" and list(shown.values()) == [[]]
    served = call(page, "GET", shared["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content == chart.read_bytes()
    assert call(page, "GET", "/api/files/F9999999999").status_code == 404


# --- bad input ------------------------------------------------------------------------------------

def test_a_view_index_out_of_range_is_not_found(page: ServerHandle) -> None:
    assert call(page, "GET", "/api/views/-1").status_code == 404
    assert call(page, "GET", "/api/views/0").json() == {"view": None}  # not opened yet: the page polls for it
    answer = call(page, "POST", "/api/submit", json={"user": "U0SPONSOR1", "view": 0, "values": {}})
    assert answer.status_code == 404 and answer.json()["detail"] == "no view 0 has been opened"


@pytest.mark.parametrize(("body", "status", "detail"), [
    ({"engagement": "nope", "issue": "ACME-1", "done": True}, 404, "no engagement 'nope' in the sandbox"),
    ({"engagement": "acme-churn", "issue": "ACME-999", "done": True}, 404, "acme-churn has no Jira issue ACME-999"),
], ids=["unknown-engagement", "unknown-issue"])
def test_jira_changes_for_what_does_not_exist_are_not_found(page: ServerHandle, body: dict[str, Any], status: int,
                                                            detail: str) -> None:
    answer = call(page, "POST", "/api/jira", json=body)
    assert (answer.status_code, answer.json()["detail"]) == (status, detail)


@pytest.mark.parametrize("metric", [("acme-churn", "f1"), ("globex-forecast", "data_quality_score")],
                         ids=["read-over-http", "typed-by-hand"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_metric_that_is_not_a_finite_number_is_refused(rt: Runtime, page: ServerHandle, metrics: MetricsStandin,
                                                         metric: tuple[str, str], value: str) -> None:
    engagement, name = metric
    body = f'{{"engagement": "{engagement}", "metric": "{name}", "value": {value}}}'
    answer = call(page, "POST", "/api/metric", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    with transaction(rt.sessions) as session:
        assert engagements.submitted_metrics(session, engagement) == {}


def test_a_typed_metric_the_ledger_refuses_is_a_4xx_with_its_reason(page: ServerHandle) -> None:
    answer = call(page, "POST", "/api/metric", json={"engagement": "globex-forecast", "metric": "data_quality_score",
                                                     "value": 93})
    assert answer.status_code == 422
    assert "outside data_quality_score's declared range [0, 1]" in answer.json()["detail"]


@pytest.mark.parametrize(("body", "status"), [({"engagement": "nope", "action": "start"}, 404),
                                              ({"engagement": "nope", "action": "review"}, 404),
                                              ({"engagement": "acme-churn", "action": "explode"}, 422)],
                         ids=["start-unknown-engagement", "review-unknown-engagement", "unknown-action"])
def test_phase_requests_for_what_does_not_exist_are_4xx(page: ServerHandle, body: dict[str, str], status: int) -> None:
    assert call(page, "POST", "/api/phase", json=body).status_code == status


# --- the Slack endpoint -----------------------------------------------------------------------------

def outside_address() -> str:
    """An address of this machine that is not loopback (the one its default route leaves from)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, only a route is chosen
        except OSError:
            pytest.skip("this machine has no route off loopback")
        address = str(probe.getsockname()[0])
    if address.startswith("127."):
        pytest.skip("this machine has no address off loopback")
    return address


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_sandbox_endpoint_listens_on_loopback_whatever_the_setting_says(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """PHASEGATE_SLACK_HOST=0.0.0.0 made the sandbox's endpoint, which trusts the published secret,
    reachable from the network: anyone there could sign a GO."""
    outside = outside_address()
    with local_world(seeded(Settings(home=tmp_path / "home", database_url="", slack_host="0.0.0.0")), []) as world:
        said = capsys.readouterr().out
        port = httpx.URL(world.endpoint).port
        assert world.endpoint.startswith("http://127.0.0.1:"), world.endpoint
        assert httpx.get(f"{world.endpoint}/healthz", timeout=10).status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{outside}:{port}/healthz", timeout=10)
    assert ("PHASEGATE_SLACK_HOST=0.0.0.0 is not used here: the sandbox's Slack endpoint listens on 127.0.0.1 only "
            "(it takes any request signed with the demo's published secret)") in " ".join(said.split())
