"""`phasegate demo`: the example engagements end to end, with no credentials and no internet.

Local stand-ins answer for Slack, Jira and an MLflow-style metric server; a local Prefect server
runs the flows; scripted approvers answer the gates with signed requests to the real Slack
endpoint. The vendor's work is simulated by moving Jira issues and metric values. The world and
the scripted users' actions are in sandbox/world.py; this module holds the two scripts.

- acme-churn: scope drift found and covered by an approved change request (the PoC timebox moves),
  a second request rejected (sandbox/demo_changes.py), a weekly report; G1 GO, G2 GO, handover
  attestations, G3 ACCEPT — completed.
- globex-forecast: Phase 0 first: the client's checks attested, G0 GO with a written waiver (the
  vendor offered a fixed price, a red flag); then G1 EXTEND (F1 under threshold), a weekly report,
  then NO-GO — closed with the reason.
"""

from __future__ import annotations

import contextvars
import shutil
import threading
import time
from collections.abc import Callable

from phasegate.configs.schema import Phase
from phasegate.gates import operations
from phasegate.ledger import engagements, gates
from phasegate.ledger.db import transaction
from phasegate.rules import policy
from phasegate.rules.budget import extension_name
from phasegate.sandbox import demo_changes
from phasegate.sandbox.world import Demo, console, local_world
from phasegate.settings import Settings
from phasegate.states import Outcome, Via


def acme_churn(demo: Demo) -> None:
    """acme-churn's script: three phases, two change requests, a weekly report, completed."""
    e = "acme-churn"
    demo.metrics.set("acme-churn-poc", f1=0.88, data_quality_score=0.93)
    operations.start_phase(demo.rt, e, Phase.POC, "U0PMACME01")
    demo.wait_phase_run(e, Phase.POC)
    demo_changes.scope_and_changes(demo)
    demo_changes.weekly(demo, e)
    demo.finish_jira_work(e, Phase.POC)
    demo.review(e)
    g1 = demo.open_gate(e, Phase.POC)
    demo.click(g1, "U0SPONSOR1", Outcome.GO)
    demo.click(g1, "U0SPONSOR1", Outcome.GO)  # a double click records nothing more
    times = demo.answers(g1.id, "U0SPONSOR1")
    demo.say(e, f"  (the same click twice: recorded {'once' if times == 1 else f'{times} times'})")
    demo.click(g1, "U0VENDLEAD", Outcome.GO)
    demo.say(e, f"G1 decided: {demo.decided(g1).outcome.label}")  # type: ignore[union-attr]
    demo.wait_phase_run(e, Phase.DEVELOPMENT)
    demo.finish_jira_work(e, Phase.DEVELOPMENT)
    demo.review(e)
    g2 = demo.open_gate(e, Phase.DEVELOPMENT)
    demo.click(g2, "U0SPONSOR1", Outcome.GO)
    demo.click(g2, "U0TECHLEAD", Outcome.GO)
    demo.say(e, f"G2 decided: {demo.decided(g2).outcome.label}")  # type: ignore[union-attr]
    demo.wait_phase_run(e, Phase.HANDOVER)
    demo.finish_jira_work(e, Phase.HANDOVER)
    with transaction(demo.rt.sessions) as session:
        config = engagements.config_of(engagements.get(session, e))
        for key in ("pair-programming", "supervised-operation", "knowledge-transfer-drill", "data-deletion"):
            engagements.attest(session, config, Phase.HANDOVER, key, by="U0TECHLEAD",
                               note="seen by the client tech lead", via=Via.CLI)
    demo.say(e, f"handover attestations recorded by {demo.who(e, 'U0TECHLEAD')}")
    demo.review(e)
    g3 = demo.open_gate(e, Phase.HANDOVER)
    demo.click(g3, "U0SPONSOR1", Outcome.ACCEPT)
    demo.click(g3, "U0VENDLEAD", Outcome.ACCEPT)
    demo.say(e, f"G3 decided: {demo.decided(g3).outcome.label}")  # type: ignore[union-attr]
    demo.say(e, demo.ended(e))


def globex_forecast(demo: Demo) -> None:
    """globex-forecast's script: Phase 0 signed past a red flag, a PoC extended once, a weekly report, then stopped."""
    e = "globex-forecast"
    selection(demo, e)
    demo.metrics.set("globex-poc", f1=0.74)
    with transaction(demo.rt.sessions) as session:
        config = engagements.config_of(engagements.get(session, e))
        engagements.submit_metric(session, config, "data_quality_score", "0.94", by="U0PMGLOBEX")
    demo.wait_phase_run(e, Phase.POC)  # G0's GO carried the run on into the PoC
    demo.finish_jira_work(e, Phase.POC)
    demo.review(e)
    g1 = demo.open_gate(e, Phase.POC)
    # G1's evidence is frozen once its prompt is posted, so the extension's work can show now. Set
    # before the EXTEND: when the extension's two weeks are already over on the calendar, its gate
    # opens at once and must not read the old F1.
    demo.metrics.set("globex-poc", f1=0.76)
    demo.click(g1, "U0QUANTIX1", Outcome.EXTEND, "F1 0.74 is under 0.80; two more weeks on feature engineering")
    demo.say(e, f"G1 decided: {demo.decided(g1).outcome.label}; a new 2-week timebox starts")  # type: ignore[union-attr]
    demo_changes.weekly(demo, e)
    demo.review(e)
    g1b = demo.open_gate(e, Phase.POC, after=g1.id)
    demo.click(g1b, "U0LEEPARK1", Outcome.NO_GO, "F1 plateaued at 0.76 after the extension; not worth building")
    demo.say(e, f"G1 decided: {demo.decided(g1b).outcome.label}")  # type: ignore[union-attr]
    demo.say(e, demo.ended(e))


