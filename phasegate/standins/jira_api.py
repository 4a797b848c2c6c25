"""A local stand-in for the part of the Jira REST API (v2, and v3 search/jql) phasegate uses.

Why: tests and the demo drive the real `jira.JIRA` client over real HTTP, so paging, auth,
retries and JQL quoting are exercised as in production. It keeps the Cloud/Data Center split
that matters: Cloud answers 410 on the removed /search and pages /search/jql by nextPageToken
(ids only unless `fields` is given, unbounded JQL refused); Data Center keeps /search with
startAt/total and has no search/jql. It can rate-limit, fail or go down on demand.

    jira = JiraStandin("cloud", page_size=50); jira.add_project("ACME"); jira.start()
    key = jira.add_issue("ACME", "Collect data", labels=["phase-1"])
    client = JIRA(jira.url, basic_auth=(jira.email, jira.api_token)); ...; jira.stop()
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import hashlib
import itertools
import json
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from phasegate.servers import LoopbackServer
from phasegate.standins.jql_parser import JqlError, Query, matches, order, parse, restricts_project, validate

STORY_POINTS = "customfield_10016"
TRANSITIONS = (("11", "To Do", "new"), ("21", "In Progress", "indeterminate"), ("31", "Done", "done"))
CATEGORY_NAMES = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}
ISSUE_TYPES = {"Epic": "10000", "Task": "10001", "Story": "10002", "Bug": "10003", "Sub-task": "10004"}
LINK_TYPES = {"Relates": ("relates to", "relates to"), "Blocks": ("is blocked by", "blocks")}
_F = [  # (id, name, clause names, custom)
    ("summary", "Summary", ["summary"], False), ("status", "Status", ["status"], False),
    ("labels", "Labels", ["labels"], False), ("resolutiondate", "Resolved", ["resolutiondate", "resolved"], False),
    ("created", "Created", ["created", "createdDate"], False),
    ("updated", "Updated", ["updated", "updatedDate"], False),
    ("issuetype", "Issue Type", ["issuetype", "type"], False), ("project", "Project", ["project"], False),
    ("fixVersions", "Fix Version/s", ["fixVersion"], False), ("components", "Component/s", ["component"], False),
    ("parent", "Parent", ["parent"], False), ("description", "Description", ["description"], False),
    ("resolution", "Resolution", ["resolution"], False), ("issuelinks", "Linked Issues", ["issueLink"], False),
    (STORY_POINTS, "Story point estimate", ["cf[10016]", "Story point estimate", "Story Points"], True),
]
FIELD_IDS = {field_id for field_id, *_ in _F}
REMOVED = ("The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration "
           "guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046")
API_PATH = re.compile(r"^/rest/api/([^/]+)/")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _error(status: int, messages: Sequence[str] = (), errors: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errorMessages": list(messages), "errors": errors or {}}, status_code=status)


@dataclass
class _Failure:
    path_contains: str
    status: int
    retry_after: int | None
    times: int


class _Gate:
    """ASGI middleware: records every request, then applies latency, outage, injected failures and auth."""

    def __init__(self, app: ASGIApp, standin: JiraStandin) -> None:
        self.app, self.standin = app, standin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = await self.standin._gate(Request(scope)) if scope["type"] == "http" else None
        await (refusal or self.app)(scope, receive, send)


class JiraStandin(LoopbackServer):
    def __init__(self, deployment: Literal["cloud", "datacenter"] = "cloud", email: str = "pm@example.com",
                 api_token: str = "local-token", pat: str = "local-pat", page_size: int = 50) -> None:
        self.deployment, self.email, self.api_token, self.pat, self.page_size = (
            deployment, email, api_token, pat, page_size)
        self.outage = False  # every request answers 503 without Retry-After
        self.latency = 0.0  # seconds added to every request
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._projects: dict[str, str] = {}  # key -> id
        self._issues: dict[str, dict[str, Any]] = {}
        self._numbers: dict[str, itertools.count[int]] = {}
        self._ids = itertools.count(10001)
        self._failures: list[_Failure] = []
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
        self.app = Starlette(routes=routes, middleware=[Middleware(_Gate, standin=self)])

    # -- lifecycle and test controls -------------------------------------------------------
    def fail_next(self, path_contains: str, status: int = 429, retry_after: int | None = 1, times: int = 1) -> None:
        """The next `times` requests whose path contains `path_contains` answer `status` (+ Retry-After)."""
        with self._lock:
            self._failures.append(_Failure(path_contains, status, retry_after, times))

    def reset(self) -> None:
        """Forget projects, issues, injected failures and recorded requests; the server keeps running."""
        with self._lock:
            for store in (self._projects, self._issues, self._numbers, self._failures, self.requests):
                store.clear()
            self._ids = itertools.count(10001)
            self.outage, self.latency = False, 0.0

    def add_project(self, key: str) -> None:
        with self._lock:
            self._projects.setdefault(key.upper(), str(10000 + len(self._projects)))
            self._numbers.setdefault(key.upper(), itertools.count(1))

    def add_issue(self, project: str, summary: str, *, status: str = "To Do", done: bool = False,
                  labels: Sequence[str] = (), epic: str | None = None, fix_versions: Sequence[str] = (),
                  components: Sequence[str] = (), story_points: float | None = None, issuetype: str = "Task",
                  fields: dict[str, object] | None = None) -> str:
        with self._lock:
            if project.upper() not in self._projects:
                raise KeyError(f"unknown project {project!r}; call add_project first")
            key = f"{project.upper()}-{next(self._numbers[project.upper()])}"
            now = _now()
            self._issues[key] = {"id": str(next(self._ids)), "key": key, "fields": {
                "summary": summary, "labels": list(labels), "description": None, "issuelinks": [],
                "issuetype": {"id": ISSUE_TYPES.get(issuetype, "10001"), "name": issuetype, "subtask": False},
                "project": {"id": self._projects[project.upper()], "key": project.upper(), "name": project.upper()},
                "fixVersions": [{"name": name} for name in fix_versions],
                "components": [{"name": name} for name in components],
                STORY_POINTS: story_points, "created": now, "updated": now,
                **({"parent": {"key": epic, "id": self._issues[epic]["id"] if epic in self._issues else None}}
                   if epic else {}),
                **(fields or {}),
            }}
            self.set_status(key, "Done" if done and status == "To Do" else status, done)
            return key

    def set_status(self, key: str, status: str, done: bool) -> None:
        """Move an issue. `done` alone decides the "done" category and resolutiondate; a
        status named "Done" with done=False counts as in progress, "To Do" as new."""
        with self._lock:
            fields = self._issues[key]["fields"]
            category = "done" if done else "new" if status.lower() == "to do" else "indeterminate"
            fields["status"] = {"name": status, "statusCategory": {"key": category, "name": CATEGORY_NAMES[category]}}
            fields["resolution"] = {"name": "Done"} if done else None
            fields["resolutiondate"] = _now() if done else None
            fields["updated"] = _now()

    def issue(self, key: str) -> dict[str, Any]:
        """A copy of the stored issue in Jira's JSON shape (with `self` once started)."""
        with self._lock:
            stored = copy.deepcopy(self._issues[key])
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
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            message = "Rate limit exceeded." if failure.status == 429 else "Service temporarily unavailable."
            return JSONResponse({"errorMessages": [message], "errors": {}}, failure.status, headers=headers)
        version = API_PATH.match(path)
        if version is None or version.group(1) not in ("2", "3", "latest") or (
                self.deployment == "datacenter" and version.group(1) == "3"):
            return _error(404, ["Not Found"])
        header = request.headers.get("authorization")
        if self.deployment == "cloud":
            expected = "Basic " + base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()
        else:
            expected = f"Bearer {self.pat}"
        if header is None and path.endswith("/serverInfo"):
            return None  # anonymous serverInfo, as on a real site
        if header is None or not secrets.compare_digest(header.encode(), expected.encode()):
            return PlainTextResponse("Client must be authenticated to access this resource.", status_code=401,
                                     headers={"WWW-Authenticate": 'Basic realm="protected-area"'})
        return None

    # -- endpoints ---------------------------------------------------------------------------
    async def _server_info(self, request: Request) -> Response:
        cloud = self.deployment == "cloud"
        numbers = [1001, 0, 0] if cloud else [9, 12, 15]
        return JSONResponse({
            "baseUrl": str(request.base_url).rstrip("/"), "version": ".".join(map(str, numbers)),
            "versionNumbers": numbers, "deploymentType": "Cloud" if cloud else "Server", "buildNumber": 100_000,
            "serverTime": _now(), "scmInfo": "local", "serverTitle": "Jira stand-in"})

    async def _myself(self, request: Request) -> Response:
        user: dict[str, Any] = {"emailAddress": self.email, "displayName": "Project Manager", "active": True}
        user.update({"accountId": "557058:local-pm"} if self.deployment == "cloud" else {"name": "pm", "key": "pm"})
        return JSONResponse(user)

    async def _fields(self, request: Request) -> Response:
        return JSONResponse([{
            "id": field_id, "key": field_id, "name": name, "custom": custom, "orderable": True, "navigable": True,
            "searchable": True, "clauseNames": clauses,
            "schema": {"type": "number", "customId": int(field_id.rsplit("_", 1)[1]),
                       "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float"}
                      if custom else {"system": field_id},
        } for field_id, name, clauses, custom in _F])

    async def _search(self, request: Request) -> Response:
        if self.deployment == "cloud":
            return _error(410, [REMOVED])
        args = await _search_args(request)
        try:
            query, start, size = self._query(args.get("jql")), _int(args, "startAt", 0), _int(args, "maxResults", 50)
        except JqlError as err:
            return _error(400, err.messages)
        size = min(size, self.page_size)
        with self._lock:
            found = self._matching(query)
            issues = [self._render(i, _spec(args, "*navigable"), request) for i in found[start:start + size]]
        return JSONResponse({"expand": "schema,names", "startAt": start, "maxResults": size, "total": len(found),
                             "issues": issues})

    async def _search_jql(self, request: Request) -> Response:
        if self.deployment == "datacenter":
            return _error(404, ["Not Found"])
        args = await _search_args(request)
        try:
            query, size = self._query(args.get("jql")), min(_int(args, "maxResults", 50), self.page_size)
            if not restricts_project(query.where):
                raise JqlError(["Unbounded JQL queries are not allowed here. Please add a search restriction "
                                "to your query."])
            offset = _decode_token(args.get("nextPageToken"), str(args.get("jql") or ""))
        except JqlError as err:
            return _error(400, err.messages)
        with self._lock:
            found = self._matching(query)
            issues = [self._render(i, _spec(args, None), request) for i in found[offset:offset + size]]
        body: dict[str, Any] = {"issues": issues, "isLast": offset + size >= len(found)}
        if not body["isLast"]:
            body["nextPageToken"] = _encode_token(offset + size, str(args.get("jql") or ""))
        return JSONResponse(body)

    async def _create(self, request: Request) -> Response:
        fields = (await _json(request)).get("fields") or {}
        with self._lock:
            errors, project, type_name = self._check_create(fields)
            if errors:
                return _error(400, [], errors)
            extra = {k: v for k, v in fields.items() if k not in ("project", "summary", "issuetype", "labels",
                                                                  "parent")}
            key = self.add_issue(project, fields["summary"], labels=fields.get("labels") or [], issuetype=type_name,
                                 epic=(fields.get("parent") or {}).get("key"), fields=extra)
            issue_id = self._issues[key]["id"]
        return JSONResponse({"id": issue_id, "key": key, "self": _self_url(request, issue_id)}, 201)

    async def _issue(self, request: Request) -> Response:
        key = request.path_params["key"]
        with self._lock:
            issue = self._find(key)
            if issue is None:
                return _error(404, ["Issue does not exist or you do not have permission to see it."])
            if request.method == "GET":
                spec = ",".join(request.query_params.getlist("fields")) or "*all"
                return JSONResponse(self._render(issue, spec.split(","), request))
        body = await _json(request)
        with self._lock:
            errors = self._check_fields(body.get("fields") or {})
            if "status" in (body.get("fields") or {}):
                errors["status"] = "Field 'status' cannot be set. It is not on the appropriate screen, or unknown."
            if errors:
                return _error(400, [], errors)
            fields = issue["fields"]
            fields.update(body.get("fields") or {})
            for name, operations in (body.get("update") or {}).items():
                for operation in operations:
                    for verb, value in operation.items():
                        current = list(fields.get(name) or [])
                        fields[name] = (value if verb == "set" else current + [value] if verb == "add"
                                        else [v for v in current if v != value])
            fields["updated"] = _now()
        return Response(status_code=204)

    async def _transitions(self, request: Request) -> Response:
        with self._lock:
            issue = self._find(request.path_params["key"])
        if issue is None:
            return _error(404, ["Issue does not exist or you do not have permission to see it."])
        if request.method == "GET":
            return JSONResponse({"expand": "transitions", "transitions": [
                {"id": tid, "name": name, "to": {"name": name, "statusCategory": {"key": cat}}}
                for tid, name, cat in TRANSITIONS]})
        wanted = str(((await _json(request)).get("transition") or {}).get("id"))
        match = next((t for t in TRANSITIONS if t[0] == wanted), None)
        if match is None:
            return _error(400, [f"Transition id '{wanted}' is not valid for this issue."])
        self.set_status(issue["key"], match[1], match[2] == "done")
        return Response(status_code=204)

    async def _link(self, request: Request) -> Response:
        body = await _json(request)
        name = (body.get("type") or {}).get("name")
        inward, outward = ((body.get(side) or {}).get("key") for side in ("inwardIssue", "outwardIssue"))
        with self._lock:
            if name not in LINK_TYPES:
                return _error(404, [f"No issue link type with name '{name}' found."])
            a, b = self._find(str(inward)), self._find(str(outward))
            if a is None or b is None:
                return _error(404, ["Issue Does Not Exist"])
            link_type = {"name": name, "inward": LINK_TYPES[name][0], "outward": LINK_TYPES[name][1]}
            a["fields"]["issuelinks"].append({"type": link_type, "outwardIssue": {"key": b["key"]}})
            b["fields"]["issuelinks"].append({"type": link_type, "inwardIssue": {"key": a["key"]}})
        return Response(status_code=201)

    async def _link_types(self, request: Request) -> Response:
        return JSONResponse({"issueLinkTypes": [
            {"id": str(10000 + n), "name": name, "inward": inward, "outward": outward}
            for n, (name, (inward, outward)) in enumerate(LINK_TYPES.items())]})

    async def _project_list(self, request: Request) -> Response:
        with self._lock:
            return JSONResponse([self._project_json(key) for key in self._projects])

    async def _project(self, request: Request) -> Response:
        key = request.path_params["key"].upper()
        with self._lock:
            key = next((k for k, i in self._projects.items() if i == key), key)
            if key not in self._projects:
                return _error(404, [f"No project could be found with key '{request.path_params['key']}'."])
            return JSONResponse(self._project_json(key))

    # -- helpers ---------------------------------------------------------------------------
    def _project_json(self, key: str) -> dict[str, Any]:
        return {"id": self._projects[key], "key": key, "name": key,
                "issueTypes": [{"id": i, "name": n, "subtask": n == "Sub-task"} for n, i in ISSUE_TYPES.items()]}

    def _find(self, key_or_id: str) -> dict[str, Any] | None:
        issue = self._issues.get(key_or_id.upper())
        return issue or next((i for i in self._issues.values() if i["id"] == key_or_id), None)

    def _check_create(self, fields: dict[str, Any]) -> tuple[dict[str, str], str, str]:
        """Jira's answers to a create without a valid project, summary or issue type."""
        errors: dict[str, str] = {}
        project, kind = fields.get("project") or {}, fields.get("issuetype") or {}
        key = str(project.get("key") or next((k for k, i in self._projects.items() if i == str(project.get("id"))), ""))
        if key.upper() not in self._projects:
            errors["project"] = "valid project is required"
        if not str(fields.get("summary") or "").strip():
            errors["summary"] = "You must specify a summary of the issue."
        type_name = str(kind.get("name") or next((n for n, i in ISSUE_TYPES.items() if i == str(kind.get("id"))), ""))
        if type_name not in ISSUE_TYPES:
            errors["issuetype"] = "valid issue type is required"
        errors.update(self._check_fields(fields))
        return errors, key, type_name

    def _check_fields(self, fields: dict[str, Any]) -> dict[str, str]:
        errors = {}
        spaced = [label for label in fields.get("labels") or [] if not label or any(c.isspace() for c in label)]
        if spaced:
            errors["labels"] = f"The label '{spaced[0]}' contains spaces which is invalid."
        parent = (fields.get("parent") or {}).get("key")
        if parent and self._find(str(parent)) is None:
            errors["parent"] = "Could not find issue by id or key."
        return errors

    def _query(self, jql: object) -> Query:
        query = parse(str(jql or ""))
        with self._lock:
            validate(query, set(self._projects), set(self._issues))
        return query

    def _matching(self, query: Query) -> list[dict[str, Any]]:
        return order([i for i in self._issues.values() if matches(query.where, i)], query.order_by)

    def _render(self, issue: dict[str, Any], spec: list[str] | None, request: Request) -> dict[str, Any]:
        """The issue as Jira returns it for a `fields` selection; no selection on Cloud search = ids only."""
        if not spec or not any(name.strip() for name in spec):
            return {"id": issue["id"]}
        names = [name.strip() for name in spec if name.strip()]
        excluded = {name[1:] for name in names if name.startswith("-")}
        stored = issue["fields"]
        if any(name in ("*all", "*navigable") for name in names):
            chosen = [name for name in stored if name not in excluded]
        else:
            chosen = [n for n in names if not n.startswith("-") and n not in excluded
                      and (n in stored or n in FIELD_IDS)]
        return {"expand": "renderedFields,names,schema,operations,editmeta,changelog", "id": issue["id"],
                "self": _self_url(request, issue["id"]), "key": issue["key"],
                "fields": copy.deepcopy({name: stored.get(name) for name in chosen})}


