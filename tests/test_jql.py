"""JQL quoting and composition, checked against the stand-in's tokenizer and end to end.

The stand-in's parser reads strings the way Jira does, so "the value comes back as exactly
one string token" is the property that matters: nothing in a value can end its literal.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jira import JIRA

from phasegate.configs.schema import JiraQuery
from phasegate.errors import EvidenceUnavailable
from phasegate.integrations.issue_tracker import JiraTracker
from phasegate.integrations.jira_client import make_jira_client
from phasegate.integrations.jql import build_jql, quote
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.jql_parser import BoolOp, Clause, parse
from phasegate.sandbox.standins.jql_tokens import JqlError, tokenize

DOUBLE_QUOTE_PAYLOAD = 'X" OR project = "SECRET'
BACKSLASH_PAYLOAD = "X\\' OR project = SECRET OR a = 1\\\\"  # X\' OR project = SECRET OR a = 1\\
NASTY = [
    DOUBLE_QUOTE_PAYLOAD, BACKSLASH_PAYLOAD, "\\", "\\\\\"", "'", "''", '"', "a\\nb (literal backslash-n)",
    "line\nbreak", "tab\there", "cr\rhere", "nul\x00bell\x07del\x7f", "sep\u2028para\u2029", "\\u0022 OR 1",
    "select", "AND", "order by key", "(", ")", "=", "~", "emoji 🚀 ünïcødé", "",
]


def test_quote_escapes_the_double_quote_payload() -> None:
    assert quote(DOUBLE_QUOTE_PAYLOAD) == '"X\\" OR project = \\"SECRET"'


def test_quote_escapes_the_backslash_payload() -> None:
    # every backslash doubled, the single quote escaped: the literal cannot be closed early
    assert quote(BACKSLASH_PAYLOAD) == '"X\\\\\\\' OR project = SECRET OR a = 1\\\\\\\\"'


def test_quote_uses_short_escapes_and_unicode_escapes_for_control_characters() -> None:
    assert quote("a\nb\rc\td") == '"a\\nb\\rc\\td"'
    assert quote("\x00\x1f\x7f\x85\u2028") == '"\\u0000\\u001f\\u007f\\u0085\\u2028"'
    assert "\n" not in quote("x\ny") and "\r" not in quote("x\ry")


def test_quote_leaves_reserved_words_and_characters_inside_the_literal() -> None:
    assert quote("select") == '"select"'
    assert quote("a+b*c;d") == '"a+b*c;d"'


@pytest.mark.parametrize("value", NASTY)
def test_quoted_value_is_one_string_token_with_the_same_text(value: str) -> None:
    tokens = tokenize(quote(value))
    assert [(t.kind, t.text) for t in tokens[:-1]] == [("string", value)]
    query = parse(f"project = ACME AND labels = {quote(value)} ORDER BY key ASC")
    assert query.where == BoolOp("and", (
        Clause("project", "=", ("ACME",), "project"), Clause("labels", "=", (value,), "labels")))


def test_build_jql_on_cloud_uses_parent_for_the_epic() -> None:
    query = JiraQuery(epic="ACME-1", labels=["poc", "data"], fix_version="1.0", component="API")
    assert build_jql("ACME", query, deployment="cloud") == (
        'project = "ACME" AND parent = "ACME-1" AND labels = "poc" AND labels = "data" '
        'AND fixVersion = "1.0" AND component = "API" ORDER BY key ASC')


def test_build_jql_on_datacenter_uses_epic_link() -> None:
    jql = build_jql("ACME", JiraQuery(epic="ACME-1"), deployment="datacenter")
    assert jql == 'project = "ACME" AND "Epic Link" = "ACME-1" ORDER BY key ASC'


def test_build_jql_quotes_every_value_including_the_project_and_extras() -> None:
    jql = build_jql("ACME", JiraQuery(labels=[DOUBLE_QUOTE_PAYLOAD]), deployment="cloud",
                    extra={"status": "Done", "issuetype": ["Task", 'Bug" OR project = "SECRET']})
    query = parse(jql)
    assert isinstance(query.where, BoolOp) and query.where.op == "and"
    assert [(c.field, c.op, c.values) for c in query.where.children if isinstance(c, Clause)] == [
        ("project", "=", ("ACME",)), ("labels", "=", (DOUBLE_QUOTE_PAYLOAD,)), ("status", "=", ("Done",)),
        ("issuetype", "in", ("Task", 'Bug" OR project = "SECRET')),
    ]
    assert query.order_by == (("key", False),)


@pytest.mark.parametrize("extra", [{'labels = "x" OR project': "SECRET"}, {"assignee": "me"}, {"status": []}])
def test_build_jql_refuses_unknown_extra_fields_and_empty_lists(extra: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_jql("ACME", JiraQuery(), deployment="cloud", extra=extra)  # type: ignore[arg-type]


def test_build_jql_refuses_an_unknown_deployment() -> None:
    with pytest.raises(ValueError, match="deployment"):
        build_jql("ACME", JiraQuery(), deployment="server")


@pytest.mark.parametrize(("jql", "message"), [
    ("labels = select", "'select' is a reserved JQL word"),
    ("labels = join", "'join' is a reserved JQL word"),
    ('labels = "open', "has not been completed"),
    ('labels = "a\\qb"', "illegal JQL escape sequence"),
    ("labels = a+b", "reserved JQL character"),
    ("nosuchfield = x", "Field 'nosuchfield' does not exist"),
    ("project = ACME AND (labels = x", "Expecting ')'"),
    ("project = ACME AND", "Expecting a field name but got the end of the query"),
    ("summary = x", "The operator '=' is not supported by the 'summary' field"),
    ("project = ACME labels = a", "Expecting either 'OR' or 'AND'"),
])
def test_parser_refuses_what_jira_refuses(jql: str, message: str) -> None:
    with pytest.raises(JqlError) as caught:
        parse(jql)
    assert message in caught.value.messages[0]


def test_parser_reads_escapes_lists_and_order_by() -> None:
    query = parse("project IN (ACME, 'SECRET') AND labels NOT IN (\"a\\u0041\", 'it\\'s') "
                  "AND summary ~ \"tab\\there\" ORDER BY created DESC, key")
    assert isinstance(query.where, BoolOp)
    assert [c.values for c in query.where.children if isinstance(c, Clause)] == [
        ("ACME", "SECRET"), ("aA", "it's"), ("tab\there",)]
    assert query.order_by == (("created", True), ("key", False))


# -- end to end: the real client, real HTTP, a stand-in holding two clients' projects --------------

@pytest.fixture(scope="module", params=["cloud", "datacenter"])
def two_projects(request: pytest.FixtureRequest) -> Iterator[tuple[JiraStandin, JiraTracker, JIRA]]:
    standin = JiraStandin(request.param)
    standin.add_project("ACME")
    standin.add_project("SECRET")
    standin.add_issue("ACME", "Acme work", labels=["poc"])
    standin.add_issue("ACME", "Payload-labelled", labels=[DOUBLE_QUOTE_PAYLOAD, BACKSLASH_PAYLOAD, "select", "a\tb"])
    for n in range(3):
        standin.add_issue("SECRET", f"Secret {n}", labels=["poc", "X", DOUBLE_QUOTE_PAYLOAD])
    standin.start()
    client = make_jira_client(standin.url, request.param, email=standin.email, api_token=standin.api_token,
                              pat=standin.pat)
    try:
        yield standin, JiraTracker(client, request.param), client
    finally:
        client.close()
        standin.stop()


@pytest.mark.parametrize("payload", [DOUBLE_QUOTE_PAYLOAD, BACKSLASH_PAYLOAD, "select", "a\tb"])
def test_injection_payload_label_matches_only_the_acme_issue(
        two_projects: tuple[JiraStandin, JiraTracker, JIRA], payload: str) -> None:
    standin, tracker, _ = two_projects
    found = tracker.search(build_jql("ACME", JiraQuery(labels=[payload]), deployment=standin.deployment))
    assert [(record.key, record.summary) for record in found] == [("ACME-2", "Payload-labelled")]


def test_injection_payload_without_a_match_returns_nothing_not_secret(
        two_projects: tuple[JiraStandin, JiraTracker, JIRA]) -> None:
    standin, tracker, _ = two_projects
    found = tracker.search(build_jql("ACME", JiraQuery(labels=["X", DOUBLE_QUOTE_PAYLOAD]),
                                     deployment=standin.deployment))
    assert found == []


def test_pasting_the_payload_would_leak_secret_so_the_check_above_means_something(
        two_projects: tuple[JiraStandin, JiraTracker, JIRA]) -> None:
    standin, tracker, _ = two_projects
    pasted = f'project = "ACME" AND labels = "{DOUBLE_QUOTE_PAYLOAD}" ORDER BY key ASC'
    assert {record.key.split("-")[0] for record in tracker.search(pasted)} == {"SECRET"}


def test_unquoted_reserved_word_is_a_jira_400(two_projects: tuple[JiraStandin, JiraTracker, JIRA]) -> None:
    _, tracker, _ = two_projects
    with pytest.raises(EvidenceUnavailable, match="HTTP 400: Error in the JQL Query: 'select' is a reserved"):
        tracker.search("project = ACME AND labels = select")
