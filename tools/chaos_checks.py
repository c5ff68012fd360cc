"""The invariants a chaos run checks once the faults are cleared and the outbox has drained (``tools/chaos.py``).

Pure functions over plain data, so they are tested with planted differences (``tests/unit/test_chaos_checks.py``):

* the **journal** — every settle and reversal the run sent and what the hub answered (a call whose connection a
  hub kill cut is marked ``cut``: the hub never answered it);
* the **ledger** — the hub's settlement rows, read after it stopped from its SQLite file or, with replicas, the
  PostgreSQL schema they share (``tools/chaos_ledger.py``);
* the **region books** — each sandbox's ``GET /admin/settlements`` and ``GET /admin/accumulators``;
* the **seed** — each person's accumulators and account when the sandbox started;
* the **clearing reports** — ``GetClearingReport`` of every period the run touched;
* the **audit verdict** — what ``yikatong audit verify`` said of the ledger's audit chain.

Each check returns a :class:`Finding`: how many things it looked at and the differences, in words that name the
request id, what the hub said and what the region holds.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Hub settlement states that must not be left once the outbox has drained (REVERSING is the ledger's name for the
# API's REVERSAL_PENDING).
UNFINISHED = ("PENDING", "REVERSING", "REVERSAL_PENDING", "CORRECTION_PENDING")
FORBIDDEN_CODES = ("INTERNAL", "UNKNOWN")
TRANSPORT_CODES = ("DEADLINE_EXCEEDED", "CANCELLED", "UNAVAILABLE")  # without a reason, not the hub's word
IN_PROGRESS = "REQUEST_IN_PROGRESS"  # the hub's word that another call of the request id is not finished
VISITS = ("OUTPATIENT", "INPATIENT")


@dataclass(frozen=True)
class Money:
    """The parts of a split that move a person's money at the region."""

    deductible_fen: int
    fund_pay_fen: int
    account_pay_fen: int
    cash_pay_fen: int

    def __str__(self) -> str:
        return (
            f"fund {self.fund_pay_fen} / account {self.account_pay_fen} / cash {self.cash_pay_fen}"
            f" / deductible {self.deductible_fen}"
        )


@dataclass(frozen=True)
class Answer:
    """What one call got: ``code`` is the gRPC code name ("OK" on success), ``state`` the settlement state the
    hub answered (its enum name without prefix), ``cut`` a call whose connection a hub kill cut."""

    code: str
    reason: str = ""
    state: str = ""
    split: Money | None = None
    cut: bool = False
    message: str = ""

    def __str__(self) -> str:
        if self.cut:
            return f"cut by a kill ({self.code})"
        if self.code == "OK":
            return f"OK {self.state}" + (f" ({self.split})" if self.split else "")
        return f"{self.code}/{self.reason or '-'}"

    @property
    def heard(self) -> bool:
        """Whether this is the hub's word: not a connection a kill cut, nor the caller's own deadline or cancel, nor
        an UNAVAILABLE without a reason — the hub gives each of its errors an ``ErrorInfo``
        (``gateway/api/status.py``), so that one is the channel's (still backing off from a restarted hub: "failed
        to connect to all addresses"; or a connection that ended under the call)."""
        return not self.cut and (bool(self.reason) or self.code not in TRANSPORT_CODES)

    def detail(self) -> str:
        """The answer with the error's message."""
        return f"{self}: {self.message}" if self.message else str(self)


@dataclass
class SettleAsk:
    """One settlement request id the run sent (with its retries), and whom and where it was for."""

    request_id: str
    region: str
    ssn: str
    visit_type: str
    insured_province: str
    treatment_province: str
    answers: list[Answer] = field(default_factory=list)
    settlement_id: str = ""

    def last_word(self) -> Answer | None:
        """The hub's answer to the request's last call, when that answer tells the outcome; else None, and the
        ledger alone judges the request. A last call the hub did not answer (cut by a kill, or the channel's error)
        may have reached it and settled after what it said to an earlier call — with replicas, an earlier call's
        REGION_CIRCUIT_OPEN from one replica and a last call that another carried out to the region before it was
        killed. REQUEST_IN_PROGRESS tells no outcome either: another call of the request id (one a kill cut, on a
        replica whose claim outlives it until its lease ends) is still being carried out."""
        last = self.answers[-1] if self.answers else None
        return last if last is not None and last.heard and last.reason != IN_PROGRESS else None

    def answered_settled(self) -> Answer | None:
        """The hub's last word when it was a settlement (SETTLED, or REVERSED on a replay)."""
        word = self.last_word()
        return word if word is not None and word.code == "OK" and word.split is not None else None


@dataclass
class ReverseAsk:
    """One reversal request the run sent for a settlement it had been answered SETTLED for."""

    request_id: str
    settlement_id: str
    settle_request_id: str
    answers: list[Answer] = field(default_factory=list)

    def answered_reversed(self) -> bool:
        return any(a.code == "OK" and a.state == "REVERSED" for a in self.answers)


@dataclass(frozen=True)
class LedgerRow:
    """A settlement row of the hub's ledger (``region_request_id`` is the id the region knows it by)."""

    settlement_id: str
    request_id: str
    region_request_id: str
    state: str
    split: Money | None
    period: str


