"""A local stand-in for the part of the Jira REST API (v2, and v3 search/jql) phasegate uses.

Why: tests and the demo drive the real `jira.JIRA` client over real HTTP, so paging, auth,
retries and JQL quoting are exercised as in production. It keeps the Cloud/Data Center split
that matters: Cloud answers 410 on the removed /search and pages /search/jql by nextPageToken
(ids only unless `fields` is given, unbounded JQL refused); Data Center keeps /search with
startAt/total and has no search/jql. It can rate-limit, fail or go down on demand.
This module is the HTTP face (routes, the test controls, injected failures); the data lives in
`jira_store`, and the plumbing (errors, request bodies, version and auth checks) in `jira_http`.

    jira = JiraStandin("cloud", page_size=50); jira.add_project("ACME"); jira.start()
    key = jira.add_issue("ACME", "Collect data", labels=["phase-1"])
    client = JIRA(jira.url, basic_auth=(jira.email, jira.api_token)); ...; jira.stop()
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from phasegate.sandbox.standins.jira_http import (
    REMOVED,
    Failure,
    Gate,
    decode_token,
    encode_token,
    error,
    json_body,
    page_number,
    refusal,
    render,
    search_args,
    self_url,
    spec,
)
from phasegate.sandbox.standins.jira_store import IssueStore
from phasegate.sandbox.standins.jira_wire import edit, field_list, link_type_list, now, transition_list
from phasegate.sandbox.standins.jql_eval import restricts_project
from phasegate.sandbox.standins.jql_tokens import JqlError
from phasegate.sandbox.standins.loopback import LoopbackServer


class JiraStandin(LoopbackServer):
    def __init__(self, deployment: Literal["cloud", "datacenter"] = "cloud", email: str = "pm@example.com",
                 api_token: str = "local-token", pat: str = "local-pat", page_size: int = 50) -> None:
        self.deployment, self.email, self.api_token, self.pat, self.page_size = (
            deployment, email, api_token, pat, page_size)
        self.outage = False  # every request answers 503 without Retry-After
        self.latency = 0.0  # seconds added to every request
        self.requests: list[tuple[str, str]] = []
        # Called as after_page(n) once the n-th search page since reset() is built: change issues between pages.
        self.after_page: Callable[[int], None] | None = None
        self.repeat_token = False  # Cloud: hand back the token it was given, so paging never ends
        self._pages_served = 0
        self._store = IssueStore()
        self._lock = self._store.lock  # one lock for the store, the request log and injected failures
        self._failures: list[Failure] = []
        api = "/rest/api/{version}"
        routes = [
            Route(api + "/serverInfo", self._server_info), Route(api + "/myself", self._myself),
            Route(api + "/field", self._fields), Route(api + "/search", self._search, methods=["GET", "POST"]),
            Route(api + "/search/jql", self._search_jql, methods=["GET", "POST"]),
            Route(api + "/issue", self._create, methods=["POST"]),
            Route(api + "/issue/{key}", self._issue, methods=["GET", "PUT"]),
            Route(api + "/issue/{key}/transitions", self._transitions, methods=["GET", "POST"]),
            Route(api + "/issueLink", self._link, methods=["POST"]), Route(api + "/issueLinkType", self._link_types),
            Route(api + "/project", self._project_list), Route(api + "/project/{key}", self._project),
        ]
        self.app = Starlette(routes=routes, middleware=[Middleware(Gate, check=self._gate)])

    # -- lifecycle and test controls -------------------------------------------------------
    def fail_next(self, path_contains: str, status: int = 429, retry_after: int | None = 1, times: int = 1) -> None:
        """The next `times` requests whose path contains `path_contains` answer `status` (+ Retry-After)."""
        with self._lock:
            self._failures.append(Failure(path_contains, status, retry_after, times))

    def reset(self) -> None:
        """Forget projects, issues, injected failures and recorded requests; the server keeps running."""
        with self._lock:
            self._store.clear()
            self._failures.clear()
            self.requests.clear()
            self.outage, self.latency = False, 0.0
            self.after_page, self.repeat_token, self._pages_served = None, False, 0

    def add_project(self, key: str) -> None:
        self._store.add_project(key)

    def add_issue(self, project: str, summary: str, *, status: str = "To Do", done: bool = False,
                  labels: Sequence[str] = (), epic: str | None = None, fix_versions: Sequence[str] = (),
                  components: Sequence[str] = (), story_points: float | None = None, issuetype: str = "Task",
                  fields: dict[str, object] | None = None, key: str | None = None,
                  resolution: str | None = None) -> str:
        """Store a new issue in `project` (added first with add_project) and return its key: the next
        number in the project, or `key` when given (an issue the engagement file names by key).
        `epic` is its parent: the epic it is in or, with issuetype "Sub-task", the issue it belongs
        to; `resolution` is set when `done` (default "Done")."""
        return self._store.add_issue(
            project, summary, status=status, done=done, labels=labels, epic=epic, fix_versions=fix_versions,
            components=components, story_points=story_points, issuetype=issuetype, fields=fields, key=key,
            resolution=resolution)

    def backdate(self, key: str, created: dt.datetime | None = None, resolved: dt.datetime | None = None) -> None:
        """Give an issue a history (its created date; its resolution date, if it is done), as an
        issue worked on over weeks has: the burn-up and its forecast are drawn from these."""
        self._store.backdate(key, created, resolved)

    def delete_issue(self, key: str) -> None:
        self._store.delete_issue(key)

    def _page_served(self) -> None:
        with self._lock:
            self._pages_served += 1
            hook, number = self.after_page, self._pages_served
        if hook is not None:
            hook(number)

    def set_status(self, key: str, status: str, done: bool, resolution: str | None = None) -> None:
        """Move an issue. `done` alone decides the "done" category, the resolution (`resolution`,
        default "Done", such as "Won't Do" or "Duplicate") and resolutiondate; a status named "Done"
        with done=False counts as in progress, "To Do" as new."""
        self._store.set_status(key, status, done, resolution)

    def move_issue(self, key: str, project: str) -> str:
        """Move an issue to another project (added first with add_project), as Jira's Move does:
        it gets the next key there, which is returned; its old key still finds it."""
        return self._store.move(key, project)

    def issue_keys(self) -> set[str]:
        with self._lock:
            return set(self._store.issues)

    def issue(self, key: str) -> dict[str, Any]:
        """A copy of the stored issue in Jira's JSON shape (with `self` once started); a moved
        issue's old key finds it, under its new key."""
        with self._lock:
            stored = copy.deepcopy(self._store.current(self._store.issues[self._store.resolve(key)]))
        if self._handle is not None:
            stored["self"] = f"{self._handle.url}/rest/api/2/issue/{stored['id']}"
        return stored

    # -- gate --------------------------------------------------------------------------------
    async def _gate(self, request: Request) -> Response | None:
        path = request.url.path
        with self._lock:
            self.requests.append((request.method, path))
            latency, outage = self.latency, self.outage
            failure = next((f for f in self._failures if f.times > 0 and f.path_contains in path), None)
            if failure is not None:
                failure.times -= 1
        if latency:
            await asyncio.sleep(latency)
        if outage:
            return PlainTextResponse("Service Unavailable", status_code=503)
        if failure is not None:
            return failure.response()
        if self.deployment == "cloud":
            expected = "Basic " + base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()
        else:
            expected = f"Bearer {self.pat}"
        return refusal(self.deployment, path, request.headers.get("authorization"), expected)

    # -- endpoints ---------------------------------------------------------------------------
    async def _server_info(self, request: Request) -> Response:
        cloud = self.deployment == "cloud"
        numbers = [1001, 0, 0] if cloud else [9, 12, 15]
        return JSONResponse({
            "baseUrl": str(request.base_url).rstrip("/"), "version": ".".join(map(str, numbers)),
            "versionNumbers": numbers, "deploymentType": "Cloud" if cloud else "Server", "buildNumber": 100_000,
            "serverTime": now(), "scmInfo": "local", "serverTitle": "Jira stand-in"})

    async def _myself(self, request: Request) -> Response:
        user: dict[str, Any] = {"emailAddress": self.email, "displayName": "Project Manager", "active": True}
        user.update({"accountId": "557058:local-pm"} if self.deployment == "cloud" else {"name": "pm", "key": "pm"})
        return JSONResponse(user)

    async def _fields(self, request: Request) -> Response:
        return JSONResponse(field_list())

    async def _search(self, request: Request) -> Response:
        if self.deployment == "cloud":
            return error(410, [REMOVED])
        args = await search_args(request)
        try:
            query = self._store.query(args.get("jql"))
            start, size = page_number(args, "startAt", 0), page_number(args, "maxResults", 50)
        except JqlError as err:
            return error(400, err.messages)
        size = min(size, self.page_size)
        with self._lock:
            found = self._store.matching(query)
            subtasks = self._store.subtasks_by_parent()
            issues = [render(self._store.current(i, subtasks), spec(args, "*navigable"), str(request.base_url))
                      for i in found[start:start + size]]
        self._page_served()
        return JSONResponse({"expand": "schema,names", "startAt": start, "maxResults": size, "total": len(found),
                             "issues": issues})

    async def _search_jql(self, request: Request) -> Response:
        if self.deployment == "datacenter":
            return error(404, ["Not Found"])
        args = await search_args(request)
        try:
            query, size = self._store.query(args.get("jql")), min(page_number(args, "maxResults", 50), self.page_size)
            if not restricts_project(query.where):
                raise JqlError(["Unbounded JQL queries are not allowed here. Please add a search restriction "
                                "to your query."])
            offset = decode_token(args.get("nextPageToken"), str(args.get("jql") or ""))
        except JqlError as err:
            return error(400, err.messages)
        with self._lock:
            found = self._store.matching(query)
            subtasks = self._store.subtasks_by_parent()
            issues = [render(self._store.current(i, subtasks), spec(args, None), str(request.base_url))
                      for i in found[offset:offset + size]]
        body: dict[str, Any] = {"issues": issues, "isLast": offset + size >= len(found)}
        if not body["isLast"]:
            body["nextPageToken"] = encode_token(offset + size, str(args.get("jql") or ""))
            if self.repeat_token and args.get("nextPageToken"):
                body["nextPageToken"] = args["nextPageToken"]
        self._page_served()
        return JSONResponse(body)

    async def _create(self, request: Request) -> Response:
        fields = (await json_body(request)).get("fields") or {}
        with self._lock:
            errors, key = self._store.create(fields)
            if errors:
                return error(400, [], errors)
            issue_id = self._store.issues[key]["id"]
        return JSONResponse({"id": issue_id, "key": key, "self": self_url(str(request.base_url), issue_id)}, 201)

    async def _issue(self, request: Request) -> Response:
        key = request.path_params["key"]
        with self._lock:
            issue = self._store.find(key)
            if issue is None:
                return error(404, ["Issue does not exist or you do not have permission to see it."])
            if request.method == "GET":
                names = ",".join(request.query_params.getlist("fields")) or "*all"
                return JSONResponse(render(self._store.current(issue), names.split(","), str(request.base_url)))
        body = await json_body(request)
        with self._lock:
            errors = self._store.check_edit(body.get("fields") or {})
            if errors:
                return error(400, [], errors)
            edit(issue, body)
        return Response(status_code=204)

    async def _transitions(self, request: Request) -> Response:
        with self._lock:
            issue = self._store.find(request.path_params["key"])
        if issue is None:
            return error(404, ["Issue does not exist or you do not have permission to see it."])
        if request.method == "GET":
            return JSONResponse({"expand": "transitions", "transitions": transition_list()})
        wanted = str(((await json_body(request)).get("transition") or {}).get("id"))
        if not self._store.transition(issue["key"], wanted):
            return error(400, [f"Transition id '{wanted}' is not valid for this issue."])
        return Response(status_code=204)

    async def _link(self, request: Request) -> Response:
        body = await json_body(request)
        name = (body.get("type") or {}).get("name")
        inward, outward = ((body.get(side) or {}).get("key") for side in ("inwardIssue", "outwardIssue"))
        problem = self._store.link(str(inward), str(outward), name)
        return error(404, [problem]) if problem else Response(status_code=201)

    async def _link_types(self, request: Request) -> Response:
        return JSONResponse({"issueLinkTypes": link_type_list()})

    async def _project_list(self, request: Request) -> Response:
        with self._lock:
            return JSONResponse([self._store.project_json(key) for key in self._store.projects])

    async def _project(self, request: Request) -> Response:
        with self._lock:
            key = self._store.project_key(request.path_params["key"])
            if key is None:
                return error(404, [f"No project could be found with key '{request.path_params['key']}'."])
            return JSONResponse(self._store.project_json(key))
