"""A new engagement file that follows the guide, for `phasegate engagement init NAME`.

The file validates as written: its Slack ids, Jira site and people are placeholders marked `EDIT`
that `phasegate sandbox FILE` runs as they are, so a PM can rehearse the plan before replacing them.
The plan itself is the guide's: a Phase 0 before signing (data readiness, the vendor's due
diligence, in-house or outsource, IP), a 6–12 week PoC that starts with data readiness, development tied
to process milestones with production hardening, a handover of 15–20 % of the total time.
"""

from __future__ import annotations

import datetime as dt
import re

from phasegate.configs.errors import ConfigError
from phasegate.configs.schema import IDENT

TEMPLATE = """\
# Engagement file for phasegate, following the AI outsourcing guide's three phases.
# Lines marked EDIT hold placeholders: they validate as they are, so `phasegate sandbox {id}.yaml`
# runs this plan on your machine before you replace them with the real Slack ids and Jira site.
# Check it with `phasegate engagement create {id}.yaml` (warns where the plan departs from the guide).
id: {id}
name: {title}                                     # EDIT: what the client calls the project
vendor: Vendor Ltd                               # EDIT
client_sponsor: Sam Sponsor (VP Engineering)     # EDIT
pm_slack_user: U0PM000001                        # EDIT: your Slack member id (profile → ⋮ → Copy member ID)
timezone: UTC                                    # EDIT: e.g. Europe/Berlin; reminders and reports use it
start_date: {start}                              # YYYY-MM-DD
slack_channel: C0{channel}                       # EDIT: channel id (channel name → About, at the bottom)
jira:
  url: https://your-company.atlassian.net        # EDIT
  project: {project}                             # EDIT: the Jira project key
  deployment: cloud                              # or datacenter
  # done_resolutions: [Done, Fixed]              # the resolutions that count as done (the default)
# planning_rules: strict                         # make the guide's planning warnings errors
metrics:
  # manual: submitted with `phasegate evidence metric`; or http_json from an MLflow-style server.
  - name: f1
    source: {{kind: manual}}
    range: [0, 1]
    # EDIT: what the figure means to the business; the report shows it beside the raw value.
    meaning: {{label: Cases caught, unit: "% of cases", scale: 100, means: "share of the cases the model finds"}}
budget:
  currency: USD
  poc_cap: 100000                                # time-and-materials cap; the report warns at 80 %
  development_team_cost: 400000
  change_budget: 50000
  first_year_run_cost: 900000                    # EDIT: compute, storage, monitoring, people (the guide: the build is 30-40 % of the first year)
vendor_team:                                     # EDIT: the named individuals the vendor commits
  - {{name: Val Vendor, role: vendor lead, slack_user: U0VENDLEAD}}
  - {{name: Mo Modeller, role: ML engineer}}
data_handling:                                   # EDIT: as the data-handling agreement says
  encryption: AES-256 at rest, TLS 1.2+ in transit
  deletion_deadline: {deletion}                  # the vendor's copies deleted by then; reminded 14 days before
phases:
  selection:
    # Phase 0, before signing: "Should we sign, and with whom?" (G0, the client's decision; delete this
    # block to start at the PoC). Your own checks first, the vendor's answers and the contract below;
    # a red flag (an accuracy promise, no model in production, a fixed price, AI as your core moat, data
    # you may not share, IP left with the vendor) is shown on the G0 prompt and makes GO need a waiver.
    planned_weeks: 3
    milestones:
      - {{key: data-readiness, title: Internal data readiness assessment before signing, owner: client, attestation: true, attesting_side: client}}
      - {{key: mlops-walkthrough, title: Vendor walked us through their MLOps architecture diagrams, owner: client, attestation: true, attesting_side: client}}
      - {{key: references, title: "References checked: their production models and how they monitor them", owner: client, attestation: true, attesting_side: client}}
    exit_criteria:
      - all_required_milestones_done
    gate:
      approvers:                                   # EDIT: client side only; the vendor does not approve its own hiring
        - {{slack_user: U0SPONSOR1, name: Sam Sponsor, side: client, role: sponsor}}
        - {{slack_user: U0TECHLEAD, name: Tess Techlead, side: client, role: tech lead}}
      quorum: {{count: all}}
    due_diligence:                                 # EDIT: the vendor's answers, as you noted them
      mlops_architecture: Feature store, training pipeline in Airflow, models served behind a versioned REST API
      experiment_tracking: MLflow, one run per experiment with its data version
      model_versioning: MLflow model registry, promoted by review
      data_validation: Great Expectations checks on every load, failures stop the pipeline
      models_in_production: 12                     # the golden question: how many still run in production today
      production_monitoring: Weekly accuracy on labelled samples, drift alerts on the inputs
      sample_status_reports: Data quality score, F1 per experiment and the next experiments, not hours
      # accuracy_promise: "95 % accuracy"          # what they promised before seeing your data: a red flag
      pricing: capped_time_and_materials           # time_and_materials, capped_time_and_materials, dedicated_team or fixed_price (a red flag)
    sourcing:                                      # EDIT: in-house or outsource, and why
      core_moat: false                             # true when AI is your primary competitive moat (keep it in-house)
      regulated_data: false                        # true when the data may not legally leave the company
      reasons: An enhancement layer on our product; hiring ML engineers would take six months
    ip:                                            # EDIT: as the contract settles it
      client_owns: [trained_models, training_data_derivatives, custom_code, test_scripts]
      pre_existing: []                             # the vendor's own IP it brings, e.g. {{item: base model, terms: licensed perpetually}}
  poc:
    # Discovery and PoC, time and materials, 6–12 weeks: define the problem, assess the data,
    # build a baseline, and answer "should we continue?".
    planned_weeks: 8
    max_weeks: 12
    milestones:
      # owner: whose work it is; the guide keeps problem definition and KPIs, data governance and PII,
      # and production integration in-house (a warning when they are given to the vendor).
      - {{key: problem-kpis, title: Problem definition and KPIs agreed, owner: client}}
      - {{key: data-readiness, title: Data readiness assessment, owner: client}}
      - {{key: baseline-model, title: Baseline model trained and evaluated on a holdout set, owner: vendor}}
      - {{key: poc-report, title: PoC report with the go/no-go recommendation, owner: vendor}}
    exit_criteria:
      - f1 >= 0.8                                  # EDIT: the business case's threshold
      - all_required_milestones_done
    gate:
      approvers:                                   # EDIT: real people; one from each side
        - {{slack_user: U0SPONSOR1, name: Sam Sponsor, side: client, role: sponsor}}
        - {{slack_user: U0VENDLEAD, name: Val Vendor, side: vendor, role: vendor lead}}
      quorum: {{count: 2, one_from_each_side: true}}
  development:
    # Development and iteration with a dedicated team: process milestones, not accuracy targets.
    # Knowledge transfer starts here: the weekly report asks the client side each week whether the
    # vendor works in your repository, writes decisions down and pairs with your engineers.
    planned_weeks: 16
    milestones:
      - {{key: api-interface, title: "API interface between the product and the ML layer agreed and versioned", owner: client}}
      - {{key: staging-pipeline, title: End-to-end pipeline deployed in staging, owner: vendor}}
      - {{key: experiment-tracking, title: Experiment tracking and model versioning in place, owner: vendor}}
      - {{key: monitoring-retraining, title: Drift monitoring and retraining pipeline automated, owner: vendor}}
      - {{key: production-integration, title: Production integration into the product's backend, owner: client}}
      - {{key: production-hardening, title: "Production hardening: error handling, no hard-coded thresholds", owner: vendor}}
    exit_criteria:
      - all_required_milestones_done
    gate:
      approvers:
        - {{slack_user: U0SPONSOR1, name: Sam Sponsor, side: client, role: sponsor}}
        - {{slack_user: U0TECHLEAD, name: Tess Techlead, side: client, role: tech lead}}
      quorum: {{count: all}}
  handover:
    # Transition and handover, 4–8 weeks and 15–20 % of the total: your team runs the system while
    # the vendor is the safety net. attestation: true items are confirmed by an approver.
    planned_weeks: 5
    milestones:
      - {{key: documentation, title: "Documentation of decisions, pipeline and runbooks delivered", owner: vendor}}
      - {{key: pair-programming, title: Pair-programming sessions with the internal engineers, attestation: true}}
      - {{key: supervised-operation, title: "Supervised run by the client team, the vendor as safety net", attestation: true}}
      - {{key: knowledge-transfer-drill, title: Client team retrained and redeployed without the vendor, attestation: true,
         attesting_side: client}}
      - {{key: ip-transfer, title: "IP transferred: trained models, training-data derivatives, code, test scripts"}}
      - {{key: data-deletion, title: Vendor data deletion confirmed, attestation: true, attesting_side: client}}
    exit_criteria:
      - all_required_milestones_done
    gate:
      approvers:
        - {{slack_user: U0SPONSOR1, name: Sam Sponsor, side: client, role: sponsor}}
        - {{slack_user: U0VENDLEAD, name: Val Vendor, side: vendor, role: vendor lead}}
      quorum: {{count: all}}
"""


def engagement_template(engagement_id: str, *, today: dt.date) -> str:
    """The file's text; `engagement_id` becomes its id, Jira project key and channel placeholder."""
    if not IDENT.match(engagement_id):
        raise ConfigError([f"{engagement_id!r}: an engagement name is lowercase letters, digits and dashes, "
                           "such as acme-churn"])
    letters = re.sub(r"[^A-Z0-9]", "", engagement_id.upper()).lstrip("0123456789")
    project = (letters or "PROJ")[:6].ljust(2, "X")
    start = today + dt.timedelta(days=(7 - today.weekday()) % 7 or 7)  # next Monday
    deletion = start + dt.timedelta(weeks=8 + 16 + 5 + 4)  # four weeks after the planned handover
    return TEMPLATE.format(id=engagement_id, title=engagement_id.replace("-", " ").capitalize(), deletion=deletion,
                           start=start.isoformat(), project=project, channel=(letters or "CHAN")[:9].ljust(2, "X"))
