"""The Jira stand-in's HTTP plumbing: Jira's error bodies, injected failures, the middleware every
request passes first, the API-version and auth checks, and request bodies and search arguments read
the way Jira reads them. The routes and the test controls are in `jira_api`."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

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
