"""Gate policy: when the latest answers add up to a decision, and which answers are accepted at all."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from phasegate.configs.schema import Approver, GatePolicy, Phase, Quorum, Side
from phasegate.errors import PolicyError
from phasegate.rules.policy import CHANGE_OUTCOMES, check_answer, needs_reason, reached, what_stands
from phasegate.rules.policy import check as check_decision
from phasegate.states import Outcome, Via

GO, NO_GO, EXTEND, ACCEPT, NOT_YET = Outcome.GO, Outcome.NO_GO, Outcome.EXTEND, Outcome.ACCEPT, Outcome.NOT_YET
SLACK = Via.SLACK

CLIENT_A = Approver(slack_user="U0CLIENTA1", name="Ana Client", side=Side.CLIENT, role="sponsor")
CLIENT_B = Approver(slack_user="U0CLIENTB1", name="Ben Client", side=Side.CLIENT, role="tech lead")
VENDOR = Approver(slack_user="U0VENDOR01", name="Vic Vendor", side=Side.VENDOR, role="vendor lead")
A, B, V = CLIENT_A.slack_user, CLIENT_B.slack_user, VENDOR.slack_user
OUTSIDER = "U0OUTSIDE1"
PM = "U0PMPMPM01"


def gate(count: str | int, *, each_side: bool = False, approvers: tuple[Approver, ...] = (CLIENT_A, CLIENT_B, VENDOR),
         ) -> GatePolicy:
    return GatePolicy(approvers=list(approvers), quorum=Quorum(count=count, one_from_each_side=each_side))


def latest(*answers: tuple[str, Outcome]) -> Mapping[str, Outcome]:
    """Answers in the order given; a later answer from the same approver replaces the earlier one."""
    return dict(answers)


@pytest.mark.parametrize(("policy", "answers", "expected"), [
    # all: every approver, not just a majority
    (gate("all"), latest((A, GO), (B, GO)), None),
    (gate("all"), latest((A, GO), (B, GO), (V, GO)), GO),
    # any: the first answer decides, whatever it is
    (gate("any"), latest(), None),
    (gate("any"), latest((B, NO_GO)), NO_GO),
    (gate("any"), latest((V, EXTEND)), EXTEND),
    # n: two of three
    (gate(2), latest((A, GO)), None),
    (gate(2), latest((A, GO), (B, GO)), GO),
    (gate(2), latest((B, NO_GO), (V, NO_GO)), NO_GO),
    (gate(3), latest((A, GO), (B, GO)), None),
], ids=["all-2-of-3", "all-3-of-3", "any-none", "any-no-go", "any-extend", "n2-one", "n2-two-clients",
        "n2-no-go", "n3-two"])
def test_quorum_counts(policy: GatePolicy, answers: Mapping[str, Outcome], expected: Outcome | None) -> None:
    assert reached(policy, answers) is expected


@pytest.mark.parametrize(("answers", "expected"), [
    (latest((A, GO), (B, GO)), None),  # two clients agree: not enough
    (latest((A, GO), (V, GO)), GO),  # a client and the vendor
    (latest((B, NO_GO), (V, NO_GO)), NO_GO),
    (latest((A, GO), (B, GO), (V, NO_GO)), None),  # the vendor disagrees
], ids=["two-clients", "client-and-vendor", "client-and-vendor-no-go", "vendor-disagrees"])
def test_one_from_each_side(answers: Mapping[str, Outcome], expected: Outcome | None) -> None:
    assert reached(gate(2, each_side=True), answers) is expected


def test_one_from_each_side_also_binds_quorum_any() -> None:
    policy = gate("any", each_side=True)
    assert reached(policy, latest((A, GO))) is None
    assert reached(policy, latest((A, GO), (V, GO))) is GO


@pytest.mark.parametrize(("policy", "answers"), [
    (gate(2), latest((A, GO), (B, NO_GO))),
    (gate(2), latest((A, GO), (B, NO_GO), (V, EXTEND))),
    (gate("all"), latest((A, GO), (B, GO), (V, EXTEND))),
], ids=["n2-split", "three-ways", "all-one-dissent"])
def test_disagreement_leaves_no_outcome(policy: GatePolicy, answers: Mapping[str, Outcome]) -> None:
    assert reached(policy, answers) is None


def test_a_changed_mind_counts_only_the_latest_answer() -> None:
    policy = gate(2)
    history = [(A, GO), (B, GO)]
    assert reached(policy, latest(*history)) is GO
    history.append((A, NO_GO))  # A changes their mind
    assert reached(policy, latest(*history)) is None
    history.append((V, NO_GO))
    assert reached(policy, latest(*history)) is NO_GO


@pytest.mark.parametrize(("policy", "answers"), [
    (gate("any"), latest((OUTSIDER, GO))),
    (gate(2), latest((A, GO), (OUTSIDER, GO))),
    (gate(2, each_side=True), latest((A, GO), (OUTSIDER, GO))),  # an outsider is no vendor
    (gate("all", approvers=(CLIENT_A, VENDOR)), latest((A, GO), (OUTSIDER, GO), ("U0OUTSIDE2", GO))),
], ids=["any", "n2", "each-side", "all"])
def test_an_answer_from_a_non_approver_never_counts(policy: GatePolicy, answers: Mapping[str, Outcome]) -> None:
    assert reached(policy, answers) is None


# --- check_answer -----------------------------------------------------------------------------

def check(phase: Phase, *, approver: str = A, requested_by: str = PM, outcome: Outcome = GO,
          reason: str = "", policy: GatePolicy | None = None) -> Approver:
    return check_answer(policy or gate(2, each_side=True), phase, via=SLACK, approver=approver, requested_by=requested_by,
                        outcome=outcome, reason=reason)


def test_an_approver_answer_returns_their_entry() -> None:
    assert check(Phase.POC, approver=V) == VENDOR


@pytest.mark.parametrize("who", [OUTSIDER, PM])
def test_a_non_approver_is_refused(who: str) -> None:
    with pytest.raises(PolicyError, match=f"{who} is not an approver of G1"):
        check(Phase.POC, approver=who)


def test_the_requester_is_refused_even_when_listed_as_approver() -> None:
    with pytest.raises(PolicyError, match=f"{A} requested G2 and so cannot approve it"):
        check(Phase.DEVELOPMENT, approver=A, requested_by=A)


@pytest.mark.parametrize(("phase", "outcome"), [
    (Phase.POC, NO_GO), (Phase.POC, EXTEND), (Phase.DEVELOPMENT, NO_GO), (Phase.HANDOVER, NOT_YET),
])
@pytest.mark.parametrize("reason", ["", "   ", " \n\t "], ids=["empty", "spaces", "whitespace"])
def test_a_negative_answer_without_a_reason_is_refused(phase: Phase, outcome: Outcome, reason: str) -> None:
    with pytest.raises(PolicyError, match="needs a written reason"):
        check(phase, outcome=outcome, reason=reason)


@pytest.mark.parametrize(("phase", "outcome"), [
    (Phase.POC, NO_GO), (Phase.POC, EXTEND), (Phase.HANDOVER, NOT_YET),
])
def test_a_negative_answer_with_a_reason_is_accepted(phase: Phase, outcome: Outcome) -> None:
    assert check(phase, outcome=outcome, reason="F1 is 0.71, below the 0.85 agreed") == CLIENT_A


@pytest.mark.parametrize(("phase", "outcome"), [(Phase.POC, GO), (Phase.DEVELOPMENT, GO), (Phase.HANDOVER, ACCEPT)])
def test_a_passing_answer_needs_no_reason(phase: Phase, outcome: Outcome) -> None:
    assert check(phase, outcome=outcome, reason="") == CLIENT_A


@pytest.mark.parametrize(("phase", "outcome", "message"), [
    (Phase.POC, ACCEPT, "ACCEPT is not an answer at G1 (allowed: GO, NO-GO, EXTEND)"),
    (Phase.POC, NOT_YET, "NOT YET is not an answer at G1"),
    (Phase.DEVELOPMENT, ACCEPT, "ACCEPT is not an answer at G2"),
    (Phase.HANDOVER, GO, "GO is not an answer at G3 (allowed: ACCEPT, NOT YET)"),
    (Phase.HANDOVER, EXTEND, "EXTEND is not an answer at G3"),
    (Phase.HANDOVER, NO_GO, "NO-GO is not an answer at G3"),
])
def test_an_outcome_not_offered_at_the_gate_is_refused(phase: Phase, outcome: Outcome, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        check(phase, outcome=outcome, reason="a reason, so only the outcome can be wrong")
    assert str(caught.value).startswith(message)


def test_go_or_accept_on_unmet_criteria_needs_a_written_waiver() -> None:
    unmet = ["f1 >= 0.85: fail (seen 0.8)", "all required milestones done: missing (0/3 done)"]
    policy = gate("any")
    for outcome, phase in ((GO, Phase.POC), (ACCEPT, Phase.HANDOVER)):
        with pytest.raises(PolicyError, match=rf"{outcome.label} while exit criteria are not met needs a written "
                                              r"waiver reason \(f1 >= 0.85: fail"):
            check_answer(policy, phase, via=SLACK, approver=A, requested_by=PM, outcome=outcome, reason="  ",
                         unmet=unmet)
        check_answer(policy, phase, via=SLACK, approver=A, requested_by=PM, outcome=outcome,
                     reason="pilot risk accepted", unmet=unmet)
        check_answer(policy, phase, via=SLACK, approver=A, requested_by=PM, outcome=outcome, reason="", unmet=[])
        assert needs_reason(outcome, unmet) and not needs_reason(outcome, [])
    assert needs_reason(NO_GO, []) and not needs_reason(NO_GO, unmet) is False


@pytest.mark.parametrize(("unmet", "words"), [
    (["f1 >= 0.85: fail (seen 0.8)"], "exit criteria are not met"),
    (["red flag: accuracy guaranteed"], "a red flag stands"),
    (["red flag: accuracy guaranteed", "red flag: fixed price"], "red flags stand"),
    (["milestones: missing (seen -)", "red flag: fixed price"], "exit criteria are not met and a red flag stands"),
])
def test_a_waiver_names_what_it_waives(unmet: list[str], words: str) -> None:
    assert what_stands(unmet) == words
    with pytest.raises(PolicyError, match=f"^GO while {words} needs a written waiver reason"):
        check_answer(gate("any"), Phase.SELECTION, via=SLACK, approver=A, requested_by=PM, outcome=GO, reason=" ",
                     unmet=unmet)


def test_an_engagement_may_forbid_waivers() -> None:
    unmet = ["f1 >= 0.85: fail (seen 0.8)"]
    strict = GatePolicy(approvers=[CLIENT_A, VENDOR], quorum=Quorum(count="any"), allow_waivers=False)
    with pytest.raises(PolicyError, match=r"GO is refused while exit criteria are not met \(f1 >= 0.85: fail "
                                          r"\(seen 0.8\)\): G1 allows no waivers"):
        check_answer(strict, Phase.POC, via=SLACK, approver=A, requested_by=PM, outcome=GO, reason="please",
                     unmet=unmet)
    check_answer(strict, Phase.POC, via=SLACK, approver=A, requested_by=PM, outcome=NO_GO, reason="F1 too low",
                 unmet=unmet)
    check_answer(strict, Phase.POC, via=SLACK, approver=A, requested_by=PM, outcome=GO, reason="", unmet=[])


@pytest.mark.parametrize(("subject", "allowed", "outcome"), [("G1", (GO, NO_GO, EXTEND), GO),
                                                             ("acme-churn/CR-3", CHANGE_OUTCOMES, Outcome.APPROVE)],
                         ids=["gate", "change-request"])
def test_cli_answers_off_refuses_the_terminal_for_every_kind_of_decision(subject: str, allowed: tuple[Outcome, ...],
                                                                         outcome: Outcome) -> None:
    """One rule for gates and change requests alike, for everything typed outside Slack: the terminal
    and the Prefect UI's resume form (whose approver is a typed Slack id); Slack is still heard."""
    slack_only = GatePolicy(approvers=[CLIENT_A, VENDOR], quorum=Quorum(count="any"), cli_answers=False)
    for via, where in ((Via.CLI, "the CLI"), (Via.PREFECT_UI, "the Prefect UI")):
        with pytest.raises(PolicyError, match=rf"^{subject} takes no answers from {where} \(cli_answers: false in the "
                                              r"engagement file\); answer in Slack$"):
            check_decision(slack_only, subject, allowed, via=via, approver=A, requested_by=PM, outcome=outcome,
                           reason="")
    assert check_decision(slack_only, subject, allowed, via=Via.SLACK, approver=A, requested_by=PM, outcome=outcome,
                          reason="") == CLIENT_A
    for via in (Via.CLI, Via.PREFECT_UI):
        assert check_decision(gate("any"), subject, allowed, via=via, approver=A, requested_by=PM, outcome=outcome,
                              reason="") == CLIENT_A
