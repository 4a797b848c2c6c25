"""JiraTracker and make_jira_client against the stand-in: the real `jira` client, real HTTP.

Every test runs for Jira Cloud and Data Center, because they page, authenticate and fail
differently and phasegate must read evidence from both.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from jira import JIRA

from phasegate.configs.schema import JiraQuery
from phasegate.errors import EvidenceUnavailable, ServiceUnavailable
from phasegate.integrations.issue_tracker import JiraTracker
from phasegate.integrations.jira_client import make_jira_client
from phasegate.integrations.jql import build_jql
from phasegate.ops.servers import free_port
from phasegate.sandbox.standins.jira_api import JiraStandin

DEPLOYMENTS = ["cloud", "datacenter"]


@pytest.fixture(scope="module")
def standins() -> Iterator[dict[str, JiraStandin]]:
    """One running stand-in per deployment for the module; each test resets it (a start/stop costs 0.2 s)."""
    servers = {deployment: JiraStandin(deployment) for deployment in ("cloud", "datacenter")}
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


def connect(standin: JiraStandin, **options: float) -> JIRA:
    return make_jira_client(standin.url, standin.deployment, email=standin.email, api_token=standin.api_token,
                            pat=standin.pat, **options)  # type: ignore[arg-type]


@pytest.fixture(params=DEPLOYMENTS)
def standin(request: pytest.FixtureRequest, standins: dict[str, JiraStandin]) -> JiraStandin:
    server = standins[request.param]
    server.reset()
    server.page_size = 50
    server.add_project("ACME")
    server.add_project("SECRET")
    return server


@pytest.fixture
def jira(standin: JiraStandin) -> Iterator[tuple[JiraStandin, JiraTracker]]:
    client = connect(standin)
    try:
        yield standin, JiraTracker(client, standin.deployment)
    finally:
        client.close()


def search_calls(standin: JiraStandin, since: int = 0) -> list[str]:
    return [path for _, path in standin.requests[since:] if "/search" in path]


def acme(standin: JiraStandin, **query: object) -> str:
    return build_jql("ACME", JiraQuery(**query), deployment=standin.deployment)  # type: ignore[arg-type]


@pytest.mark.parametrize(("page_size", "pages"), [(50, 5), (100, 3)])
def test_search_reads_every_page_with_one_request_per_page(
        jira: tuple[JiraStandin, JiraTracker], page_size: int, pages: int) -> None:
    standin, tracker = jira
    standin.page_size = page_size
    keys = [standin.add_issue("ACME", f"Task {n}", labels=["m"]) for n in range(230)]
    standin.add_issue("SECRET", "Not ours", labels=["m"])
    before = len(standin.requests)
    records = tracker.search(acme(standin, labels=["m"]))
    assert [r.key for r in records] == keys
    endpoint = "/rest/api/2/search/jql" if standin.deployment == "cloud" else "/rest/api/2/search"
    assert search_calls(standin, before) == [endpoint] * pages  # Cloud never calls /search, DC never /search/jql


def test_search_builds_records_from_jira_fields(jira: tuple[JiraStandin, JiraTracker]) -> None:
    standin, tracker = jira
    standin.add_issue("ACME", "Train model", labels=["poc"], done=True, story_points=5, fix_versions=["1.0"])
    standin.add_issue("ACME", "Evaluate", labels=["poc"], status="In Progress")
    done, doing = tracker.search(acme(standin, labels=["poc"], fix_version=None))
    assert (done.summary, done.status, done.done, done.story_points, done.labels) == (
        "Train model", "Done", True, 5.0, ("poc",))
    assert done.resolved_at is not None and done.created_at is not None
    assert done.resolved_at.tzinfo is not None
    assert (doing.status, doing.done, doing.resolved_at, doing.story_points) == ("In Progress", False, None, None)
    assert done.fields["fixVersions"] == [{"name": "1.0"}]


def test_epic_clause_matches_the_children_on_both_deployments(jira: tuple[JiraStandin, JiraTracker]) -> None:
    standin, tracker = jira
    epic = standin.add_issue("ACME", "Epic", issuetype="Epic")
    child = standin.add_issue("ACME", "Child", epic=epic)
    standin.add_issue("ACME", "Elsewhere")
    assert [r.key for r in tracker.search(acme(standin, epic=epic))] == [child]


def test_ensure_issue_twice_creates_one_issue(jira: tuple[JiraStandin, JiraTracker]) -> None:
    standin, tracker = jira
    standin.add_issue("SECRET", "Same marker elsewhere", labels=["phasegate-acme-g1"])
    first = tracker.ensure_issue("ACME", "G1 decision", "phasegate-acme-g1", description="Gate 1")
    second = tracker.ensure_issue("ACME", "G1 decision (again)", "phasegate-acme-g1")
    assert first.key == second.key and first.key.startswith("ACME-")
    assert second.summary == "G1 decision" and second.labels == ("phasegate-acme-g1",)
    assert [m for m, path in standin.requests if path.endswith("/issue")] == ["POST"]
    assert standin.issue(first.key)["fields"]["description"] == "Gate 1"


def test_an_issue_stored_under_a_chosen_key_is_read_and_numbering_steps_over_it(
        jira: tuple[JiraStandin, JiraTracker]) -> None:
    """What the sandbox seeds for a milestone naming `jira_issue`: the issue exists under that key."""
    standin, tracker = jira
    named = standin.add_issue("ACME", "PoC report", key="acme-2")
    assert (named, tracker.get("ACME-2").summary) == ("ACME-2", "PoC report")
    assert [standin.add_issue("ACME", f"Task {n}") for n in range(2)] == ["ACME-1", "ACME-3"]
    for key in ("ACME-2", "SECRET-9"):  # taken, or in another project
        with pytest.raises(KeyError, match=key):
            standin.add_issue("ACME", "Clash", key=key)


def test_get_and_field_value(jira: tuple[JiraStandin, JiraTracker]) -> None:
    standin, tracker = jira
    key = standin.add_issue("ACME", "Metric holder", story_points=8, fields={"customfield_10050": 0.91})
    assert tracker.get(key).story_points == 8.0
    assert tracker.field_value(key, "customfield_10050") == 0.91
    with pytest.raises(EvidenceUnavailable, match=f"issue {key} has no field 'customfield_99999'"):
        tracker.field_value(key, "customfield_99999")
    with pytest.raises(EvidenceUnavailable, match="reading issue ACME-999 failed: not found"):
        tracker.get("ACME-999")


def test_rate_limit_is_retried_after_the_servers_wait(jira: tuple[JiraStandin, JiraTracker]) -> None:
    standin, tracker = jira
    standin.add_issue("ACME", "Task", labels=["m"])
    standin.fail_next("/search", status=429, retry_after=1)
    before, started = len(standin.requests), time.monotonic()
    assert len(tracker.search(acme(standin, labels=["m"]))) == 1
    assert time.monotonic() - started >= 1.0  # exactly Retry-After, never less
    assert len(search_calls(standin, before)) == 2


def test_503_with_retry_after_is_retried_too(jira: tuple[JiraStandin, JiraTracker]) -> None:
    standin, tracker = jira
    standin.add_issue("ACME", "Task", labels=["m"])
    standin.fail_next("/search", status=503, retry_after=0, times=2)
    before = len(standin.requests)
    assert len(tracker.search(acme(standin, labels=["m"]))) == 1
    assert len(search_calls(standin, before)) == 3  # max_retries=2


def test_retries_are_capped(jira: tuple[JiraStandin, JiraTracker]) -> None:
    standin, tracker = jira
    standin.fail_next("/search", status=429, retry_after=0, times=5)
    before = len(standin.requests)
    with pytest.raises(ServiceUnavailable, match=r"searching issues failed: rate limited \(HTTP 429"):
        tracker.search(acme(standin))
    assert len(search_calls(standin, before)) == 3


def test_a_retry_after_longer_than_max_wait_fails_at_once(jira: tuple[JiraStandin, JiraTracker]) -> None:
    standin, tracker = jira
    standin.fail_next("/search", status=429, retry_after=3600)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match=r"rate limited \(HTTP 429: .*; asked to wait 3600 s\)"):
        tracker.search(acme(standin))
    assert time.monotonic() - started < 1.0


def test_outage_is_a_one_line_service_error(jira: tuple[JiraStandin, JiraTracker]) -> None:
    standin, tracker = jira
    standin.outage = True
    before = len(standin.requests)
    with pytest.raises(ServiceUnavailable) as caught:
        tracker.search(acme(standin))
    message = str(caught.value)
    assert message == f"Jira at {standin.url}: searching issues failed: server error (HTTP 503: Service Unavailable)"
    assert len(standin.requests) - before == 1  # a 503 without Retry-After is not retried
    with pytest.raises(ServiceUnavailable, match="connecting failed: server error"):
        connect(standin)


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_unreachable_site_fails_fast(deployment: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match=f"Jira at {url}: connecting failed: cannot connect"):
        make_jira_client(url, deployment, email="pm@example.com", api_token="t", pat="p")
    assert time.monotonic() - started < 2.0


def test_slow_answers_time_out(standin: JiraStandin) -> None:
    client = connect(standin, timeout=0.3)
    standin.latency = 0.6
    try:
        with pytest.raises(ServiceUnavailable, match="searching issues failed: no answer within 0.3 s"):
            JiraTracker(client, standin.deployment).search(acme(standin))
    finally:
        client.close()


def test_wrong_or_missing_credentials_are_named(standin: JiraStandin) -> None:
    hint = "API token" if standin.deployment == "cloud" else "personal access token"
    with pytest.raises(ServiceUnavailable, match=rf"credentials refused \(HTTP 401\); check .*{hint}"):
        make_jira_client(standin.url, standin.deployment, email=standin.email, api_token="wrong", pat="wrong")
    with pytest.raises(ServiceUnavailable, match=f"needs .*{hint}"):
        make_jira_client(standin.url, standin.deployment, email=None, api_token=None, pat=None)


def test_unbounded_jql_is_refused_on_cloud_only(jira: tuple[JiraStandin, JiraTracker]) -> None:
    standin, tracker = jira
    standin.add_issue("SECRET", "Other client", labels=["m"])
    if standin.deployment == "cloud":
        with pytest.raises(EvidenceUnavailable, match="HTTP 400: Unbounded JQL queries are not allowed"):
            tracker.search('labels = "m" ORDER BY key ASC')
    else:
        assert [r.key for r in tracker.search('labels = "m" ORDER BY key ASC')] == ["SECRET-1"]


def test_unknown_project_is_jiras_400(jira: tuple[JiraStandin, JiraTracker]) -> None:
    standin, tracker = jira
    with pytest.raises(EvidenceUnavailable, match="The value 'NOPE' does not exist for the field 'project'"):
        tracker.search(build_jql("NOPE", JiraQuery(), deployment=standin.deployment))


def test_removed_and_missing_search_endpoints(jira: tuple[JiraStandin, JiraTracker]) -> None:
    standin, _ = jira
    session = requests.Session()
    if standin.deployment == "cloud":
        session.auth = (standin.email, standin.api_token)
        assert session.get(standin.url + "/rest/api/2/search", params={"jql": "project = ACME"}).status_code == 410
        assert session.post(standin.url + "/rest/api/3/search", json={"jql": "project = ACME"}).status_code == 410
    else:
        session.headers["Authorization"] = f"Bearer {standin.pat}"
        assert session.get(standin.url + "/rest/api/2/search/jql", params={"jql": "project = ACME"}).status_code == 404
        assert session.get(standin.url + "/rest/api/3/search", params={"jql": "project = ACME"}).status_code == 404
    session.close()


def test_cloud_search_jql_pages_by_token_and_returns_ids_without_fields(standins: dict[str, JiraStandin]) -> None:
    standin = standins["cloud"]
    standin.reset()
    standin.page_size = 2
    standin.add_project("ACME")
    for n in range(3):
        standin.add_issue("ACME", f"Task {n}")
    with requests.Session() as session:
        session.auth = (standin.email, standin.api_token)
        url = standin.url + "/rest/api/3/search/jql"
        first = session.get(url, params={"jql": "project = ACME", "maxResults": 100}).json()
        assert first["issues"] == [{"id": "10001"}, {"id": "10002"}] and first["isLast"] is False
        assert "total" not in first and "startAt" not in first
        last = session.post(url, json={"jql": "project = ACME", "nextPageToken": first["nextPageToken"],
                                       "fields": ["summary"]}).json()
        assert [(i["key"], i["fields"]) for i in last["issues"]] == [("ACME-3", {"summary": "Task 2"})]
        assert last["isLast"] is True and "nextPageToken" not in last
        token = first["nextPageToken"]  # bound to its query: reusing it for another is refused
        wrong = session.post(url, json={"jql": "project = ACME AND labels = x", "nextPageToken": token})
        assert wrong.status_code == 400


def test_transitions_edits_and_links_through_the_real_client(jira: tuple[JiraStandin, JiraTracker]) -> None:
    standin, tracker = jira
    client = tracker.client
    a, b = standin.add_issue("ACME", "Deliver"), standin.add_issue("ACME", "Review")
    assert [t["name"] for t in client.transitions(a)] == ["To Do", "In Progress", "Done"]
    client.transition_issue(a, "Done")
    record = tracker.get(a)
    assert record.done and record.status == "Done" and record.resolved_at is not None
    issue = client.issue(b)
    issue.update(fields={"summary": "Review G1"}, labels=[{"add": "gate"}])
    assert (tracker.get(b).summary, tracker.get(b).labels) == ("Review G1", ("gate",))
    client.create_issue_link("Relates", a, b)
    assert standin.issue(a)["fields"]["issuelinks"][0]["outwardIssue"] == {"key": b}


def test_resolutions_sub_tasks_and_moves_read_as_jira_answers(jira: tuple[JiraStandin, JiraTracker]) -> None:
    """What the stand-in answers as Jira does: a resolution beside the status, a parent's `subtasks`,
    and an issue moved to another project under a new key that its old key still finds."""
    standin, tracker = jira
    dropped = standin.add_issue("ACME", "Second model", done=True, resolution="Won't Do")
    fields = tracker.client.issue(dropped).raw["fields"]
    assert fields["resolution"] == {"name": "Won't Do"} and fields["status"]["statusCategory"]["key"] == "done"
    standin.set_status(dropped, "In Progress", done=False)
    assert tracker.client.issue(dropped).raw["fields"]["resolution"] is None

    parent = standin.add_issue("ACME", "Deliver the report")
    sub = standin.add_issue("ACME", "Write it", issuetype="Sub-task", epic=parent)
    read = tracker.client.issue(parent).raw["fields"]["subtasks"]
    assert [(s["key"], s["fields"]["status"]["name"]) for s in read] == [(sub, "To Do")]
    assert tracker.client.issue(sub).raw["fields"]["issuetype"]["subtask"] is True

    moved = standin.move_issue(parent, "SECRET")
    assert moved == "SECRET-1"
    again = tracker.client.issue(parent).raw  # the old key finds it: 200, its new key, no redirect
    assert (again["key"], again["fields"]["project"]["key"]) == (moved, "SECRET")
    assert [s["key"] for s in again["fields"]["subtasks"]] == ["SECRET-2"]  # its sub-task moved with it
    assert [r.key for r in tracker.search(f'key = "{parent}" ORDER BY key ASC')] == [moved]
    assert [r.key for r in tracker.search(acme(standin))] == [dropped]
