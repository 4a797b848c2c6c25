"""`phasegate report weekly` and `phasegate status`: the weekly report on demand, the portfolio live.

Registered in `phasegate.cli.main` with `app.add_typer`. `status` reads the ledger only, in a constant
number of queries, and imports neither Prefect nor the Jira or Slack clients.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from phasegate.ledger.read import Reader
    from phasegate.reports.status_view import Page

report_app = typer.Typer(help="Weekly status reports.", no_args_is_help=True)
status_app = typer.Typer(help="The portfolio: every engagement's phase, week, status and gates.")
out = Console(soft_wrap=True)
RAG_STYLE = {"green": "green", "amber": "yellow", "red": "bold red"}
HEADINGS = ("engagement", "phase", "week", "RAG", "open gates", "overdue", "waiting for", "timebox ends")


@report_app.command("weekly")
def report_weekly(engagement_id: Annotated[str | None, typer.Argument(help="One engagement (default: every "
                                                                            "active one).")] = None,
                  post: Annotated[bool, typer.Option("--post/--no-post", help="Post to Slack (once per "
                                                                               "ISO week) or only print.")] = True) -> None:
    """Collect this week's report now, print it, and post it to the engagement's channel."""
    from rich.progress import Progress

    from phasegate.cli.base import guarded
    from phasegate.ledger.models import utcnow
    from phasegate.orchestration.runtime import Runtime
    from phasegate.reports import collect, render

    def run(rt: Runtime) -> None:
        now = utcnow()
        ids = collect.due(rt, now, [engagement_id] if engagement_id else None, force=True)
        if engagement_id and not ids:
            from phasegate.errors import NotFound

            raise NotFound(f"{engagement_id} is not an active engagement in the ledger")
        with Progress(console=out, transient=True) as bar:
            task = bar.add_task("collecting evidence", total=len(ids))
            collected = collect.collect(rt, ids, now, done=lambda _id: bar.advance(task))
        deliveries, failed = collect.deliver_all(rt, collected.reports, post=post)
        for report in collected.reports:
            out.print(render.markdown(report), markup=False, highlight=False)
            out.print()
        for d in deliveries:
            state = (("posted" if d.posted_now else "already posted this week") if post
                     else "recorded, not posted (the hourly run posts it at its time)") + (", late" if d.late else "")
            out.print(f"{d.subject} {d.week}: {state}" + (f"; chart {d.chart_path}" if d.chart_path else ""),
                      markup=False)
        for engagement, reason in {**collected.failures, **failed}.items():
            out.print(f"{engagement}: no report delivered: {reason}", markup=False)
        if post:
            digest = collect.post_digest(rt, now)
            if digest:
                done = "posted to" if digest[1] else "already posted this week to"
                out.print(f"portfolio digest {done} {rt.settings.portfolio_channel}")

    guarded(run)


@status_app.callback(invoke_without_command=True)
def status(as_json: Annotated[bool, typer.Option("--json", help="One JSON document, for scripts.")] = False,
           limit: Annotated[int, typer.Option("--limit", min=1, help="How many engagements to show, by id.")] = 50,
           show_all: Annotated[bool, typer.Option("--all", help="Every engagement, finished ones included.")] = False
           ) -> None:
    """Engagements in progress: phase, week, RAG, open and overdue gates, who is blocking, next timebox end."""
    import datetime as dt

    from phasegate.cli.base import reading
    from phasegate.reports.status_view import page, rows

    def read(conn: Reader) -> tuple[Page, list[dict[str, Any]]]:
        shown = page(conn, limit=None if show_all else limit, finished=show_all)
        return shown, rows(conn, dt.datetime.now(dt.UTC), shown.ids) if shown.ids else []

    shown, found = reading(read)
    left_out = [f"{shown.matching - len(found)} more in progress (--limit N)"] if shown.matching > len(found) else []
    if shown.finished:
        left_out.append(f"{shown.finished} finished (--all)")
    if as_json:
        print(json.dumps({"engagements": found, "matching": shown.matching, "finished_not_shown": shown.finished},
                         indent=2))
        return
    status_table(found)
    for r in found:
        for reason in r["rag_reasons"]:
            out.print(f"  {r['id']}: {reason}", markup=False, highlight=False)
    if left_out:
        out.print(f"{len(found)} shown; not shown: {', '.join(left_out)}", markup=False, highlight=False)


def status_table(found: list[dict[str, Any]]) -> None:
    """A rich table on a terminal; plain aligned columns otherwise (a pipe, a file: faster, and greppable)."""
    cells = [[r["id"], r["phase"] or r["state"], f"{r['week']}/{r['planned_weeks']}" if r["week"] else "-",
              r["rag"].upper(), ", ".join(r["open_gates"]) or "-", ", ".join(r["overdue_gates"]) or "-",
              ", ".join(r["blocking"]) or "-", r["timebox_ends_on"] or "-"] for r in found]
    if not out.is_terminal:
        lines = [list(HEADINGS), *cells]
        widths = [max(len(line[i]) for line in lines) for i in range(len(HEADINGS) - 1)]
        print("\n".join("  ".join([*(c.ljust(w) for c, w in zip(line, widths, strict=False)), line[-1]]).rstrip()
                        for line in lines))
        return
    from rich.table import Table

    table = Table(*HEADINGS)
    for r, row in zip(found, cells, strict=True):
        row[3] = f"[{RAG_STYLE[r['rag']]}]{row[3]}[/]"
        table.add_row(*row)
    out.print(table)
