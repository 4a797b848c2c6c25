"""HTTP clients for phasegate's own calls (the metric sources) and the sandbox's, sharing one TLS
context per process.

httpx builds a TLS context for every client, loading the CA bundle (about 25 ms of CPU here) even
when every URL is http://; a process that makes a client per request, per click or per test pays
that each time. `client()` hands every client the same context, built as httpx builds its default.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx


@functools.cache
def tls() -> ssl.SSLContext:
    """The process's TLS context: httpx's default (certifi's CA bundle, certificates verified)."""
    return httpx.create_ssl_context()


def client(**options: Any) -> httpx.Client:
    """An httpx client with the process's TLS context; `options` as httpx.Client's."""
    return httpx.Client(verify=tls(), **options)
