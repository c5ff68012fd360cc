"""The chaos run's checker (tools/chaos_checks.py) on hand-made books: a consistent world passes, and every kind of
difference planted in it is found and named — so the checker cannot pass a broken hub silently. Also the run's other
pure parts: the ledger's rows as the checks read them, the replicas' schema, the choice of the replica a kill takes.
"""

from __future__ import annotations

import random
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from tools.chaos import parse
from tools.chaos_checks import (
    Answer,
    ClearingReport,
    Finding,
    LedgerRow,
    Money,
    PersonBooks,
    RegionRow,
    ReverseAsk,
    SettleAsk,
    check_answers,
    check_audit,
    check_clearing,
    check_codes,
    check_ledger,
    check_people,
)
from tools.chaos_ledger import DEFAULT_SERVER, QUERY, LedgerSource, ledger_rows, schema_name
from tools.chaos_procs import choose_victim

SSN = "510104198803150011"
KEPT, UNDONE = Money(20_000, 50_000, 3_000, 7_000), Money(0, 12_000, 1_000, 500)
SEED = PersonBooks({"OUTPATIENT": (0, 100), "INPATIENT": (50_000, 2_000)}, 90_000)


@dataclass
class World:
    """One person in Sichuan settled twice at Shanghai hospitals: one kept, one reversed; one bill the hub could
    not confirm (corrected); one refused before it reached the region."""

    settles: list[SettleAsk] = field(default_factory=list)
    reversals: list[ReverseAsk] = field(default_factory=list)
    ledger: list[LedgerRow] = field(default_factory=list)
    region: list[RegionRow] = field(default_factory=list)
    books: dict[str, PersonBooks] = field(default_factory=dict)
    reports: list[ClearingReport] = field(default_factory=list)
    calls: list[tuple[str, str, Answer]] = field(default_factory=list)

    def findings(self) -> list[Finding]:
        return [
            *check_answers(self.settles, self.reversals, self.region),
            check_ledger(self.ledger, self.region),
            check_people({SSN: SEED}, self.settles, self.ledger, self.books),
            check_clearing(self.ledger, self.settles, self.reports),
            check_codes(self.calls),
        ]

    def differences(self) -> list[str]:
        return [d for f in self.findings() for d in f.differences]


def ask(request_id: str, *answers: Answer, visit: str = "INPATIENT") -> SettleAsk:
    return SettleAsk(request_id, "sichuan-chongqing", SSN, visit, "51", "31", list(answers), f"stl-{request_id}")


def world() -> World:
    w = World()
    w.settles = [
        ask("kept", Answer("OK", state="SETTLED", split=KEPT)),
        ask("undone", Answer("OK", state="SETTLED", split=UNDONE), visit="OUTPATIENT"),
        ask("unknown", Answer("UNAVAILABLE", "", cut=True), Answer("UNAVAILABLE", "SETTLEMENT_OUTCOME_UNKNOWN")),
        ask("refused", Answer("UNAVAILABLE", "REGION_UNAVAILABLE")),
    ]
    w.reversals = [ReverseAsk("rev", "stl-undone", "undone", [Answer("OK", state="REVERSED")])]
    w.ledger = [
        LedgerRow("stl-kept", "kept", "kept", "SETTLED", KEPT, "2026-12"),
        LedgerRow("stl-undone", "undone", "undone", "REVERSED", UNDONE, "2026-12"),
        LedgerRow("stl-unknown", "unknown", "unknown", "CORRECTED", None, ""),
    ]
    w.region = [
        RegionRow("sichuan-chongqing", "kept", "SETTLED", KEPT),
        RegionRow("sichuan-chongqing", "undone", "REVERSED", UNDONE),
        RegionRow("sichuan-chongqing", "unknown", "CORRECTED", Money(1, 2, 3, 4)),
    ]
    w.books = {SSN: PersonBooks({"OUTPATIENT": (0, 100), "INPATIENT": (70_000, 52_000)}, 87_000)}
    w.reports = [ClearingReport("2026-12", {("51", "31"): (1, 50_000)}, {"51": -50_000, "31": 50_000}, {"x": 0})]
    w.calls = [("Settle", "kept", Answer("OK")), ("Settle", "unknown", Answer("UNKNOWN", cut=True))]
    return w