def _self_url(request: Request, issue_id: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/rest/api/2/issue/{issue_id}"


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = {}
    return body if isinstance(body, dict) else {}


async def _search_args(request: Request) -> dict[str, Any]:
    """GET query parameters or a POST body, in one shape; `fields` becomes a flat list of names."""
    if request.method == "POST":
        args = await _json(request)
        fields = args.get("fields")
        args["fields"] = None if fields is None else [fields] if isinstance(fields, str) else list(fields)
    else:
        args = dict(request.query_params)
        args["fields"] = request.query_params.getlist("fields") if "fields" in request.query_params else None
    if args["fields"] is not None:
        args["fields"] = [name for entry in args["fields"] for name in str(entry).split(",")]
    return args


def _spec(args: dict[str, Any], default: str | None) -> list[str] | None:
    fields: list[str] | None = args.get("fields")
    return fields if fields is not None else [default] if default else None


def _int(args: dict[str, Any], name: str, default: int) -> int:
    raw = args.get(name)
    try:
        value = default if raw is None else int(raw)
    except (TypeError, ValueError):
        raise JqlError([f"The value of '{name}' must be a number."]) from None
    if value < 0:
        raise JqlError([f"The value of '{name}' must not be negative."])
    return value


def _encode_token(offset: int, jql: str) -> str:
    digest = hashlib.sha256(jql.encode()).hexdigest()[:16]
    return base64.urlsafe_b64encode(json.dumps([offset, digest]).encode()).decode()


def _decode_token(token: object, jql: str) -> int:
    if not token:
        return 0
    try:
        offset, digest = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        if digest == hashlib.sha256(jql.encode()).hexdigest()[:16] and isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, TypeError):
        pass
    raise JqlError(["The provided next page token is invalid or expired."])
