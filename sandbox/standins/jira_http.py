"""The Jira stand-in's HTTP plumbing: Jira's error bodies, injected failures, the middleware every
request passes first, the API-version and auth checks, and request bodies and search arguments read
the way Jira reads them (the `fields` selection, paging numbers, Cloud's page tokens). The routes
and the test controls are in `jira_api`."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from phasegate.sandbox.standins.jira_wire import FIELD_IDS
from phasegate.sandbox.standins.jql_tokens import JqlError

REMOVED = ("The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration "
           "guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046")
API_PATH = re.compile(r"^/rest/api/([^/]+)/")


def error(status: int, messages: Sequence[str] = (), errors: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errorMessages": list(messages), "errors": errors or {}}, status_code=status)


@dataclass
class Failure:
    """An injected answer: the next `times` requests whose path contains `path_contains` get `status`."""

    path_contains: str
    status: int
    retry_after: int | None
    times: int

    def response(self) -> Response:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        message = "Rate limit exceeded." if self.status == 429 else "Service temporarily unavailable."
        return JSONResponse({"errorMessages": [message], "errors": {}}, self.status, headers=headers)


class Gate:
    """ASGI middleware: `check` sees every request first (it records it, then applies latency, outage,
    injected failures and auth); its refusal, if any, is the answer."""

    def __init__(self, app: ASGIApp, check: Callable[[Request], Awaitable[Response | None]]) -> None:
        self.app, self.check = app, check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = await self.check(Request(scope)) if scope["type"] == "http" else None
        await (refused or self.app)(scope, receive, send)


def refusal(deployment: str, path: str, header: str | None, expected: str) -> Response | None:
    """404 for an API version the deployment does not have (Data Center has no v3), 401 unless the
    Authorization header is `expected` (serverInfo answers anonymously, as on a real site)."""
    version = API_PATH.match(path)
    if version is None or version.group(1) not in ("2", "3", "latest") or (
            deployment == "datacenter" and version.group(1) == "3"):
        return error(404, ["Not Found"])
    if header is None and path.endswith("/serverInfo"):
        return None  # anonymous serverInfo, as on a real site
    if header is None or not secrets.compare_digest(header.encode(), expected.encode()):
        return PlainTextResponse("Client must be authenticated to access this resource.", status_code=401,
                                 headers={"WWW-Authenticate": 'Basic realm="protected-area"'})
    return None


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = {}
    return body if isinstance(body, dict) else {}


async def search_args(request: Request) -> dict[str, Any]:
    """GET query parameters or a POST body, in one shape; `fields` becomes a flat list of names."""
    if request.method == "POST":
        args = await json_body(request)
        fields = args.get("fields")
        args["fields"] = None if fields is None else [fields] if isinstance(fields, str) else list(fields)
    else:
        args = dict(request.query_params)
        args["fields"] = request.query_params.getlist("fields") if "fields" in request.query_params else None
    if args["fields"] is not None:
        args["fields"] = [name for entry in args["fields"] for name in str(entry).split(",")]
    return args


def self_url(base_url: str, issue_id: str) -> str:
    return f"{base_url.rstrip('/')}/rest/api/2/issue/{issue_id}"


def render(issue: dict[str, Any], spec: list[str] | None, base_url: str) -> dict[str, Any]:
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
            "self": self_url(base_url, issue["id"]), "key": issue["key"],
            "fields": copy.deepcopy({name: stored.get(name) for name in chosen})}


def spec(args: dict[str, Any], default: str | None) -> list[str] | None:
    """The requested `fields` selection, else `default` (None: Cloud search's ids-only answer)."""
    fields: list[str] | None = args.get("fields")
    return fields if fields is not None else [default] if default else None


def page_number(args: dict[str, Any], name: str, default: int) -> int:
    """A non-negative paging argument (startAt, maxResults); a bad one is a JqlError, as Jira answers 400."""
    raw = args.get(name)
    try:
        value = default if raw is None else int(raw)
    except (TypeError, ValueError):
        raise JqlError([f"The value of '{name}' must be a number."]) from None
    if value < 0:
        raise JqlError([f"The value of '{name}' must not be negative."])
    return value


def encode_token(offset: int, jql: str) -> str:
    """An opaque nextPageToken bound to `jql`, so it cannot be replayed against another query."""
    digest = hashlib.sha256(jql.encode()).hexdigest()[:16]
    return base64.urlsafe_b64encode(json.dumps([offset, digest]).encode()).decode()


def decode_token(token: object, jql: str) -> int:
    """The offset in a token from encode_token for the same `jql`; no token is 0, a bad one JqlError."""
    if not token:
        return 0
    try:
        offset, digest = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        if digest == hashlib.sha256(jql.encode()).hexdigest()[:16] and isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, TypeError):
        pass
    raise JqlError(["The provided next page token is invalid or expired."])
