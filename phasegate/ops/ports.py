"""Whether `phasegate up` can have the ports it is configured for, and who holds one it cannot.

A port already in use is refused before anything starts: otherwise a Prefect server left over from
an earlier `up` would answer the new one's health check, which would then say it is ready and serve a
second runner against someone else's server. The holder is named when this machine lets us see it
(Linux: the listening socket's inode in /proc/net/tcp*, found among the processes' open files).

    require_free("127.0.0.1", 4200, what="the Prefect server", setting="PHASEGATE_PREFECT_PORT")
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from phasegate.errors import ServiceUnavailable

LISTEN = "0A"  # TCP state LISTEN as /proc/net/tcp writes it


class PortTaken(ServiceUnavailable):
    """A port `up` needs is held by a process it did not start."""


def is_free(host: str, port: int) -> bool:
    """True when a server could listen on host:port now (as uvicorn does, with SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def holder(port: int, proc: Path = Path("/proc")) -> str | None:
    """`pid N (its command line)` of a process listening on `port`, or None if it cannot be seen
    (not Linux, or a process of another user)."""
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(port, proc)}
    if not wanted:
        return None
    for entry in proc.glob("[0-9]*"):
        try:
            if any(os.readlink(fd) in wanted for fd in (entry / "fd").iterdir()):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                return f"pid {entry.name} ({command[:160]})"
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return None


def require_free(host: str, port: int, *, what: str, setting: str) -> None:
    """Raise PortTaken, naming the holder when it can be seen, unless host:port is free."""
    if is_free(host, port):
        return
    who = holder(port) or "another process"
    raise PortTaken(f"port {port}, where `phasegate up` runs {what}, is taken by {who}; "
                    f"stop that process or set {setting} to a free port")