def test_a_consistent_world_passes_every_check() -> None:
    findings = world().findings()

    assert [f.differences for f in findings] == [[]] * 6
    assert [f.checked for f in findings] == [2, 2, 3, 1, 1, 2]


def test_a_settled_answer_with_another_split_at_the_region_is_found() -> None:
    w = world()
    w.region[0] = replace(w.region[0], money=replace(KEPT, account_pay_fen=3_001, cash_pay_fen=6_999))

    differences = w.differences()

    assert differences[0].startswith("kept: hub said OK SETTLED (fund 50000 / account 3000 / cash 7000")
    assert "region holds SETTLED (fund 50000 / account 3001 / cash 6999" in differences[0]
    assert any(d.startswith("kept: ledger SETTLED") for d in differences)


def test_a_bill_the_hub_did_not_confirm_but_the_region_kept_is_found_and_so_is_the_money() -> None:
    w = world()
    w.region[2] = RegionRow("sichuan-chongqing", "unknown", "SETTLED", Money(0, 900, 100, 0))

    differences = w.differences()

    assert "unknown: hub said UNAVAILABLE/SETTLEMENT_OUTCOME_UNKNOWN; region holds SETTLED" in differences[0]
    assert any(d.startswith("unknown: ledger CORRECTED; region holds SETTLED") for d in differences)


def test_a_request_the_hub_never_answered_is_judged_by_the_ledger_alone() -> None:
    w = world()
    in_progress = Answer("ABORTED", "REQUEST_IN_PROGRESS")  # a retry while the first call was still going
    w.settles.append(ask("lost", Answer("UNAVAILABLE", cut=True), Answer("DEADLINE_EXCEEDED"), in_progress))
    w.region.append(RegionRow("sichuan-chongqing", "lost", "SETTLED", Money(0, 5, 0, 0)))

    assert w.differences() == ["lost: no ledger row; region holds SETTLED (fund 5 / account 0 / cash 0 / deductible 0)"]

    w.ledger.append(LedgerRow("stl-lost", "lost", "lost", "SETTLED", Money(0, 5, 0, 0), "2026-12"))
    w.books[SSN] = replace(w.books[SSN], accumulators={"OUTPATIENT": (0, 100), "INPATIENT": (70_000, 52_005)})
    w.reports[0] = replace(w.reports[0], pairs={("51", "31"): (2, 50_005)}, province_nets={"51": -50_005, "31": 50_005})

    assert w.differences() == []


def test_an_unavailable_without_a_reason_is_the_channels_word_so_the_ledger_judges_the_request() -> None:
    w = world()
    cut, refused = Answer("UNAVAILABLE", cut=True), Answer("UNAVAILABLE", message="failed to connect to all addresses")
    w.settles.append(ask("retried", cut, cut, refused))
    w.region.append(RegionRow("sichuan-chongqing", "retried", "SETTLED", Money(0, 5, 0, 0)))

    assert w.differences()[0].startswith("retried: no ledger row; region holds SETTLED")

    w.settles[-1].answers.append(Answer("UNAVAILABLE", "REGION_UNAVAILABLE"))

    assert (
        w.differences()[0] == "retried: hub said UNAVAILABLE/REGION_UNAVAILABLE; region holds SETTLED (fund 5 /"
        " account 0 / cash 0 / deductible 0)"
    )


def test_request_in_progress_leaves_the_outcome_to_the_ledger_whatever_the_hub_said_before() -> None:
    w = world()
    busy = Answer("ABORTED", "REQUEST_IN_PROGRESS")
    w.settles.append(ask("claimed", Answer("UNAVAILABLE", "REGION_UNAVAILABLE"), Answer("UNAVAILABLE", cut=True), busy))
    w.region.append(RegionRow("sichuan-chongqing", "claimed", "SETTLED", Money(0, 5, 0, 0)))

    assert w.differences() == [
        "claimed: no ledger row; region holds SETTLED (fund 5 / account 0 / cash 0 / deductible 0)"
    ]

    w.settles[-1].answers.append(Answer("UNAVAILABLE", "SETTLEMENT_OUTCOME_UNKNOWN"))

    assert w.differences()[0].startswith(
        "claimed: hub said UNAVAILABLE/SETTLEMENT_OUTCOME_UNKNOWN; region holds SETTLED"
    )


