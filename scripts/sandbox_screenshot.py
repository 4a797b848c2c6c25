"""Take the README's sandbox screenshot (docs/sandbox.png): the sandbox page with a weekly report and
its burn-up chart (phasegate/reports/chart.py) in the report's thread.

    .venv/bin/python scripts/sandbox_screenshot.py [OUT]        # default: docs/sandbox.png

It runs the sandbox's local world (stand-ins, a Prefect server, the served flows, the Slack endpoint)
for the demo's acme-churn file with its start date moved to five weeks ago, so the PoC is under way:
the PoC is started, its milestone issues and the work under them get a history in the Jira
stand-in (created since the start, some resolved week by week), the scope that grew is covered by
an approved change request (the demo's, sandbox/demo_changes.py), the weekly report is posted by the
served weekly-status deployment, and Debian's chromium (with chromedriver, driven by selenium) opens
the page and photographs the report. Takes one to two minutes; needs /usr/bin/chromium and
/usr/bin/chromedriver (apt install chromium chromium-driver).
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from phasegate.configs.schema import Phase
from phasegate.gates import operations
from phasegate.ledger import engagements, spend
from phasegate.ledger.db import transaction
from phasegate.sandbox import demo_changes
from phasegate.sandbox.run import start_page
from phasegate.sandbox.world import Demo, local_world, wait_for
from phasegate.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ENGAGEMENT, PM = "acme-churn", "U0PMACME01"
WEEKS_IN = 5  # how far into its 8-week PoC the engagement is
# Work under each PoC milestone, as the vendor files it in Jira: (milestone, summary, week created, week resolved)
WORK = [("data-readiness", "Profile the CRM extract", 0, 1), ("data-readiness", "Fix missing churn labels", 0, 2),
        ("data-readiness", "Data quality report", 1, 2), ("baseline-model", "Feature pipeline", 1, 3),
        ("baseline-model", "Holdout split and leakage checks", 1, 3), ("baseline-model", "Logistic baseline", 2, 4),
        ("baseline-model", "Gradient boosting baseline", 2, 4.5), ("baseline-model", "Calibration", 3, None),
        ("poc-report", "Model card", 3, None), ("poc-report", "Go/no-go recommendation", 4, None)]


def engagement_file(folder: Path, start: dt.date) -> Path:
    text = (ROOT / "configs/engagements/acme-churn.yaml").read_text(encoding="utf-8")
    line = "start_date: 2026-08-03"
    if line not in text:
        raise RuntimeError(f"acme-churn.yaml no longer says {line!r}; update this script")
    path = folder / "acme-churn.yaml"
    path.write_text(text.replace(line, f"start_date: {start.isoformat()}"), encoding="utf-8")
    return path


def history(demo: Demo, start: dt.datetime) -> None:
    """The milestone issues created at the start and the work under them, some done week by week."""
    jira = demo.jira[ENGAGEMENT]

    def linked() -> dict[str, str] | None:
        with transaction(demo.rt.sessions) as session:
            links = engagements.links(session, ENGAGEMENT, Phase.POC)
        return links if {"data-readiness", "baseline-model", "poc-report"} <= set(links) else None

    links = wait_for("the PoC's milestone issues", linked)
    for key in links.values():
        jira.backdate(key, created=start)
    for milestone, summary, created, resolved in WORK:
        issue = jira.add_issue("ACME", summary, epic=links[milestone])
        if resolved is not None:
            jira.set_status(issue, "Done", done=True)
        jira.backdate(issue, created=start + dt.timedelta(weeks=created),
                      resolved=start + dt.timedelta(weeks=resolved) if resolved is not None else None)
    jira.set_status(links["data-readiness"], "Done", done=True)
    jira.backdate(links["data-readiness"], created=start, resolved=start + dt.timedelta(weeks=2.5))


def photograph(url: str, out: Path, profile: Path) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"  # Debian's; selenium-manager must not download one
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--window-size=1280,1500",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        driver.get(url)
        WebDriverWait(driver, 60, poll_frequency=0.3).until(
            lambda d: any(img.get_attribute("naturalWidth") not in (None, "0")
                          for img in d.find_elements(By.CSS_SELECTOR, "img.file")), "the chart in the page")
        report = driver.find_element(By.XPATH, "//img[@class='file']/ancestor::div[@data-ts][1]")  # its message
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'}); window.scrollBy(0, -8);", report)
        time.sleep(0.5)
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()


def main(out: Path) -> None:
    today = dt.date.today()
    start_day = today - dt.timedelta(weeks=WEEKS_IN)
    with tempfile.TemporaryDirectory(prefix="phasegate-shot-") as tmp:
        folder = Path(tmp)
        with local_world(Settings(home=folder / "home", database_url=""),
                         [engagement_file(folder, start_day)]) as demo:
            demo.metrics.set("acme-churn-poc", f1=0.81, data_quality_score=0.93)
            operations.start_phase(demo.rt, ENGAGEMENT, Phase.POC, PM)
            demo.wait_phase_run(ENGAGEMENT, Phase.POC)
            history(demo, demo.phase_started(ENGAGEMENT, Phase.POC))
            demo_changes.scope_and_changes(demo)  # the work filed since the baseline, covered by CR-1
            with transaction(demo.rt.sessions) as session:
                config = engagements.config_of(engagements.get(session, ENGAGEMENT))
                spend.record(session, config, Phase.POC, "98400", by=PM, note="Northwind invoices, weeks 1-4")
            demo_changes.weekly(demo, ENGAGEMENT)
            page = start_page(demo)
            try:
                photograph(page.url, out, folder / "chromium")
            finally:
                page.stop()
    print(f"screenshot written to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs/sandbox.png")
