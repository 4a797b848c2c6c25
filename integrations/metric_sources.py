"""Metric values read over HTTP from a JSON document (an MLflow tracking server, a CI job's
report, a data-quality service). The client is passed in; its transport decides where it goes."""

from __future__ import annotations

import re
from typing import Any

import httpx

from phasegate.integrations.errors import EvidenceUnavailable, ServiceUnavailable, retry_after_seconds

_STEP = re.compile(r"^(?P<name>[^.\[\]]+)?(?:\[(?P<sel>[^\]]+)\])?$")


def dig(document: Any, path: str) -> Any:
    """Follow a dotted path; `name[3]` indexes a list, `name[key=f1]` picks the item whose key is f1.

    >>> dig({"run": {"metrics": [{"key": "f1", "value": 0.9}]}}, "run.metrics[key=f1].value")
    0.9
    """
    node = document
    for step in path.split("."):
        match = _STEP.match(step)
        if match is None:
            raise KeyError(f"bad path step {step!r}")
        if match["name"]:
            if not isinstance(node, dict) or match["name"] not in node:
                raise KeyError(f"no {match['name']!r} at {step!r}")
            node = node[match["name"]]
        selector = match["sel"]
        if selector is None:
            continue
        if not isinstance(node, list):
            raise KeyError(f"{step!r} is not a list")
        if "=" in selector:
            field, wanted = selector.split("=", 1)
            found = [item for item in node if isinstance(item, dict) and str(item.get(field)) == wanted]
            if not found:
                raise KeyError(f"no item with {field}={wanted} at {step!r}")
            node = found[-1]
        else:
            node = node[int(selector)]
    return node


def read_json_metric(client: httpx.Client, url: str, path: str) -> tuple[float, Any]:
    """The metric's value and the raw document it came from; EvidenceUnavailable when unreadable,
    ServiceUnavailable (with the Retry-After asked for) when the server is down for now."""
    try:
        response = client.get(url)
        response.raise_for_status()
        document = response.json()
    except httpx.HTTPStatusError as exc:
        status, wait = exc.response.status_code, exc.response.headers.get("Retry-After")
        if status == 429 or status >= 500:  # a passing outage: the caller may read again
            raise ServiceUnavailable(f"{url} answered HTTP {status}" + (f"; asked to wait {wait} s" if wait else ""),
                                     retry_after=retry_after_seconds(wait) if wait else None) from None
        raise EvidenceUnavailable(f"{url} answered HTTP {status}") from None
    except httpx.TransportError as exc:
        raise ServiceUnavailable(f"{url} could not be read: {type(exc).__name__}") from None
    except httpx.HTTPError as exc:
        raise EvidenceUnavailable(f"{url} could not be read: {type(exc).__name__}") from None
    except ValueError:
        raise EvidenceUnavailable(f"{url} did not answer JSON") from None
    try:
        value = dig(document, path)
    except (KeyError, IndexError, ValueError) as exc:
        raise EvidenceUnavailable(f"{url}: {path}: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EvidenceUnavailable(f"{url}: {path} is {value!r}, not a number")
    return float(value), document
