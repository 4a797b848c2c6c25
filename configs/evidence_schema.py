"""Where a gate's evidence comes from in the engagement file: Jira filters, metric sources,
milestones and exit criteria."""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import Field, FiniteFloat, field_validator, model_validator

from phasegate.configs import checks, limits
from phasegate.configs.schema_base import IDENT, Comparator, Side, Strict
from phasegate.configs.sponsor_schema import BusinessMeaning

# A knowledge-transfer drill: the client's team retrains and redeploys without the vendor, so the
# client attests it unless the file says otherwise (the vendor vouching for it defeats its purpose).
KT_DRILL = re.compile(r"knowledge[\s_-]*transfer|kt[\s_-]*drill", re.IGNORECASE)


class JiraQuery(Strict):
    """The safe parts a JQL filter is built from; never a raw JQL string."""

    epic: str | None = None
    labels: list[str] = []
    fix_version: str | None = None
    component: str | None = None


class MetricSource(Strict):
    """Where a metric's value is read: a JSON document over HTTP, a Jira field, or the CLI."""

    kind: Literal["http_json", "jira_field", "manual"]
    url: str | None = None  # http_json
    path: str | None = None  # http_json: dotted path into the document, e.g. "metrics.f1"
    issue: str | None = None  # jira_field: issue key
    field: str | None = None  # jira_field: field id, e.g. customfield_10050

    @model_validator(mode="after")
    def _complete(self) -> MetricSource:
        needed = {"http_json": ("url", "path"), "jira_field": ("issue", "field"), "manual": ()}[self.kind]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} source needs {', '.join(missing)}")
        return self


class Metric(Strict):
    """A named metric; `range: [min, max]` (inclusive) declares the values it can take, such as
    [0, 1] for an F1 score. Only a declared range is checked; none is assumed from the name."""

    name: str = Field(max_length=limits.METRIC_NAME)
    source: MetricSource
    range: tuple[FiniteFloat, FiniteFloat] | None = None
    meaning: BusinessMeaning | None = Field(default=None, exclude_if=lambda v: v is None)  # in business terms

    @field_validator("range")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError("the range's minimum is above its maximum")
        return value

    def refusal(self, value: float) -> str | None:
        """Why `value` cannot be this metric's value, or None: infinity would pass any `>=`
        criterion and NaN fail every one without a word."""
        if not math.isfinite(value):
            return f"{value} is not a finite number"
        if self.range is not None and not self.range[0] <= value <= self.range[1]:
            low, high = self.range
            return f"{number(value)} is outside {self.name}'s declared range [{number(low)}, {number(high)}]"
        return None


def number(value: float) -> str:
    """`0.93`, `93`, `1.0000001`: short, but never rounded into a different number."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


class Milestone(Strict):
    """A deliverable whose evidence is one Jira issue (created or linked) or a Jira filter."""

    key: str = Field(max_length=limits.MILESTONE_KEY)
    title: str
    required: bool = True
    jira_issue: str | None = Field(default=None, max_length=limits.ISSUE_KEY)  # an existing issue or epic key to link instead of creating one
    jql: JiraQuery | None = None  # done when every matching issue is done
    attestation: bool = False  # evidence may also be an attestation recorded with who and when
    attesting_side: Literal["client", "vendor", "either"] = "either"  # whose approvers may attest it
    # Whose work it is (the guide keeps problem definition and KPIs, data governance and PII, and
    # production integration in-house): shown beside it, checked by configs/practices.py.
    owner: Side | None = Field(default=None, exclude_if=lambda v: v is None)

    @model_validator(mode="before")
    @classmethod
    def _drill_is_the_clients(cls, data: object) -> object:
        if (isinstance(data, dict) and data.get("attestation") is True and "attesting_side" not in data
                and KT_DRILL.search(f"{data.get('key', '')} {data.get('title', '')}")):
            return {**data, "attesting_side": "client"}
        return data

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not IDENT.match(value):
            raise ValueError("must be lowercase letters, digits and dashes")
        return value

    @model_validator(mode="after")
    def _side_needs_attestation(self) -> Milestone:
        if self.attesting_side != "either" and not self.attestation:
            raise ValueError(f"milestone {self.key}: attesting_side needs attestation: true")
        return self

    @field_validator("jira_issue")
    @classmethod
    def _issue(cls, value: str | None) -> str | None:
        if value is not None and not checks.ISSUE_KEY.match(value):
            raise ValueError("must be a Jira issue key such as ACME-12")
        return value


class ExitCriterion(Strict):
    """`metric comparator threshold`, or `all_required_milestones_done: true`.

    Written either as a mapping (`{metric: f1, op: ">=", threshold: 0.8}`) or, as people write it
    first, as the string `f1 >= 0.8` (or `all_required_milestones_done`)."""

    metric: str | None = None
    op: Comparator | None = None
    threshold: float | None = None
    all_required_milestones_done: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: object) -> object:
        data = checks.criterion_mapping(data)
        if isinstance(data, str):
            raise ValueError(f"{data!r} is not a criterion: write `metric op threshold` such as `f1 >= 0.8` "
                             "(op is one of >= > <= < ==), or all_required_milestones_done")
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> ExitCriterion:
        metric_form = (self.metric, self.op, self.threshold)
        if self.all_required_milestones_done:
            if any(part is not None for part in metric_form):
                raise ValueError("give either a metric criterion or all_required_milestones_done, not both")
        elif any(part is None for part in metric_form):
            raise ValueError("a metric criterion needs metric, op and threshold")
        return self

    @property
    def label(self) -> str:
        if self.all_required_milestones_done:
            return "all required milestones done"
        if self.op is None:  # configs sit below phasegate, so a plain ValueError rather than its errors
            raise ValueError("a metric criterion without op passed validation")
        return f"{self.metric} {self.op.value} {self.threshold:g}"