@dataclass(frozen=True)
class RegionRow:
    """A row of a region's ``GET /admin/settlements``."""

    region: str
    request_id: str
    state: str
    money: Money


@dataclass(frozen=True)
class PersonBooks:
    """A person's accumulators (visit type → (deductible used, fund paid)) and account balance."""

    accumulators: Mapping[str, tuple[int, int]]
    account_balance_fen: int

    def __str__(self) -> str:
        parts = [f"{v} deductible {d} fund {f}" for v, (d, f) in sorted(self.accumulators.items())]
        return "; ".join([*parts, f"account {self.account_balance_fen}"])


@dataclass(frozen=True)
class ClearingReport:
    """A period's report: pairs (insured province, treatment province) → (count, fund), and net positions."""

    period: str
    pairs: Mapping[tuple[str, str], tuple[int, int]]
    province_nets: Mapping[str, int]
    region_nets: Mapping[str, int]


@dataclass
class Finding:
    """One invariant: what was checked and the differences found."""

    title: str
    checked: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.differences


def _index_regions(region_rows: Iterable[RegionRow]) -> dict[str, RegionRow]:
    return {row.request_id: row for row in region_rows}


def check_answers(
    settles: Iterable[SettleAsk], reversals: Iterable[ReverseAsk], region_rows: Iterable[RegionRow]
) -> tuple[Finding, Finding]:
    """Every request the hub answered SETTLED is settled (or, once reversed, reversed) at the region with the same
    split; every request it answered otherwise is absent, corrected or reversed there. "Answered" is the hub's word
    to the request's last call (:meth:`SettleAsk.last_word`); a request without one (its last call cut by a kill,
    the caller's deadline, or told REQUEST_IN_PROGRESS) is left to :func:`check_ledger`: the hub may have settled
    it, and a retry would have been told so."""
    at_region = _index_regions(region_rows)
    reversed_ok = {r.settle_request_id for r in reversals if r.answered_reversed()}
    reversal_asked = {r.settle_request_id for r in reversals}
    settled = Finding("hub answered SETTLED -> settled at the region, same split")
    other = Finding("hub answered otherwise -> absent/corrected/reversed at the region")
    for ask in settles:
        row = at_region.get(ask.request_id)
        held = f"region holds {row.state} ({row.money})" if row else "region holds nothing"
        last, word = ask.last_word(), ask.answered_settled()
        if last is None:
            continue
        if word is None:
            other.checked += 1
            if row is not None and row.state == "SETTLED":
                other.differences.append(f"{ask.request_id}: hub said {last}; {held}")
            continue
        settled.checked += 1
        assert word.split is not None
        allowed = {"REVERSED"} if ask.request_id in reversed_ok or word.state == "REVERSED" else {"SETTLED"}
        if ask.request_id in reversal_asked and ask.request_id not in reversed_ok:
            allowed = {"SETTLED", "REVERSED"}  # its reversal was never answered: either is the hub's to know
        if row is None or row.state not in allowed or row.money != word.split:
            reversal = " and its reversal REVERSED" if ask.request_id in reversed_ok else ""
            settled.differences.append(f"{ask.request_id}: hub said {word}{reversal}; {held}")
    return settled, other


def check_ledger(ledger: Iterable[LedgerRow], region_rows: Iterable[RegionRow]) -> Finding:
    """The hub's books and the regions' agree row by row, and no row is left unfinished."""
    finding = Finding("hub ledger = region books; no PENDING/REVERSING row left")
    at_region = _index_regions(region_rows)
    known = set()
    expect = {"SETTLED": "SETTLED", "REVERSED": "REVERSED", "CORRECTED": "CORRECTED"}
    for entry in ledger:
        finding.checked += 1
        known.add(entry.region_request_id)
        row = at_region.get(entry.region_request_id)
        held = f"region holds {row.state} ({row.money})" if row else "region holds nothing"
        if entry.state in UNFINISHED or entry.state not in expect:
            finding.differences.append(f"{entry.request_id}: ledger left {entry.state}; {held}")
        elif row is None or row.state != expect[entry.state]:
            finding.differences.append(f"{entry.request_id}: ledger {entry.state}; {held}")
        elif entry.state != "CORRECTED" and entry.split != row.money:
            finding.differences.append(f"{entry.request_id}: ledger {entry.state} ({entry.split}); {held}")
    for request_id, row in at_region.items():
        if request_id not in known:
            finding.checked += 1
            if row.state == "SETTLED":
                finding.differences.append(f"{request_id}: no ledger row; region holds SETTLED ({row.money})")
    return finding


