"""B-WEEKLY: the weekly collection for 50 engagements x 2,000 Jira issues, against the budget.

    .venv/bin/python -m bench.weekly            # --engagements 50 --issues 2000 --latency 0.02

Each engagement has its own Jira site (a Jira Cloud stand-in paging 100 issues, as Cloud does when
fields are asked for, with 20 ms added to every request) and one milestone whose JQL filter matches
its 2,000 issues. The Jira sites run in a child process, so the memory and CPU measured are
phasegate's, not the stand-ins'. The run collects every report concurrently, renders the charts and posts to the
Slack stand-in, then prints Jira requests, wall time and peak memory beside the budget:
at most 1 Jira request per 100 issues + 3 per engagement, under 60 s, under 500 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import resource
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from bench.results import Run, add_argument
from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import engagements, phases
from phasegate.ledger.db import transaction, upgrade
from phasegate.ledger.models import utcnow
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import collect
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.metrics_api import MetricsStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.settings import Settings

CLOUD_PAGE = 100  # search/jql returns at most 100 issues a page when fields are requested


def engagement(template: Engagement, n: int) -> Engagement:
    data = template.model_dump(mode="json")
    data.update(id=f"bench-{n:02d}", name=f"Bench engagement {n}", slack_channel=f"C0BENCH{n:02d}",
                start_date=(dt.date.today() - dt.timedelta(weeks=5)).isoformat(),
                jira={"url": f"https://bench{n:02d}.atlassian.net", "project": f"BENCH{n:02d}", "deployment": "cloud"})
    data["metrics"][0]["source"]["url"] = f"/api/2.0/mlflow/runs/get?run_id=bench-{n:02d}"
    data["metrics"][1]["source"]["url"] = f"/api/2.0/mlflow/runs/get?run_id=bench-{n:02d}"
    data["phases"]["poc"]["milestones"] = [{"key": "delivery", "title": "PoC delivery", "jql": {"labels": ["poc"]}}]
    return Engagement.model_validate(data)


def jira_sites(projects: list[str], issues: int, latency: float, conn: Connection) -> None:
    """Child process: one Jira stand-in per project; sends their URLs, then request counts at the end."""
    sites = []
    for project in projects:
        jira = JiraStandin("cloud", page_size=CLOUD_PAGE)
        jira.add_project(project)
        for i in range(issues):
            jira.add_issue(project, f"Story {i}", labels=["poc"], done=i % 3 == 0, story_points=float(i % 5 + 1))
        jira.start()
        jira.latency = latency
        sites.append(jira)
    conn.send([s.url for s in sites])
    conn.recv()  # the run is over
    conn.send(sum(len(s.requests) for s in sites))
    for site in sites:
        site.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engagements", type=int, default=50)
    parser.add_argument("--issues", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.02)
    add_argument(parser)
    args = parser.parse_args()
    run = Run("weekly", quick=args.engagements * args.issues < 50 * 2000, results=args.results,
              sizes={"engagements": args.engagements, "issues": args.issues, "jira_latency_s": args.latency})
    template = load_engagement(ENGAGEMENTS_DIR / "acme-churn.yaml")
    slack, metrics = SlackStandin(), MetricsStandin()
    slack.start()
    metrics.start()
    home = Path(tempfile.mkdtemp(prefix="phasegate-bench-"))
    url = f"sqlite:///{home / 'ledger.db'}"
    upgrade(url)
    configs = [engagement(template, n) for n in range(args.engagements)]
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=jira_sites, args=([c.jira.project for c in configs], args.issues, args.latency, theirs))
    child.start()
    try:
        urls: list[str] = ours.recv()
        for config in configs:
            metrics.set(config.id, f1=0.86, data_quality_score=0.92)
        local = JiraStandin()  # for its default credentials only
        settings = Settings(home=home, database_url=url, slack_api_url=slack.base_url, slack_bot_token=slack.bot_token,
                            jira_sites={c.jira.url: u for c, u in zip(configs, urls, strict=True)},
                            jira_email=local.email, jira_api_token=local.api_token, metrics_base_url=metrics.url)
        rt = Runtime(settings)
        with transaction(rt.sessions) as session:
            for config in configs:
                engagements.register(session, config)
                phases.start_phase(session, config, Phase.POC, requested_by=config.pm_slack_user,
                                   flow_run_id=None, today=dt.date.today())
        started = time.perf_counter()
        now = utcnow()
        collected = collect.collect(rt, collect.due(rt, now, force=True), now)
        collected_at = time.perf_counter()
        delivered, failed = collect.deliver_all(rt, collected.reports, post=True)
        finished = time.perf_counter()
        rt.close()
        ours.send("done")
        requests: int = ours.recv()
        budget_requests = args.engagements * (args.issues // 100 + 3)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        wall = finished - started
        problems = {**collected.failures, **failed}
        print(f"engagements {args.engagements} x {args.issues} issues, {args.latency * 1000:g} ms per Jira request, "
              f"{rt.settings.weekly_concurrency} at a time")
        print(f"reports {len(collected.reports)}, posted {sum(d.posted_now for d in delivered)}, "
              f"charts {sum(1 for d in delivered if d.chart_file_id)}, failures {len(problems)}")
        print(f"jira requests  {requests:>8}   budget <= {budget_requests}   {'ok' if requests <= budget_requests else 'OVER'}")
        print(f"wall time      {wall:>7.1f}s   budget < 60 s   {'ok' if wall < 60 else 'OVER'}"
              f"   (collect {collected_at - started:.1f} s, deliver {finished - collected_at:.1f} s)")
        print(f"peak memory    {rss_mb:>6.0f}MB   budget < 500 MB   {'ok' if rss_mb < 500 else 'OVER'}"
              "   (max RSS of the process that ran phasegate, with the Slack and metric stand-ins)")
        for engagement_id, reason in problems.items():
            print(f"  {engagement_id}: {reason}")
        sizes = f"{args.engagements} × {args.issues} issues"
        run.figure(f"B-WEEKLY {sizes}: Jira requests", requests, "requests", target=f"<= {budget_requests}",
                   met=requests <= budget_requests)
        run.figure(f"B-WEEKLY {sizes}: wall time", round(wall, 1), "s", target="< 60 s", met=wall < 60,
                   note=f"{args.latency * 1000:g} ms per Jira request; failures {len(problems)}")
        run.figure(f"B-WEEKLY {sizes}: peak RSS", round(rss_mb), "MB", target="< 500 MB", met=rss_mb < 500)
        run.write()
    finally:
        child.join(timeout=30)
        slack.stop()
        metrics.stop()


if __name__ == "__main__":
    main()
