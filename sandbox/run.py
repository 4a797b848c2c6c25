"""`phasegate sandbox [FILE…]`: the PM's own engagements on this machine, answered in a web page.

The same local world as the demo (stand-ins for Slack, Jira and the metric server, a local Prefect
server, the served flows and the real Slack endpoint), with the PM's files registered instead of
the demo's and nobody scripted: the PM starts phases, closes milestones and answers gates in the page.
"""

from __future__ import annotations

import shutil
import threading
import webbrowser
from pathlib import Path

from rich.console import Console

from phasegate.ops.servers import ServerHandle
from phasegate.sandbox.page import World, create_page
from phasegate.sandbox.world import SECRET, Demo, local_world
from phasegate.settings import Settings

console = Console(soft_wrap=True)


def start_page(demo: Demo, port: int = 0) -> ServerHandle:
    """The page, served until the demo's stack closes."""
    from phasegate.ops.servers import serve_in_thread

    jira = {e: demo.jira_for(e) for e in demo.engagement_ids()}
    world = World(demo.rt, demo.slack, jira, demo.metrics, demo.endpoint, SECRET)
    return serve_in_thread(create_page(world), "127.0.0.1", port)


def sandbox_settings(base: Settings) -> Settings:
    home = base.home / "sandbox"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    return Settings(home=home, database_url="")


def run_sandbox(base: Settings, files: list[Path], *, port: int = 0, open_browser: bool = True) -> None:
    with local_world(sandbox_settings(base), files or None) as demo:
        page = start_page(demo, port)
        try:
            console.print(f"sandbox page:  {page.url}  (answer gates as any approver in the file)")
            console.print(f"Prefect UI:    {demo.api.removesuffix('/api')}")
            console.print(f"ledger:        {demo.rt.settings.ledger_url}")
            console.print(f"another terminal: . {demo.rt.settings.home / 'env.sh'}  (then `phasegate status`, "
                          "`phasegate cr submit ...`, `phasegate report weekly ...` act on this sandbox)",
                          markup=False, highlight=False)
            console.print("Ctrl-C stops everything.")
            if open_browser:
                webbrowser.open(page.url)
            threading.Event().wait()
        finally:
            page.stop()