def selection(demo: Demo, e: str) -> None:
    """Phase 0: the client's own checks attested, then G0 answered GO by both client approvers, with a
    written waiver for the red flag the vendor's answers raise (a fixed price)."""
    operations.start_phase(demo.rt, e, Phase.SELECTION, "U0PMGLOBEX")
    demo.wait_phase_run(e, Phase.SELECTION)
    with transaction(demo.rt.sessions) as session:
        config = engagements.config_of(engagements.get(session, e))
        for key in ("data-readiness", "mlops-walkthrough", "references"):
            engagements.attest(session, config, Phase.SELECTION, key, by="U0GLXDATA1",
                               note="done by the client's data team", via=Via.CLI)
    demo.say(e, f"Phase 0 checks attested by {demo.who(e, 'U0GLXDATA1')}")
    demo.review(e)
    g0 = demo.open_gate(e, Phase.SELECTION)
    waiver = "waiver: the fixed price covers the PoC only; development is capped time and materials"
    demo.click(g0, "U0LEEPARK1", Outcome.GO, waiver)
    demo.click(g0, "U0GLXDATA1", Outcome.GO, waiver)
    decided = demo.decided(g0)
    with transaction(demo.rt.sessions) as session:
        snapshot = gates.snapshot_of(session, decided)
    assert decided.outcome is not None
    label = policy.outcome_label(decided.outcome, policy.is_waiver(decided.outcome, snapshot.unmet))
    demo.say(e, f"G0 decided: {label} (red flags: {'; '.join(snapshot.red_flags) or 'none'})")


def gate_summary(demo: Demo) -> list[str]:
    """One line per gate, for the end of the demo: its outcome, who answered what, its evidence digest."""
    with transaction(demo.rt.sessions) as session:
        read = [(g, gates.snapshot_of(session, g).unmet, gates.decisions(session, g.id))
                for g in gates.all_gates(session)]
    lines = []
    for g, unmet, decisions in read:  # names read after: `who` opens a transaction of its own
        answered = ", ".join(f"{demo.who(g.engagement_id, d.approver)} {policy.answer_label(d.outcome, unmet, d.reason or '')}"
                             for d in decisions)
        outcome = policy.outcome_label(g.outcome, policy.is_waiver(g.outcome, unmet)) if g.outcome else None
        when = f", after {extension_name(g.phase, g.timebox)}" if g.timebox > 1 else ""
        lines.append(f"{g.name}{when}: {outcome or g.state.value} [{answered}] evidence digest {g.digest}")
    return lines


def demo_settings(base: Settings) -> Settings:
    home = base.home / "demo"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    return Settings(home=home, database_url="")


def run_demo(base: Settings, keep: bool = False) -> None:
    started = time.monotonic()
    with local_world(demo_settings(base)) as demo:
        console.print(f"Prefect UI at {demo.api.removesuffix('/api')}, Slack endpoint at {demo.endpoint}")
        failures: list[BaseException] = []

        def guarded(script: Callable[[Demo], None]) -> Callable[[], None]:
            def run() -> None:
                try:
                    script(demo)
                except BaseException as exc:  # reported below, after both scripts stop
                    failures.append(exc)
            return run

        # each script runs in a copy of this context, which points Prefect's client at the local server
        threads = [threading.Thread(target=contextvars.copy_context().run, args=(guarded(s),), daemon=True)
                   for s in (acme_churn, globex_forecast)]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
        except KeyboardInterrupt:
            console.print("interrupted: stopping the stand-ins, the flows and the Prefect server")
            raise
        if failures:
            raise failures[0]
        console.print()
        for line in gate_summary(demo):
            console.print(line, markup=False, highlight=False)
        slack = demo.slack
        console.print(f"Slack stand-in saw {sum(len(slack.messages(c)) for c in ('C0ACMECHURN', 'C0GLOBEXFC'))} "
                      f"messages; prompts updated with chat.update {slack.calls.count('chat.update')} times")
        for line in demo_changes.weekly_summary(demo):
            console.print(line, markup=False, highlight=False)
        prefect_home = demo.rt.settings.home / "prefect"
        console.print(f"ledger:     {demo.rt.settings.ledger_url}")
        console.print(f"logs:       {demo.log_dir}")
        console.print(f"demo finished in {time.monotonic() - started:.0f} s")
        if keep:
            from phasegate.sandbox.run import start_page

            page = start_page(demo)
            console.print(f"Prefect UI: {demo.api.removesuffix('/api')} — Ctrl-C stops everything")
            console.print(f"channels:   {page.url} (the demo's Slack channels, answerable as any approver)")
            console.print(f"CLI:        . {demo.rt.settings.home / 'env.sh'}  in another terminal points "
                          "`phasegate` there", markup=False, highlight=False)
            try:
                threading.Event().wait()
            finally:
                page.stop()
        console.print(f"Prefect UI: stopped with the demo; to browse its runs: PREFECT_HOME={prefect_home} "
                      "prefect server start  (or run `phasegate demo --keep`)")
