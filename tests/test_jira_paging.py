"""Paging a Jira search while the issues change between pages, and servers that never stop paging.

A milestone's evidence is the set of its issues; a set read across pages that shifted under the
reader can skip an open issue (the milestone shows done) or count one twice. These tests change
the stand-in's issues between pages, through its `after_page` hook, over real HTTP.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import requests

from phasegate.configs.schema import JiraQuery
from phasegate.errors import EvidenceUnavailable
from phasegate.integrations.issue_tracker import JiraTracker
from phasegate.integrations.jira_client import make_jira_client
from phasegate.integrations.jql import after_key, build_jql
from phasegate.sandbox.standins.jira_api import JiraStandin


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, JiraStandin]]:
    started = {deployment: JiraStandin(deployment) for deployment in ("cloud", "datacenter")}
    for server in started.values():
        server.start()
    yield started
    for server in started.values():
        server.stop()


def fresh(server: JiraStandin, page_size: int = 50) -> JiraStandin:
    server.reset()
    server.page_size = page_size
    server.add_project("ACME")
    server.add_project("SECRET")
    return server


@pytest.fixture
def datacenter(servers: dict[str, JiraStandin]) -> JiraStandin:
    return fresh(servers["datacenter"])


@pytest.fixture
def cloud(servers: dict[str, JiraStandin]) -> JiraStandin:
    return fresh(servers["cloud"])


def tracker(standin: JiraStandin, **limits: object) -> JiraTracker:
    client = make_jira_client(standin.url, standin.deployment, email=standin.email, api_token=standin.api_token,
                              pat=standin.pat)
    return JiraTracker(client, standin.deployment, **limits)  # type: ignore[arg-type]


def labelled(standin: JiraStandin, label: str = "m") -> str:
    return build_jql("ACME", JiraQuery(labels=[label]), deployment=standin.deployment)  # type: ignore[arg-type]


def test_key_ranges_compare_numbers_within_one_project(datacenter: JiraStandin) -> None:
    """As real Jira reads `key > "ACME-9"`: ACME-10 comes after ACME-9, other projects never match."""
    for n in range(12):
        datacenter.add_issue("ACME", f"Task {n}")
    datacenter.add_issue("SECRET", "Other client")
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {datacenter.pat}"
        answer = session.post(datacenter.url + "/rest/api/2/search",
                              json={"jql": 'key > "ACME-9" ORDER BY key ASC', "fields": ["summary"]}).json()
        assert [i["key"] for i in answer["issues"]] == ["ACME-10", "ACME-11", "ACME-12"]
        unknown = session.post(datacenter.url + "/rest/api/2/search", json={"jql": 'key > "NOPE-1"'})
        assert unknown.status_code == 400


def test_after_key_narrows_a_built_query_and_refuses_anything_else() -> None:
    jql = build_jql("ACME", JiraQuery(labels=["m"]), deployment="datacenter")
    assert after_key(jql, "ACME-50") == ('(project = "ACME" AND labels = "m") AND key > "ACME-50" ORDER BY key ASC')
    for bad_jql, key in ((jql, 'ACME-1" OR project = "SECRET'), ("project = ACME ORDER BY created", "ACME-1")):
        with pytest.raises(ValueError):
            after_key(bad_jql, key)


def test_an_issue_deleted_between_pages_does_not_hide_an_open_one(datacenter: JiraStandin) -> None:
    """startAt paging skipped ACME-51 after ACME-10 was deleted: an open issue went unseen."""
    keys = [datacenter.add_issue("ACME", f"Task {n}", labels=["m"], done=n != 50) for n in range(120)]
    datacenter.after_page = lambda page: datacenter.delete_issue("ACME-10") if page == 1 else None
    records = tracker(datacenter).search(labelled(datacenter))
    read = [r.key for r in records]
    assert "ACME-51" in read and not next(r for r in records if r.key == "ACME-51").done
    assert read == keys  # ACME-10 was read, as it was, before it was deleted


def test_an_issue_joining_the_set_mid_read_is_never_counted_twice(datacenter: JiraStandin) -> None:
    """Labelling ACME-1 after page one shifted every later issue by one: startAt read ACME-51 twice."""
    datacenter.add_issue("ACME", "Not yet in the milestone")
    for n in range(120):
        datacenter.add_issue("ACME", f"Task {n}", labels=["m"])

    def join(page: int) -> None:
        if page == 1:
            datacenter._store.issues["ACME-1"]["fields"]["labels"] = ["m"]
    datacenter.after_page = join
    read = [r.key for r in tracker(datacenter).search(labelled(datacenter))]
    assert len(read) == len(set(read)) == 120


def test_a_repeated_next_page_token_stops_the_read_as_incomplete(cloud: JiraStandin) -> None:
    for n in range(120):
        cloud.add_issue("ACME", f"Task {n}", labels=["m"])
    cloud.repeat_token = True
    reader = tracker(cloud)
    before = len(cloud.requests)
    with pytest.raises(EvidenceUnavailable, match="incomplete: Jira sent the same nextPageToken twice"):
        reader.search(labelled(cloud))
    assert [p for _, p in cloud.requests[before:] if "/search" in p] == ["/rest/api/2/search/jql"] * 2  # then stop


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_a_read_past_the_page_limit_is_incomplete(servers: dict[str, JiraStandin], deployment: str) -> None:
    standin = fresh(servers[deployment])
    for n in range(120):
        standin.add_issue("ACME", f"Task {n}", labels=["m"])
    with pytest.raises(EvidenceUnavailable, match="incomplete: more than 2 pages"):
        tracker(standin, max_pages=2).search(labelled(standin))
    assert len(tracker(standin, max_pages=3).search(labelled(standin))) == 120


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_a_read_past_the_deadline_is_incomplete(servers: dict[str, JiraStandin], deployment: str) -> None:
    standin = fresh(servers[deployment])
    for n in range(120):
        standin.add_issue("ACME", f"Task {n}", labels=["m"])
    ticks = itertools.count(0, 40)  # every look at the clock is 40 s later
    with pytest.raises(EvidenceUnavailable, match="incomplete: still paging after 60 s"):
        tracker(standin, deadline=60.0, clock=lambda: float(next(ticks))).search(labelled(standin))
