"""B-CLI: start-up of read commands from a fresh process, as a ratio to `python -c "import prefect"`.

    .venv/bin/python -m bench.cli                    # --repeat 7 --engagements 20 --status-all 1000
    .venv/bin/python -m bench.cli --quick            # 2 repeats, no `status --all` (the CI smoke run)
    .venv/bin/python -m bench.cli --quick --status-all 1000   # and `status --all` at 1,000 engagements


Each command runs as the `phasegate` console script does (`phasegate.cli.main:main`), against a
SQLite ledger in a temporary PHASEGATE_HOME that holds a few engagements, with Prefect pointed at a
closed port (a read command must not need the server). The anchor runs in the same loop, alternating
with the commands, so machine noise hits both alike. Budget: each median under 0.25 x the anchor's.
A second line, "floor", imports only what any typer command reading a SQLite ledger loads (typer and
sqlite3; the read commands load no SQLAlchemy): no read command can start faster than it. With --status-all N, `status --all` over N engagements in another ledger, in-process
(typer's CliRunner, output not a terminal) and as a command; budget 200 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.results import Run, add_argument
from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.configs.schema import Engagement
from phasegate.ledger import engagements
from phasegate.ledger.db import make_engine, sessions, transaction, upgrade
from phasegate.ops.servers import free_port

BUDGET = 0.25
ANCHOR = ["-c", "import prefect"]
FLOOR = ["-c", "import typer, sqlite3"]
STATUS_BUDGET = 0.200
COMMANDS = {
    "phasegate --help": ["--help"],
    "phasegate status": ["status"],
    "phasegate gate list": ["gate", "list"],
    "phasegate engagement list": ["engagement", "list"],
}


def ledger(home: Path, count: int) -> None:
    url = f"sqlite:///{home / 'ledger.db'}"
    upgrade(url)
    engine = make_engine(url)
    template = load_engagement(ENGAGEMENTS_DIR / "acme-churn.yaml").model_dump(mode="json")
    with transaction(sessions(engine)) as session:
        for n in range(count):
            engagements.register(session, Engagement.model_validate(
                template | {"id": f"bench-{n:03d}", "name": f"Bench {n}", "slack_channel": f"C0BENCH{n:03d}"}))
    engine.dispose()


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--engagements", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="2 repeats, 3 engagements")
    parser.add_argument("--status-all", type=int, default=None, metavar="N",
                        help="time `status --all` at N engagements (default 1000; 0 with --quick)")
    add_argument(parser)
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.engagements = 2, 3
    if args.status_all is None:
        args.status_all = 0 if args.quick else 1000
    run = Run("cli", quick=args.quick, results=args.results,
              sizes={"repeat": args.repeat, "engagements": args.engagements, "status_all": args.status_all})
    home = Path(tempfile.mkdtemp(prefix="phasegate-bench-"))
    ledger(home, args.engagements)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHASEGATE_", "PREFECT_"))}
    env |= {"PHASEGATE_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
            "PREFECT_HOME": str(home / "prefect"), "COLUMNS": "120"}
    runner = ["-c", "from phasegate.cli.main import main; main()"]
    times: dict[str, list[float]] = {name: [] for name in ["import prefect", "floor", *COMMANDS]}
    for _ in range(args.repeat):
        times["import prefect"].append(timed(ANCHOR, env))
        times["floor"].append(timed(FLOOR, env))
        for name, argv in COMMANDS.items():
            times[name].append(timed([*runner, *argv], env))
    anchor = statistics.median(times["import prefect"])
    print(f"{'command':<28} {'median':>8} {'worst':>8} {'x import prefect':>17}   budget < {BUDGET:g} x")
    for name, values in times.items():
        median = statistics.median(values)
        ratio = median / anchor
        verdict = {"import prefect": "(anchor)", "floor": "(floor)"}.get(name, "ok" if ratio < BUDGET else "MISS")
        print(f"{name:<28} {median * 1000:>6.0f}ms {max(values) * 1000:>6.0f}ms {ratio:>17.2f}   {verdict}")
        if name != "import prefect":
            run.figure(f"B-CLI: {name}" if name != "floor" else "B-CLI floor: typer + sqlite3 imported",
                       round(median * 1000, 1), "ms", anchor=("import prefect", round(anchor * 1000, 1)),
                       target="" if name == "floor" else f"< {BUDGET:g} x",
                       met=None if name == "floor" else ratio < BUDGET, note=f"median of {args.repeat}")
    if args.status_all:
        status_all(args.status_all, args.repeat, env, runner, run)
    run.write()


def status_all(count: int, repeat: int, env: dict[str, str], runner: list[str], run: Run) -> None:
    """`status --all` over `count` engagements: in-process and as a command, medians of `repeat` + 1."""
    from typer.testing import CliRunner

    from phasegate.cli.main import only

    home = Path(tempfile.mkdtemp(prefix="phasegate-bench-status-"))
    ledger(home, count)
    env = env | {"PHASEGATE_HOME": str(home)}
    invoke = CliRunner(env=env)
    inside, cpu, command = [], [], []
    for _ in range(repeat + 1):
        started, used = time.perf_counter(), time.process_time()
        result = invoke.invoke(only(["status", "--all"]), ["status", "--all"])  # as main() runs it
        inside.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
        if result.exit_code != 0 or result.stdout.count("\n") < count:
            raise SystemExit(f"status --all failed: {result.output[-500:]}")
        command.append(timed([*runner, "status", "--all"], env))
    for name, values in (("in-process", inside[1:]), ("in-process CPU", cpu[1:]), ("as a command", command[1:])):
        median = statistics.median(values)
        verdict = "ok" if median < STATUS_BUDGET else "MISS"
        print(f"status --all, {count} engagements, {name:<15} {median * 1000:>6.0f}ms (worst {max(values) * 1000:.0f}ms)"
              f"   budget < {STATUS_BUDGET * 1000:.0f} ms: {verdict}")
        run.figure(f"`status --all` at {count:,} engagements, {name}", round(median * 1000, 1), "ms",
                   target="" if name == "in-process CPU" else f"< {STATUS_BUDGET * 1000:.0f} ms",
                   met=None if name == "in-process CPU" else median < STATUS_BUDGET,
                   note=f"median of {repeat}, worst {max(values) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