def test_a_last_call_a_kill_cut_may_have_settled_after_what_the_hub_said_to_an_earlier_one() -> None:
    w = world()
    refused = Answer("UNAVAILABLE", "REGION_CIRCUIT_OPEN", message="circuit half-open: a trial call is in progress")
    w.settles.append(ask("late", refused, Answer("UNAVAILABLE", cut=True, message="Stream removed (Socket closed)")))
    w.region.append(RegionRow("sichuan-chongqing", "late", "SETTLED", Money(0, 5, 0, 0)))

    assert w.differences() == ["late: no ledger row; region holds SETTLED (fund 5 / account 0 / cash 0 / deductible 0)"]

    w.settles[-1].answers.append(refused)

    assert w.differences()[0].startswith("late: hub said UNAVAILABLE/REGION_CIRCUIT_OPEN; region holds SETTLED")


def test_a_reversal_the_hub_answered_but_the_region_never_applied_is_found() -> None:
    w = world()
    w.region[1] = replace(w.region[1], state="SETTLED")

    assert "undone: hub said OK SETTLED" in w.differences()[0]
    assert "and its reversal REVERSED; region holds SETTLED" in w.differences()[0]


def test_unfinished_ledger_rows_and_region_rows_the_hub_does_not_know_are_found() -> None:
    w = world()
    w.ledger[1] = replace(w.ledger[1], state="REVERSING")
    w.ledger[2] = replace(w.ledger[2], state="CORRECTION_PENDING")
    w.region.append(RegionRow("sichuan-chongqing", "stray", "SETTLED", Money(0, 5, 0, 0)))

    ledger = check_ledger(w.ledger, w.region)

    assert ledger.differences == [
        "undone: ledger left REVERSING; region holds REVERSED (fund 12000 / account 1000 / cash 500 / deductible 0)",
        "unknown: ledger left CORRECTION_PENDING; region holds CORRECTED (fund 2 / account 3 / cash 4 / deductible 1)",
        "stray: no ledger row; region holds SETTLED (fund 5 / account 0 / cash 0 / deductible 0)",
    ]


def test_a_person_whose_account_is_one_fen_off_is_found_with_the_number_masked() -> None:
    w = world()
    w.books[SSN] = replace(w.books[SSN], account_balance_fen=86_999)

    [finding] = [f for f in w.findings() if f.title.startswith("per person")]

    assert finding.differences == [
        "5101**********0011: expected INPATIENT deductible 70000 fund 52000; OUTPATIENT deductible 0 fund 100;"
        " account 87000; region holds INPATIENT deductible 70000 fund 52000; OUTPATIENT deductible 0 fund 100;"
        " account 86999"
    ]


def test_clearing_pairs_that_differ_from_the_books_and_nets_that_do_not_sum_to_zero_are_found() -> None:
    w = world()
    w.reports = [
        ClearingReport("2026-12", {("51", "31"): (2, 62_000)}, {"51": -62_000, "31": 62_000}, {"a": 1, "b": 0}),
        ClearingReport("2027-01", {}, {"51": 5}, {}),
    ]

    [finding] = [f for f in w.findings() if f.title.startswith("clearing")]

    assert finding.differences == [
        "2026-12: region nets sum to 1, not 0",
        "2027-01: province nets sum to 5, not 0",
        "2027-01: province 51 net 5; its pairs say 0",
        "pair 51->31: booked - reversed is 1 for 50000 fen; report says 2 for 62000 fen",
    ]


def test_an_internal_answer_is_found_but_a_call_a_kill_cut_is_not_the_hubs_answer() -> None:
    w = world()
    w.calls.append(("VerifyCard", "", Answer("INTERNAL", message="boom")))

    [finding] = [f for f in w.findings() if f.title.startswith("no call")]

    assert finding.differences == ["VerifyCard (read): INTERNAL/-: boom"]


