"""The benchmarks' server processes: each server runs as a command of its own (uvicorn inside), is
waited for until it answers, measured by the CPU time /proc says it spent, and stopped with Ctrl-C
as a person would stop it.

    server = Server.start("bare", [sys.executable, "-m", "bench.anchors", "bare", "--port", str(port)], port)
    cpu_seconds(server.pid); server.stop()
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from phasegate.ops.local import dies_with_this_process
from phasegate.ops.servers import free_port

TICKS = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent

__all__ = ["Server", "children", "cpu_seconds", "free_port", "machine_busy_seconds", "CORES"]

CORES = os.cpu_count() or 1


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the process `pid`, all its threads (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime: fields 14 and 15 of stat(5)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot, all cores and processes (/proc/stat's first
    line: user, nice, system, irq and softirq; idle, iowait and steal left out)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / TICKS


def children(pid: int) -> list[int]:
    """The processes `pid` started (its threads' /proc children lists): `serve-slack`'s refresher."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def idle(pid: int, *, window: float = 1.0, below: float = 0.05) -> bool:
    """Whether `pid` spent less than `below` of one core over the next `window` seconds."""
    before = cpu_seconds(pid)
    time.sleep(window)
    return cpu_seconds(pid) - before < below * window


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(cls, name: str, args: list[str], port: int, *, log_dir: Path, env: dict[str, str] | None = None,
              timeout: float = 60) -> Server:
        """Start `args` (a server listening on 127.0.0.1:`port`, ended if this process dies first: the same
        process id, exec'd in place) and return once it accepts connections."""
        log = log_dir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(dies_with_this_process(args), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError(f"{name} did not listen on port {port} within {timeout:g} s") from None
                time.sleep(0.1)
        return cls(name, process, f"http://127.0.0.1:{port}", log)

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