def expected_books(
    seed: Mapping[str, PersonBooks], settles: Iterable[SettleAsk], ledger: Iterable[LedgerRow]
) -> tuple[dict[str, PersonBooks], list[str]]:
    """Each person's seed plus what the ledger booked and did not reverse; and ledger rows of unknown requests."""
    asks = {a.request_id: a for a in settles}
    accumulators = {ssn: {v: list(books.accumulators.get(v, (0, 0))) for v in VISITS} for ssn, books in seed.items()}
    accounts = {ssn: books.account_balance_fen for ssn, books in seed.items()}
    strays = []
    for entry in ledger:
        if entry.state != "SETTLED" or entry.split is None:
            continue  # a reversal restores exactly what its settlement moved
        ask = asks.get(entry.request_id)
        if ask is None or ask.ssn not in accumulators:
            strays.append(f"{entry.request_id}: booked SETTLED for nobody the run sent")
            continue
        moved = accumulators[ask.ssn][ask.visit_type]
        moved[0] += entry.split.deductible_fen
        moved[1] += entry.split.fund_pay_fen
        accounts[ask.ssn] -= entry.split.account_pay_fen
    expected = {
        ssn: PersonBooks({v: (d, f) for v, (d, f) in acc.items()}, accounts[ssn]) for ssn, acc in accumulators.items()
    }
    return expected, strays


def check_people(
    seed: Mapping[str, PersonBooks],
    settles: Iterable[SettleAsk],
    ledger: Iterable[LedgerRow],
    region_books: Mapping[str, PersonBooks],
    mask: bool = True,
) -> Finding:
    """Per person: the region's accumulators and account = the seed + the hub's booked settlements − reversals."""
    finding = Finding("per person: region = seed + booked - reversed")
    expected, strays = expected_books(seed, settles, ledger)
    finding.differences.extend(strays)
    for ssn, books in sorted(expected.items()):
        finding.checked += 1
        found = region_books.get(ssn)
        shown = ssn[:4] + "*" * 10 + ssn[-4:] if mask else ssn
        if found is None:
            finding.differences.append(f"{shown}: region gave no books; expected {books}")
        elif found != books:
            finding.differences.append(f"{shown}: expected {books}; region holds {found}")
    return finding


def check_clearing(
    ledger: Iterable[LedgerRow], settles: Iterable[SettleAsk], reports: Iterable[ClearingReport]
) -> Finding:
    """The clearing pairs, over every period the run touched, equal booked minus reversed per pair; each report's
    province and region nets sum to 0, and each province's net is what its pairs say."""
    finding = Finding("clearing pairs = booked - reversed fund; nets sum to 0")
    asks = {a.request_id: a for a in settles}
    expected: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for entry in ledger:
        ask = asks.get(entry.request_id)
        if entry.state == "SETTLED" and entry.split is not None and ask is not None:
            booked = expected[(ask.insured_province, ask.treatment_province)]
            booked[0] += 1
            booked[1] += entry.split.fund_pay_fen
    reported: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for report in reports:
        for key, (count, fund) in report.pairs.items():
            reported[key][0] += count
            reported[key][1] += fund
        finding.differences.extend(_net_differences(report))
    for pair in sorted(set(expected) | set(reported)):
        finding.checked += 1
        want, got = tuple(expected.get(pair, [0, 0])), tuple(reported.get(pair, [0, 0]))
        if want != got:
            finding.differences.append(
                f"pair {pair[0]}->{pair[1]}: booked - reversed is {want[0]} for {want[1]} fen; report says {got[0]}"
                f" for {got[1]} fen"
            )
    return finding


def _net_differences(report: ClearingReport) -> list[str]:
    found = []
    for kind, nets in (("province", report.province_nets), ("region", report.region_nets)):
        if sum(nets.values()) != 0:
            found.append(f"{report.period}: {kind} nets sum to {sum(nets.values())}, not 0")
    by_pairs: Counter[str] = Counter()
    for (insured, treatment), (_, fund) in report.pairs.items():
        by_pairs[treatment] += fund
        by_pairs[insured] -= fund
    for province in sorted(set(by_pairs) | set(report.province_nets)):
        if by_pairs[province] != report.province_nets.get(province, 0):
            found.append(
                f"{report.period}: province {province} net {report.province_nets.get(province, 0)}; its pairs say"
                f" {by_pairs[province]}"
            )
    return found


def check_codes(answers: Iterable[tuple[str, str, Answer]]) -> Finding:
    """No call was answered INTERNAL or UNKNOWN (a call whose connection a hub kill cut was not answered)."""
    finding = Finding("no call answered INTERNAL or UNKNOWN")
    for method, request_id, answer in answers:
        finding.checked += 1
        if answer.code in FORBIDDEN_CODES and not answer.cut:
            finding.differences.append(f"{method} {request_id or '(read)'}: {answer.detail()}")
    return finding


def check_audit(exit_code: int, output: str) -> Finding:
    """``yikatong audit verify`` exited 0 saying the chain holds; anything else is a difference in its own words (a
    broken chain names its first bad record). Checked: the records it recomputed."""
    finding = Finding("audit chain holds (yikatong audit verify)")
    held = re.search(r"audit chain holds: (\d+) records", output)
    broken = re.search(r"broken at record (\d+)", output)
    finding.checked = int(held.group(1)) if held else int(broken.group(1)) if broken else 0
    if exit_code != 0 or held is None:
        said = " / ".join(line.strip() for line in output.splitlines() if line.strip()) or "nothing"
        finding.differences.append(f"audit verify exited {exit_code}: {said}")
    return finding