def test_audit_verifys_verdict_is_a_check_and_a_broken_chain_a_difference_in_its_own_words() -> None:
    held = check_audit(0, "audit chain holds: 127 records, head 9f2c, 3 signed checkpoints\n")
    broken = check_audit(1, "audit chain broken at record 42: entry hash differs\n")
    unread = check_audit(2, "audit: the ledger does not answer: connection refused\n")

    assert (held.passed, held.checked) == (True, 127)
    assert broken.differences == ["audit verify exited 1: audit chain broken at record 42: entry hash differs"]
    assert broken.checked == 42
    assert unread.differences == ["audit verify exited 2: audit: the ledger does not answer: connection refused"]


def test_a_kill_takes_one_replica_chosen_by_the_seed_and_leaves_a_single_hubs_dice_alone() -> None:
    victims = [choose_victim(random.Random("1:faults"), 3) for _ in range(2)]
    dice = random.Random("1:faults")
    many = [choose_victim(dice, 3) for _ in range(60)]
    single = random.Random("1:faults")

    assert victims[0] == victims[1] == many[0]
    assert set(many) == {0, 1, 2}
    assert choose_victim(single, 1) == 0
    assert single.random() == random.Random("1:faults").random()


def test_ledger_rows_read_the_split_and_the_drain_sees_what_is_unfinished(tmp_path: Path) -> None:
    split = '{"deductible_fen": 20000, "fund_pay_fen": 50000, "account_pay_fen": 3000, "cash_pay_fen": 7000}'
    raw = [
        ("stl-kept", "dev", "kept", "kept", "SETTLED", split, "2026-12"),
        ("stl-unknown", "dev", "unknown", "unknown~1", "CORRECTED", "", ""),
        ("stl-claimed", "dev", "claimed", "claimed", "PENDING", "", ""),
    ]
    path = tmp_path / "ledger.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        columns = QUERY.removeprefix("SELECT ").split(" FROM ")[0]
        conn.execute(f"CREATE TABLE settlements ({columns}, created_at REAL)")
        conn.executemany("INSERT INTO settlements VALUES (?, ?, ?, ?, ?, ?, ?, 0)", raw)
        conn.commit()

    assert ledger_rows(raw) == [
        LedgerRow("stl-kept", "kept", "kept", "SETTLED", KEPT, "2026-12"),
        LedgerRow("stl-unknown", "unknown", "unknown~1", "CORRECTED", None, ""),
        LedgerRow("stl-claimed", "claimed", "claimed", "PENDING", None, ""),
    ]
    assert LedgerSource(None, path).rows() == ledger_rows(raw)
    assert LedgerSource(None, path).unfinished() == ["claimed (ledger PENDING)"]


def test_replicas_get_a_fresh_schema_first_on_the_search_path_and_one_hub_keeps_sqlite() -> None:
    one, three = parse(["--seed", "7"]), parse(["--replicas", "3", "--seed", "7"])
    elsewhere = parse(["--replicas", "2", "--seed", "-3", "--ledger", "postgresql://u@db:5433/x?sslmode=disable"])

    assert (one.replicas, one.ledger) == (1, None)
    assert three.schema.startswith("chaos_7_") and three.schema.replace("_", "").isalnum()
    assert three.ledger == f"{DEFAULT_SERVER}?options=-csearch_path%3D{three.schema}"
    assert elsewhere.ledger == f"postgresql://u@db:5433/x?sslmode=disable&options=-csearch_path%3D{elsewhere.schema}"
    assert schema_name(-3, "20261206-144601") == "chaos_m3_20261206_144601"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--replicas", "0"], "--replicas 0: at least 1"),
        (["--replicas", "2", "--ledger", "sqlite:///var/x.sqlite3"], "a postgresql:// URL (replicas share"),
    ],
)
def test_replicas_without_a_postgresql_ledger_are_refused(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse(argv)

    assert stopped.value.code == 2
    assert said in capsys.readouterr().err
