"""The sandbox page in a real browser: Debian's chromium, driven with selenium, against the whole
local world (stand-ins, Prefect server, served flows, the real Slack endpoint) for an engagement
file written by `engagement init`. What the PM does in the README's "Rehearse your own engagement":
start the PoC, ask for the review, answer GO as two approvers through the waiver modal, and see the
prompt decided and the next phase kick off.

Set SANDBOX_SCREENSHOT=PATH to keep this run's screenshot (the README's, a weekly report with its
chart, is taken by scripts/sandbox_screenshot.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prefect_seed import seeded

from phasegate.configs.loader import load_engagement
from phasegate.configs.schema import Phase
from phasegate.configs.template import engagement_template
from phasegate.ledger import engagements, gates
from phasegate.ledger.db import transaction
from phasegate.sandbox.run import start_page
from phasegate.sandbox.world import Demo, local_world
from phasegate.settings import Settings
from phasegate.states import EngagementState, GateState, Outcome

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent (.ci/run installs Debian's chromium and chromium-driver)",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402  (after the skip: selenium alone cannot run the test)
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
ENGAGEMENT = "rehearsal"
WAIT = 180  # generous: the flows start in a fresh Prefect server on a busy two-core machine


@pytest.fixture
def engagement_file(tmp_path: Path) -> Path:
    """`engagement init`'s file, with the PoC report linked to an existing Jira issue by key (the
    sandbox seeds it in the Jira stand-in)."""
    text = engagement_template(ENGAGEMENT, today=dt.date.today())
    path = tmp_path / f"{ENGAGEMENT}.yaml"
    path.write_text(text, encoding="utf-8")
    project = load_engagement(path).jira.project
    line = "- {key: poc-report, title: PoC report with the go/no-go recommendation, owner: vendor}"
    if line not in text:
        raise RuntimeError("the template's poc-report milestone changed; update this test")
    path.write_text(text.replace(line, line[:-1] + f", jira_issue: {project}-7}}"), encoding="utf-8")
    return path


@pytest.fixture
def world(tmp_path: Path, engagement_file: Path) -> Iterator[Demo]:
    with local_world(seeded(Settings(home=tmp_path / "home", database_url="")), [engagement_file]) as demo:
        yield demo


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # Debian's; selenium-manager must not download one
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,1150", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def until(driver: WebDriver, what: str, probe: Callable[[WebDriver], object]) -> object:
    return WebDriverWait(driver, WAIT, poll_frequency=0.3, ignored_exceptions=(StaleElementReferenceException,)
                         ).until(probe, f"timed out waiting for {what}")


def text_of(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def click(driver: WebDriver, css: str) -> None:
    """Click the element now matching `css` (the page re-renders a part when its content changes,
    so a found element can go stale before the click lands)."""
    def clicked(d: WebDriver) -> bool:
        d.find_element(By.CSS_SELECTOR, css).click()
        return True
    until(driver, f"{css} to be clickable", clicked)


def answer_go_with_waiver(driver: WebDriver, user: str, reason: str) -> None:
    Select(driver.find_element(By.ID, "user")).select_by_value(user)
    click(driver, ".actions button.primary")  # GO
    until(driver, "the waiver modal", lambda d: d.find_element(By.ID, "modal-back").is_displayed())
    driver.find_element(By.CSS_SELECTOR, "#modal textarea").send_keys(reason)
    click(driver, "#modal-submit")
    until(driver, f"{user}'s submission", lambda d: f"{user} submitted the modal: endpoint answered 200"
          in text_of(d, "status"))


def test_a_new_engagement_is_answered_in_the_page_and_its_next_phase_starts(
        capsys: pytest.CaptureFixture[str], world: Demo, browser: WebDriver, tmp_path: Path) -> None:
    said = [line.split("  [")[0].strip().split(":")[0] for line in capsys.readouterr().out.splitlines()]
    assert said == ["stand-ins", "ledger", "starting a local Prefect server (the longest step", "Prefect server",
                    "flows served", "Slack endpoint", "registered"]  # each part said as it comes up
    page = start_page(world)
    try:
        browser.get(page.url)
        until(browser, "the engagement's channel", lambda d: ENGAGEMENT in text_of(d, "channels"))

        assert text_of(browser, "start") == "Start Phase 0"  # the template begins before signing
        click(browser, "#start")
        until(browser, "the Phase 0 kickoff", lambda d: "Phase 0: Choosing the vendor started" in text_of(d, "messages"))
        click(browser, "#review")
        until(browser, "the G0 prompt's GO button", lambda d: d.find_elements(By.CSS_SELECTOR, ".actions button.primary"))
        assert "Named individuals the vendor commits" in text_of(browser, "messages")
        answer_go_with_waiver(browser, "U0SPONSOR1", "waiver: our own checks are done, attested on Monday")
        answer_go_with_waiver(browser, "U0TECHLEAD", "waiver: references called, notes in the wiki")
        until(browser, "the PoC kickoff", lambda d: "Phase 1: Discovery and PoC started" in text_of(d, "messages"))
        until(browser, "the PoC to be under way", lambda d: "active · poc" in text_of(d, "phase-state"))
        click(browser, "#review")
        until(browser, "the G1 prompt's GO button", lambda d: d.find_elements(By.CSS_SELECTOR, ".actions button.primary"))
        jira_row = text_of(browser, "jira")
        assert "poc-report" in jira_row and "-7 To Do" in jira_row, jira_row  # the issue named in the file is there

        answer_go_with_waiver(browser, "U0SPONSOR1", "waiver: the client accepts the baseline as it is")
        answer_go_with_waiver(browser, "U0VENDLEAD", "waiver: the report follows in week one of development")

        until(browser, "the decided prompt", lambda d: "Decided: GO" in text_of(d, "messages"))
        until(browser, "the development kickoff",
              lambda d: "Phase 2: Development and iteration started" in text_of(d, "messages"))
        messages = text_of(browser, "messages")
        assert "GO with waiver via slack: “waiver: the client accepts the baseline as it is”" in messages, messages
        assert not browser.find_elements(By.CSS_SELECTOR, ".actions button.primary"), "the decided prompt has no buttons"
        assert not browser.find_element(By.ID, "start").is_displayed()  # the first phase starts once

        browser.find_element(By.ID, "slash-text").send_keys(f"cr {ENGAGEMENT}")  # typed in the channel
        click(browser, "#slash")
        until(browser, "the change-request form", lambda d: d.find_element(By.ID, "modal-back").is_displayed())
        assert "change request" in text_of(browser, "modal").lower()
        click(browser, "#modal-cancel")
        shot = tmp_path / "sandbox.png"
        browser.save_screenshot(str(shot))
        if os.environ.get("SANDBOX_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["SANDBOX_SCREENSHOT"])
    finally:
        page.stop()

    with transaction(world.rt.sessions) as session:
        gate = next(g for g in gates.all_gates(session) if g.engagement_id == ENGAGEMENT and g.phase is Phase.POC)
        answers = {d.approver: (d.outcome, d.reason) for d in gates.decisions(session, gate.id)}
        row = engagements.get(session, ENGAGEMENT)
    assert (gate.state, gate.outcome) == (GateState.DECIDED, Outcome.GO)
    assert answers == {"U0SPONSOR1": (Outcome.GO, "waiver: the client accepts the baseline as it is"),
                       "U0VENDLEAD": (Outcome.GO, "waiver: the report follows in week one of development")}
    assert (row.state, row.current_phase) == (EngagementState.ACTIVE, Phase.DEVELOPMENT)

    # the CLI in another terminal, pointed at the sandbox by the file it names (another HOME: no
    # ~/.phasegate of its own to fall back on)
    env_sh = world.rt.settings.home / "env.sh"
    assert env_sh.stat().st_mode & 0o077 == 0  # it holds the stand-ins' tokens
    phasegate = Path(sys.executable).with_name("phasegate")
    other = subprocess.run(["bash", "-c", f". {env_sh} && {phasegate} status --json"], capture_output=True, text=True,
                           timeout=120, env={"PATH": os.environ["PATH"], "HOME": str(tmp_path / "other-home")})
    assert other.returncode == 0, other.stderr
    (shown,) = json.loads(other.stdout)["engagements"]
    assert (shown["id"], shown["phase"]) == (ENGAGEMENT, Phase.DEVELOPMENT.value)
