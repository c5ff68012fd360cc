"""The adapter conformance suite: the built-in adapters keep every rule; a broken adapter fails by rule name.

The suite is used here exactly as a partner's pytest uses it (``rules()`` and ``check_rule``), and through
``yikatong adapter check`` / ``yikatong adapter list`` as a user runs them.
"""

from __future__ import annotations

import re
import ssl
import subprocess
from collections.abc import Awaitable
from dataclasses import replace
from typing import TypeVar

import pytest

from adapters import AdapterSettings, Bill, CardCredential, CardRecord, CardStatus, RegionSettlement
from adapters.conformance import Rule, RuleViolation, check_rule, resolve_region, rules, run
from adapters.errors import AdapterError, RegionTimeout
from adapters.sichuan_chongqing import SichuanChongqingAdapter
from adapters.tls import ClientTls
from adapters.yangtze_delta import YangtzeDeltaAdapter
from adapters.yangtze_delta.client import EnvelopeClient
from regions.config import CONFIG_DIR
from regions.sichuan_chongqing import signature

from .conftest import REGION_IDS, YIKATONG

RULE_IDS = [r.id for r in rules()]
T = TypeVar("T")


class BrokenAdapter(SichuanChongqingAdapter):
    """The Sichuan–Chongqing adapter with three bugs a partner's adapter could ship.

    1. A LOCKED card is read as NORMAL (a status-code table missing a row).
    2. A repeated settle goes out under a fresh message id, so the region settles the bill again.
    3. A timeout is swallowed into a generic adapter error, which tells the hub nothing reached the region.
    """

    def __init__(self, settings: AdapterSettings) -> None:
        super().__init__(settings)
        self._sent: set[str] = set()

    async def get_card(self, credential: CardCredential, *, timeout: float) -> CardRecord:
        record = await self._swallowing_timeouts(super().get_card(credential, timeout=timeout))
        if record.card.status is CardStatus.LOCKED:
            return replace(record, card=replace(record.card, status=CardStatus.NORMAL))
        return record

    async def settle(self, bill: Bill, *, timeout: float) -> RegionSettlement:
        message_id = f"{bill.request_id}/again" if bill.request_id in self._sent else bill.request_id
        self._sent.add(bill.request_id)
        sent = replace(bill, request_id=message_id)
        settlement = await self._swallowing_timeouts(super().settle(sent, timeout=timeout))
        return replace(settlement, request_id=bill.request_id)

    async def _swallowing_timeouts(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except RegionTimeout as exc:
            raise AdapterError(self.region_id, "call failed") from exc


class CarelessTls(ClientTls):
    """Takes whatever certificate the region shows, as ``ssl=False`` in aiohttp would."""

    def ssl_context(self) -> ssl.SSLContext:
        context = super().ssl_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return context


class CarelessAdapter(YangtzeDeltaAdapter):
    """The Yangtze Delta adapter with its link's certificate check turned off."""

    def __init__(self, settings: AdapterSettings) -> None:
        super().__init__(settings)
        tls = CarelessTls.from_options(settings.options, settings.region_id)
        self._client = EnvelopeClient(settings.region_id, settings.endpoint, "000000", tls)


class UnstartableAdapter(SichuanChongqingAdapter):
    async def start(self) -> None:
        raise OSError("no route to the region")


def statement(rule_id: str) -> str:
    return rules(rule_id)[0].statement


@pytest.mark.slow
@pytest.mark.parametrize("region", REGION_IDS)
@pytest.mark.parametrize("rule", rules(), ids=str)
async def test_every_built_in_adapter_keeps_every_rule(rule: Rule, region: str) -> None:
    await check_rule(rule, region=region)


async def test_a_broken_adapter_fails_exactly_the_rules_it_breaks_naming_each() -> None:
    report = await run(region="sichuan-chongqing", adapter_class=BrokenAdapter)

    failed = {v.rule_id: str(v) for v in report.failures}
    assert sorted(failed) == ["CARD-STATUS-MAPPING", "DEADLINE", "SETTLE-REPLAY"]
    assert failed["CARD-STATUS-MAPPING"] == (
        f"[CARD-STATUS-MAPPING] {statement('CARD-STATUS-MAPPING')}: "
        "expected the LOCKED card's status CardStatus.LOCKED, got CardStatus.NORMAL"
    )
    replay = re.fullmatch(
        rf"\[SETTLE-REPLAY\] {re.escape(statement('SETTLE-REPLAY'))}: "
        r"expected region_settlement_id '(sichuan-chongqing-S\d+)', got '(sichuan-chongqing-S\d+)'",
        failed["SETTLE-REPLAY"],
    )
    assert replay is not None and replay.group(1) != replay.group(2)
    assert re.fullmatch(
        rf"\[DEADLINE\] {re.escape(statement('DEADLINE'))}: expected settle answered late to raise RegionTimeout, "
        r"got AdapterError: region sichuan-chongqing: call failed after \d+\.\d\d s",
        failed["DEADLINE"],
    )
    assert [r.rule.id for r in report.results] == RULE_IDS
    assert sum(r.passed for r in report.results) == len(RULE_IDS) - 3
    assert report.adapter == "tests.test_conformance:BrokenAdapter"
    assert not report.passed


async def test_an_adapter_that_trusts_any_certificate_fails_the_tls_rule() -> None:
    report = await run(region="yangtze-delta", adapter_class=CarelessAdapter, only=rules("LINK-TLS-VERIFIED"))

    (violation,) = report.failures
    assert violation.rule_id == "LINK-TLS-VERIFIED"
    assert violation.expected == (
        "get_card through a link whose certificate the adapter does not trust to raise RegionUnavailable"
    )
    assert violation.got.startswith("an answer: CardRecord(")


async def test_the_link_rules_catch_a_region_that_takes_replays_or_signs_no_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(signature.NonceWindow, "admit", lambda *_: True)  # forgets every nonce
    replayed = await run(region="sichuan-chongqing", only=rules("LINK-REPLAY-REFUSED"))
    monkeypatch.setattr(signature, "check", lambda *_, **__: None)  # takes any request as signed
    pointed = await run(region="sichuan-chongqing", only=rules("LINK-TAMPER-REFUSED"))

    assert [str(v) for v in replayed.failures] == [
        f"[LINK-REPLAY-REFUSED] {statement('LINK-REPLAY-REFUSED')}: "
        "expected the replayed settlement to be refused, got the region accepted it"
    ]
    assert [str(v) for v in pointed.failures] == [
        f"[LINK-TAMPER-REFUSED] {statement('LINK-TAMPER-REFUSED')}: "
        "expected the correction pointed at another settlement to be refused, got the region accepted it"
    ]


async def test_check_rule_raises_the_violation_for_a_partners_pytest() -> None:
    (rule,) = rules("CARD-STATUS-MAPPING")

    with pytest.raises(RuleViolation) as caught:
        await check_rule(rule, adapter_class=BrokenAdapter, region=CONFIG_DIR / "sichuan-chongqing.toml")

    violation = caught.value
    assert (violation.rule_id, violation.statement) == (rule.id, rule.statement)
    assert (violation.expected, violation.got) == ("the LOCKED card's status CardStatus.LOCKED", "CardStatus.NORMAL")
    assert isinstance(violation, AssertionError)  # pytest shows it as a plain assertion failure


async def test_an_adapter_that_cannot_start_fails_each_rule_saying_so() -> None:
    report = await run(
        region="sichuan-chongqing", adapter_class=UnstartableAdapter, only=rules("HEALTH", "SETTLE-SPLIT")
    )

    assert [str(v) for v in report.failures] == [
        f"[{rule_id}] {statement(rule_id)}: expected UnstartableAdapter to start, got OSError: no route to the region"
        for rule_id in ("HEALTH", "SETTLE-SPLIT")
    ]


def test_rules_have_unique_ids_one_line_statements_and_str_is_the_id() -> None:
    every = rules()

    assert len(RULE_IDS) == len(set(RULE_IDS)) >= 20
    assert {
        "IDENTIFIERS",
        "CARD-STATUS-MAPPING",
        "CARD-APPLY",
        "CARD-ENABLE",
        "CARD-LOSS-REPORT",
        "CARD-REPLACE",
        "CARD-PROGRESS",
        "CARD-KEY-REUSED",
        "SETTLE-SPLIT",
        "SETTLE-REPLAY",
        "SETTLE-OUTCOME",
        "SETTLE-CORRECTION",
        "SETTLE-REVERSAL",
        "ERROR-UNAVAILABLE",
        "ERROR-REFUSAL",
        "DEADLINE",
        "HEALTH",
        "STAND-IN-ADVICE",
        "LINK-TLS-VERIFIED",
        "LINK-REPLAY-REFUSED",
        "LINK-TAMPER-REFUSED",
    } <= set(RULE_IDS)
    assert all(str(r) == r.id and r.statement and "\n" not in r.statement for r in every)
    assert rules("HEALTH", "IDENTIFIERS") == [every[RULE_IDS.index("HEALTH")], every[0]]
    with pytest.raises(KeyError, match="NO-SUCH-RULE"):
        rules("NO-SUCH-RULE")
    with pytest.raises(ValueError, match="upper-case"):
        Rule("settle replay", "a statement", every[0].check)


def test_a_region_is_named_by_id_file_or_config_and_an_unknown_one_is_refused() -> None:
    by_id = resolve_region("sichuan-chongqing")

    assert resolve_region(CONFIG_DIR / "sichuan-chongqing.toml") == by_id
    assert resolve_region(by_id) is by_id
    with pytest.raises(LookupError, match="no configured region 'atlantis'"):
        resolve_region("atlantis")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([YIKATONG, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.slow
def test_adapter_check_prints_a_pass_line_per_rule_and_exits_0() -> None:
    done = run_cli("adapter", "check", "--region", "sichuan-chongqing")

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert (
        lines[0]
        == "conformance of adapters.sichuan_chongqing.client:SichuanChongqingAdapter against region sichuan-chongqing"
    )
    assert lines[1:-1] == [f"PASS  {r.id}  {r.statement}" for r in rules()]
    assert lines[-1] == f"{len(RULE_IDS)} rules: {len(RULE_IDS)} passed, 0 failed"


def test_adapter_check_of_an_unknown_region_or_rule_exits_2() -> None:
    region = run_cli("adapter", "check", "--region", "atlantis")
    rule = run_cli("adapter", "check", "--region", "sichuan-chongqing", "--rule", "NO-SUCH-RULE")

    assert (region.returncode, region.stdout) == (2, "")
    assert "no configured region 'atlantis'" in region.stderr
    assert (rule.returncode, rule.stdout) == (2, "")
    assert "no conformance rule NO-SUCH-RULE" in rule.stderr


def test_adapter_list_shows_the_built_in_adapters_and_their_regions() -> None:
    done = run_cli("adapter", "list")

    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
    assert done.stdout.split()[:4] == ["NAME", "CLASS", "DISTRIBUTION", "REGIONS"]
    assert rows["yangtze-delta"] == [
        "yangtze-delta",
        "adapters.yangtze_delta:YangtzeDeltaAdapter",
        "yikatong-gateway",
        "0.1.0",
        "yangtze-delta",
    ]
    assert rows["sichuan-chongqing"][1] == "adapters.sichuan_chongqing:SichuanChongqingAdapter"
    assert rows["sichuan-chongqing"][-1] == "sichuan-chongqing"
    assert rows["beijing-tianjin-hebei"][1] == "adapters.jingjinji:JingjinjiAdapter"
    assert rows["beijing-tianjin-hebei"][-1] == "beijing-tianjin-hebei"
