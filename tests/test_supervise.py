"""`phasegate up`'s supervision loop against a real Prefect server: its catch-up after the API comes
back runs beside the loop, so a server that dies again meanwhile is restarted at once, and it says one
summary line however many engagements warn (issue 21 item 8: 31 engagements held the next restart
back 44-47 s and printed 31 warning lines per pass)."""

from __future__ import annotations

import contextvars
import os
import signal
import threading
import uuid
from pathlib import Path

import pytest
from helpers import process_tree, register, wait_until, with_changes
from prefect_seed import seeded

from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import followups, phases
from phasegate.ledger.db import transaction, upgrade
from phasegate.ops.local import Stack
from phasegate.ops.supervise import Supervisor, catch_up_lines
from phasegate.orchestration.runtime import Runtime
from phasegate.settings import Settings
from phasegate.states import Prompt

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ENGAGEMENTS = 31


def many_with_lost_runs(rt: Runtime, acme: Engagement, count: int) -> None:
    """`count` active engagements whose phase runs Prefect has never heard of: the catch-up replaces
    each, and with no deployment served here each replacement is a warning."""
    for number in range(count):
        engagement = with_changes(acme, id=f"eng-{number:02d}", slack_channel=f"C0ENG{number:04d}")
        register(rt, engagement)
        with transaction(rt.sessions) as session:
            phases.start_phase(session, engagement, Phase.POC, requested_by="U0PMACME01",
                               flow_run_id=str(uuid.uuid4()), today=engagement.start_date)


def test_the_catch_up_runs_beside_the_loop_and_says_one_line(tmp_path: Path, acme: Engagement) -> None:
    settings = Settings(home=tmp_path, database_url="")
    upgrade(settings.ledger_url)
    rt = Runtime(settings)
    many_with_lost_runs(rt, acme, ENGAGEMENTS)
    said: list[str] = []
    held, holding = threading.Event(), threading.Event()
    log = tmp_path / "catch-up.log"

    def catch_up() -> list[str]:
        """The real catch-up, held until the test lets it go (a slow Prefect, many engagements)."""
        holding.set()
        held.wait()
        return catch_up_lines(rt, log)

    try:
        with Stack(seeded(settings)) as stack:
            stack.prefect_server()
            supervisor = Supervisor(stack, catch_up=catch_up, say=said.append)
            first = threading.Thread(target=contextvars.copy_context().run, args=(supervisor.check,), daemon=True)
            first.start()  # the API answers: the catch-up starts
            wait_until(holding.is_set, what="the catch-up to start")
            first.join(60)
            assert not first.is_alive(), "the supervision loop waited for the catch-up"

            assert stack.server is not None
            for pid in reversed(process_tree(stack.server.pid)):  # `prefect server start` and its uvicorn
                os.kill(pid, signal.SIGKILL)
            stack.server.wait()
            supervisor.check()  # while the catch-up is still held
            assert "the Prefect server was killed by SIGKILL; starting it again (restart 1 of 3 allowed " \
                   "within 10 minutes)" in said and "the Prefect server is back" in said
            assert not held.is_set()
            supervisor.check()  # the API is back: a catch-up is asked for again, after the running one

            held.set()
            wait_until(lambda: not supervisor.catch_up.running, timeout=120, interval=0.2,
                       what="both catch-ups to finish")
    finally:
        held.set()
        rt.close()
    summaries = [line for line in said if line.startswith("caught up in ")]
    assert len(summaries) == 2, "\n".join(said)
    assert f"{ENGAGEMENTS} warning(s), left to the gate watch" in summaries[0]
    assert f"all in {log}" in summaries[0] and "eng-00" in summaries[0]
    assert not [line for line in said if line.startswith("warning")]
    logged = log.read_text().splitlines()
    assert len(logged) == 2 * ENGAGEMENTS
    assert {line.split()[2].rstrip(":") for line in logged} == {f"eng-{n:02d}" for n in range(ENGAGEMENTS)}


def test_a_refresher_that_exits_is_started_again_and_takes_the_marks_left(tmp_path: Path) -> None:
    """`up`'s refresher (the prompt redraws and wakes after answers) is one of its children: killed, it
    is started again on the next check, and the new one takes the marks waiting in the ledger (here
    one for a gate that is gone, which is done at once). No Prefect API is needed for that."""
    settings = Settings(home=tmp_path, database_url="")
    upgrade(settings.ledger_url)
    rt = Runtime(settings)
    said: list[str] = []
    try:
        with Stack(settings) as stack:
            stack.api_url = "http://127.0.0.1:9/api"  # nothing answers there
            first = stack.refresher()
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
            with transaction(rt.sessions) as session:
                followups.mark(session, Prompt.GATE, 424242, wake=True)
            Supervisor(stack, catch_up=list, say=said.append).check()
            assert said[:2] == ["the refresher was killed by SIGKILL; starting it again (restart 1 of 3 allowed "
                                "within 10 minutes)", "the refresher is back"]
            assert stack.refresh is not None and stack.refresh is not first and stack.refresh.poll() is None

            def left() -> int:
                with transaction(rt.sessions) as session:
                    return followups.waiting(session)
            wait_until(lambda: left() == 0, timeout=60, interval=0.2, what="the new refresher to take the mark")
    finally:
        rt.close()


def test_a_prefect_port_taken_before_the_server_binds_it_is_replaced_by_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between choosing a free port and the server binding it another process can take it (seen in CI
    with four test workers starting servers): the server exits at start and is tried on another port."""
    import socket

    from phasegate.ops import local
    from phasegate.ops.servers import free_port

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = iter([taken.getsockname()[1]])
    monkeypatch.setattr(local, "free_port", lambda: next(ports, None) or free_port())
    settings = Settings(home=tmp_path, database_url="", prefect_port=0)  # 0: a port the stack chooses
    try:
        with Stack(seeded(settings)) as stack:
            url = stack.prefect_server()
            assert f":{taken.getsockname()[1]}/" not in url
            assert stack.server is not None and stack.server.poll() is None
    finally:
        taken.close()
