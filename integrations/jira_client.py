"""Connecting to Jira with the real `jira` client: auth per deployment, retries that honour Retry-After
exactly, and every failure of the client turned into one line naming the site and the step."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from jira import JIRA, JIRAError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from phasegate.integrations.errors import EvidenceUnavailable, IntegrationError, ServiceUnavailable, retry_after_seconds


class _RetryAfter(Retry):
    """Retry 429/503 answers that carry Retry-After after exactly that wait, nothing else.

    A wait longer than `retry_after_max` is refused rather than shortened: retrying early
    would only be rate-limited again, so the caller gets a clear error instead.
    """

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> _RetryAfter:
        header = response.headers.get("Retry-After") if response is not None else None
        if header is not None and retry_after_seconds(header) > self.retry_after_max:
            raise MaxRetryError(_pool, url or "", ResponseError(f"Retry-After {header} is too long"))
        return super().increment(method, url, response, error, _pool, _stacktrace)


def make_jira_client(url: str, deployment: str, *, email: str | None, api_token: str | None, pat: str | None,
                     timeout: float = 10.0, max_retries: int = 2, max_wait: int = 60) -> JIRA:
    """A connected client: basic auth (email, API token) on Cloud, bearer PAT on Data Center.

    Retries: the library's ResilientSession is set to max_retries=0. Its loop waits
    min(max_retry_delay, 2 * Retry-After) * random(0.5, 1.0), i.e. less than Retry-After once
    the cap bites, cannot read an HTTP-date Retry-After, and sleeps 20 s, 40 s, ... on a
    refused connection. Instead an urllib3 Retry mounted on the session retries only 429/503
    answers carrying Retry-After, at most `max_retries` times, sleeping exactly the asked
    time (seconds or HTTP-date) and refusing waits above `max_wait` seconds. Connection
    errors, timeouts and 503s without Retry-After fail at once as ServiceUnavailable.
    """
    site = url.rstrip("/")
    if deployment not in ("cloud", "datacenter"):
        raise ServiceUnavailable(f"Jira at {site}: unknown deployment {deployment!r} (expected cloud or datacenter)")
    cloud = deployment == "cloud"
    if cloud and not (email and api_token):
        raise ServiceUnavailable(f"Jira at {site}: Jira Cloud needs an account email and an API token")
    if not cloud and not pat:
        raise ServiceUnavailable(f"Jira at {site}: Jira Data Center needs a personal access token")
    client = JIRA(server=site, basic_auth=(str(email), str(api_token)) if cloud else None,
                  token_auth=None if cloud else pat, timeout=timeout, max_retries=0, get_server_info=False)
    retry = _RetryAfter(total=max_retries, connect=0, read=False, other=0, status=max_retries, backoff_factor=0,
                        allowed_methods=None, raise_on_status=False, respect_retry_after_header=True,
                        retry_after_max=max_wait)
    adapter = HTTPAdapter(max_retries=retry)
    client._session.mount("http://", adapter)  # the library offers no public hook for its session
    client._session.mount("https://", adapter)
    hint = "the account email and API token" if cloud else "the personal access token"
    try:
        with jira_errors(site, "connecting", timeout, hint):
            info = client.server_info()  # what JIRA(get_server_info=True) does, now with our retries
            client.deploymentType = info.get("deploymentType")
            client._version = tuple(info["versionNumbers"])
            client.myself()  # serverInfo answers anonymously; this proves the credentials
        if (info.get("deploymentType") == "Cloud") != cloud:
            raise ServiceUnavailable(f"Jira at {site}: the site reports deploymentType {client.deploymentType!r}, "
                                     f"but the engagement says {deployment!r}")
    except IntegrationError:
        client.close()  # type: ignore[no-untyped-call]  # jira's close() has no annotations
        raise
    return client


def _one_line(text: object, limit: int = 240) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@contextmanager
def jira_errors(site: str, what: str, timeout: object = None, auth_hint: str = "the credentials") -> Iterator[None]:
    """Turn whatever the client raises into one line that names the site and the step."""
    prefix = f"Jira at {site}: {what} failed"
    try:
        yield
    except IntegrationError:
        raise
    except JIRAError as err:
        status, detail = err.status_code, _one_line(err.text)
        if status in (401, 403):
            raise ServiceUnavailable(f"{prefix}: credentials refused (HTTP {status}); check {auth_hint}") from err
        if status == 429 or (status is not None and status >= 500):
            reason = "rate limited" if status == 429 else "server error"
            wait = err.response.headers.get("Retry-After") if err.response is not None else None
            said = (f": {detail}" if detail else "") + (f"; asked to wait {wait} s" if wait else "")
            raise ServiceUnavailable(f"{prefix}: {reason} (HTTP {status}{said})",
                                     retry_after=retry_after_seconds(wait) if wait else None) from err
        if status == 404:
            raise EvidenceUnavailable(f"{prefix}: not found (HTTP 404{': ' + detail if detail else ''})") from err
        raise EvidenceUnavailable(f"{prefix}: HTTP {status}: {detail or 'no details'}") from err
    except requests.Timeout as err:
        raise ServiceUnavailable(f"{prefix}: no answer within {timeout} s") from err
    except requests.ConnectionError as err:
        cause = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(err))  # e.g. "Connection refused"
        reason = cause.group(1) if cause else type(err).__name__
        raise ServiceUnavailable(f"{prefix}: cannot connect ({reason})") from err
    except requests.RequestException as err:
        raise ServiceUnavailable(f"{prefix}: {_one_line(err)}") from err
    except (KeyError, ValueError, TypeError) as err:
        raise EvidenceUnavailable(f"{prefix}: the answer is not what Jira sends ({_one_line(err)})") from err
