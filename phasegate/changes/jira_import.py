"""Jira issues filed as change requests: the third way to file one, next to the CLI and Slack.

An engagement file may name a label and/or an issue type (`jira.change_requests`). When evidence
is collected for a gate or the weekly status is collected, the matching issues of the project are
imported: each becomes a change request with the issue's summary as title, its description as
rationale and its original estimate as effort, assessed, and put to the approvers by its own
flow. The reporter is the requester: the person of the engagement file with that Jira account or
email, else an outside requester (`phasegate.rules.jira_requests`).

The request is filed once, keyed by the issue's id (which, unlike its key, survives a move), with
what the issue said frozen under a digest. Every later import compares the issue with it:

- edited while the request is open: a new revision, assessed again, its flow woken to ask again
  (answers to the revision before do not count);
- edited after the decision: reported (once per edit), never applied;
- deleted, or moved to another project: reported once; moved back, under its new key, it is the
  same request, never a second one.

What is reported is also posted in the engagement's channel (threaded under the request's prompt)
when a Slack client is given, and recorded in the audit chain (`phasegate.ledger.jira_requests`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.orm import Session, sessionmaker

from phasegate.configs.schema import Engagement
from phasegate.errors import EXPECTED, GateClosed
from phasegate.integrations.jql import IssueFilter, build_jql
from phasegate.ledger import change_requests as crs
from phasegate.ledger import jira_requests
from phasegate.ledger.db import transaction
from phasegate.ledger.engagements import get
from phasegate.rules import jira_requests as jira_rules
from phasegate.states import EngagementState

if TYPE_CHECKING:  # the jira client is a heavy import; what is read here comes from a tracker passed in
    from phasegate.integrations.issue_tracker import IssueRecord
    from phasegate.integrations.slack_chat import SlackChat

FIELDS = ("summary", "description", "reporter", "timeoriginalestimate", "project")


class Searcher(Protocol):
    def search(self, jql: str, fields: Sequence[str] = ...) -> Sequence[IssueRecord]: ...

    def lookup(self, key_or_id: str, fields: Sequence[str] = ...) -> IssueRecord | None: ...


@dataclass
class Imported:
    filed: list[tuple[str, int]] = field(default_factory=list)  # (issue key, CR number), new ones only
    revised: list[tuple[str, int]] = field(default_factory=list)  # (issue key, CR number): asked again
    reported: list[str] = field(default_factory=list)  # what changed under a request, said once each
    problems: list[str] = field(default_factory=list)  # issues that could not be filed or followed, and why


def queries(engagement: Engagement) -> list[str]:
    """One JQL search per configured marker (label, issue type): issues with either are imported."""
    config, site = engagement.jira.change_requests, engagement.jira
    if config is None:
        return []
    found = []
    if config.label is not None:
        found.append(build_jql(site.project, IssueFilter(labels=(config.label,)), deployment=site.deployment))
    if config.issue_type is not None:
        found.append(build_jql(site.project, IssueFilter(), deployment=site.deployment,
                               extra={"issuetype": config.issue_type}))
    return found


def content_of(issue: IssueRecord, engagement: Engagement) -> jira_rules.Content:
    """What the issue asks for: summary, description and original estimate (in the site's days)."""
    config = engagement.jira.change_requests
    return jira_rules.content_of(issue.summary, issue.fields.get("description"),
                                 issue.fields.get("timeoriginalestimate"), key=issue.key,
                                 hours_per_day=config.day_hours if config else 8.0)


def reporter_of(issue: IssueRecord, engagement: Engagement) -> str:
    """The person of the engagement who filed the issue, or `jira:<name>` (phasegate.rules.jira_requests)."""
    reporter = issue.fields.get("reporter")
    return jira_rules.requester(engagement, reporter if isinstance(reporter, Mapping) else None)


class _Import:
    """One import run: the ledger read once, Jira searched once, each issue then handled on its own
    (a problem with one is noted and the others go on)."""

    def __init__(self, sessions: sessionmaker[Session], engagement: Engagement, tracker: Searcher,
                 chat: SlackChat | None) -> None:
        self.sessions, self.engagement, self.tracker, self.chat = sessions, engagement, tracker, chat
        self.result = Imported()

    def run(self) -> Imported:
        wanted = queries(self.engagement)
        if not wanted:
            return self.result
        with transaction(self.sessions) as session:
            row = get(session, self.engagement.id)
            if row.state is not EngagementState.ACTIVE or row.current_phase is None:
                return self.result
            known = jira_requests.known(session, self.engagement.id)
        issues: dict[str, IssueRecord] = {}
        for jql in wanted:
            try:
                issues.update({i.key: i for i in self.tracker.search(jql, FIELDS)})
            except EXPECTED as exc:
                self.result.problems.append(f"change requests from Jira not imported: {exc}")
                return self.result
        by_id = {k.issue_id: k for k in known if k.issue_id}
        by_key = {k.key: k for k in known if not k.issue_id}  # filed before ids were kept
        followed: set[int] = set()
        for key in sorted(issues, key=lambda k: (len(k), k)):
            issue = issues[key]
            mine = by_id.get(issue.issue_id) or by_key.get(key)
            try:
                if mine is None:
                    self.file(issue)
                else:
                    followed.add(mine.cr_id)
                    self.follow(mine, issue)
            except EXPECTED as exc:
                self.result.problems.append(f"{key} not filed or followed as a change request: {exc}")
        for mine in known:
            if mine.cr_id not in followed and not mine.gone:
                try:
                    self.missing(mine)
                except EXPECTED as exc:
                    self.result.problems.append(f"{mine.key} ({mine.name}) could not be followed in Jira: {exc}")
        return self.result

    def file(self, issue: IssueRecord) -> None:
        with transaction(self.sessions) as session:
            cr, created = jira_requests.file(session, self.engagement.id, content_of(issue, self.engagement),
                                             key=issue.key, issue_id=issue.issue_id,
                                             requested_by=reporter_of(issue, self.engagement))
            crs.assess(session, cr)
            number, name = cr.number, cr.name
        if created:
            self.result.filed.append((issue.key, number))
            self.start_flow(number, name, None, f"(from {issue.key}) is filed")

    def follow(self, mine: jira_requests.Known, issue: IssueRecord) -> None:
        """The request's issue as found by the search: moved back, edited, or as it was."""
        if issue.key != mine.key:
            with transaction(self.sessions) as session:
                last = jira_requests.moved_back(session, mine.cr_id, to=issue.key, project=issue.project)
            self.report(mine, f"{last} ({mine.name}) is back in {issue.project} as {issue.key}; the request "
                              f"follows {issue.key} from now on and was not filed again")
        content = content_of(issue, self.engagement)
        if mine.digest is None or content.digest == mine.digest:
            if mine.unasked:  # revised before, but its flow could not be woken then
                self.start_flow(mine.number, mine.name, mine.flow_run_id, f"(revision {mine.revision}) is not asked yet")
            return
        if not mine.state.final:
            try:
                with transaction(self.sessions) as session:
                    changes = jira_requests.revise(session, mine.cr_id, content, key=issue.key,
                                                   issue_id=issue.issue_id)
            except GateClosed:  # decided between the read and now: a difference, below
                pass
            else:
                if changes is None:
                    return
                self.result.revised.append((issue.key, mine.number))
                self.start_flow(mine.number, mine.name, mine.flow_run_id, f"has a new revision from {issue.key}")
                return
        with transaction(self.sessions) as session:
            changes = jira_requests.report_change(session, mine.cr_id, content, key=issue.key)
            state = crs.by_id(session, mine.cr_id).state.value
        if changes is not None:
            self.report(mine, f"{mine.name} is {state}; {issue.key} changed in Jira since ({'; '.join(changes)}). "
                              f"The {state} request stays as it was: file a new change request for the difference")

    def missing(self, mine: jira_requests.Known) -> None:
        """The request's issue did not come back from the search: deleted, moved away, or unmarked."""
        found = self.tracker.lookup(mine.issue_id or mine.key, FIELDS)
        project = self.engagement.jira.project
        if found is None:
            with transaction(self.sessions) as session:
                new = jira_requests.gone(session, mine.cr_id, key=mine.key)
            if new:
                self.report(mine, f"{mine.key} ({mine.name}) was deleted in Jira (or phasegate's Jira account can "
                                  f"no longer see it); {mine.name} stays {mine.state.value}"
                            + ("" if mine.state.final else ": decide it or withdraw it here"))
        elif found.project != project:
            with transaction(self.sessions) as session:
                new = jira_requests.moved_away(session, mine.cr_id, key=mine.key, to=found.key,
                                               project=found.project)
            if new:
                self.report(mine, f"{mine.key} ({mine.name}) was moved to {found.project} as {found.key}; phasegate "
                                  f"no longer follows or labels it there ({project} is this engagement's project)")

    def start_flow(self, number: int, name: str, run_id: str | None, what: str) -> None:
        """Start the request's flow, or wake it to post the new revision's prompt."""
        from phasegate.changes import operations as cr_operations  # Prefect's client: only when needed
        from phasegate.orchestration.runs import wake

        try:
            if run_id:
                wake(run_id)
            else:
                cr_operations.start_flow(self.engagement.id, number)
        except EXPECTED as exc:
            self.result.problems.append(
                f"{name} {what}, but its flow run could not be woken to ask again ({exc})" if run_id else
                f"{name} {what}, but its approval flow did not start ({exc}); run "
                f"`phasegate cr prompt {self.engagement.id} {number}`")

    def report(self, mine: jira_requests.Known, text: str) -> None:
        self.result.reported.append(text)
        if self.chat is None:
            return
        with transaction(self.sessions) as session:
            thread = crs.by_id(session, mine.cr_id).message_ts
        try:
            self.chat.post(self.engagement.slack_channel, f":warning: {text}.", thread_ts=thread)
        except EXPECTED as exc:
            self.result.problems.append(f"could not post to Slack that {text} ({exc})")


def import_requests(sessions: sessionmaker[Session], engagement: Engagement, tracker: Searcher,
                    chat: SlackChat | None = None) -> Imported:
    """File the configured Jira issues not filed yet and follow those filed before; a Jira outage or a
    refused issue is noted in `problems`, never raised (the collection that called this goes on)."""
    return _Import(sessions, engagement, tracker, chat).run()


def labelled_here(tracker: Searcher, engagement: Engagement, key: str, issue_id: str | None) -> IssueRecord | None:
    """The request's issue if phasegate may label it: it exists and is in the engagement's project
    (a moved issue is found under its new key, which may be another client's project)."""
    found = tracker.lookup(issue_id or key, ("project",))
    return found if found is not None and found.project == engagement.jira.project else None

