"""Behaviour every region adapter shares, each run against its region's real sandbox on loopback port 0.

Tests of one region's own wire protocol stay in ``test_region_<region>.py``.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from importlib.metadata import entry_points

import pytest

from adapters import (
    AdapterSettings,
    ApplyCard,
    Card,
    CardAction,
    CardCredential,
    CardStatus,
    ChangeCard,
    Delivery,
    InsuranceType,
    ReplaceCard,
    ReplaceReason,
    Stage,
)
from adapters.errors import (
    ApplicationNotFound,
    CardAlreadyHeld,
    CardNotFound,
    CardStateConflict,
    HolderMismatch,
    HolderNotFound,
    IdempotencyKeyReused,
    RegionTimeout,
    RegionUnavailable,
)
from adapters.identifiers import ssn_check
from adapters.interface import RegionAdapter
from adapters.jingjinji import JingjinjiAdapter
from adapters.registry import AdapterRegistry
from adapters.sichuan_chongqing import SichuanChongqingAdapter
from adapters.yangtze_delta import YangtzeDeltaAdapter
from regions.cardsystem import CardRow, PersonRow
from regions.config import RegionConfig
from regions.sandbox import RunningSandbox

from .conftest import REGION_IDS

StartSandbox = Callable[[str], Awaitable[RunningSandbox]]
MakeAdapter = Callable[[str], Awaitable[RegionAdapter]]

TIMEOUT = 5.0
UNKNOWN_SSN = "11010119900101123" + ssn_check("11010119900101123")  # well-formed, seeded in no region
ADAPTER_CLASSES: dict[str, type[RegionAdapter]] = {
    "yangtze-delta": YangtzeDeltaAdapter,
    "sichuan-chongqing": SichuanChongqingAdapter,
    "beijing-tianjin-hebei": JingjinjiAdapter,
}
ALL_STAGES = [
    Stage.SUBMITTED,
    Stage.BANK_ACCOUNT_OPENED,
    Stage.AT_CARD_FACTORY,
    Stage.KEYS_LOADED,
    Stage.READY_AT_OUTLET,
    Stage.ISSUED,
]


@pytest.fixture(params=REGION_IDS)
def region(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def sandbox(start_region: StartSandbox, region: str) -> RunningSandbox:
    return await start_region(region)


@pytest.fixture
async def make_adapter(sandbox: RunningSandbox) -> AsyncIterator[MakeAdapter]:
    """Build and start the region's adapter (from the registry, with its configured options) for an endpoint."""
    made: list[RegionAdapter] = []
    config = sandbox.config

    async def make(endpoint: str) -> RegionAdapter:
        cls = AdapterRegistry.from_entry_points().get(config.adapter)
        made.append(cls(AdapterSettings(config.region_id, endpoint, dict(config.options))))
        await made[-1].start()
        return made[-1]

    yield make
    for adapter in made:
        await adapter.close()


@pytest.fixture
async def adapter(sandbox: RunningSandbox, make_adapter: MakeAdapter) -> RegionAdapter:
    return await make_adapter(sandbox.address)


def card_row(sandbox: RunningSandbox, status: CardStatus, *, insured: bool = False) -> CardRow:
    system = sandbox.system
    return next(
        row
        for row in system.cards.values()
        if row.card.status is status and (system.people[row.ssn].insurance is not None or not insured)
    )


def credential(sandbox: RunningSandbox, row: CardRow) -> CardCredential:
    name = sandbox.system.people[row.ssn].holder.name
    card = row.card
    return CardCredential(row.ssn, card.card_number, card.card_identification_code, card.issuing_area, name)


def cardless(sandbox: RunningSandbox) -> PersonRow:
    return next(
        p
        for p in sandbox.system.people.values()
        if not p.card_numbers and not p.applications and not p.fails_production
    )


def apply_request(person: PersonRow, delivery: Delivery = Delivery.OUTLET) -> ApplyCard:
    area = person.insurance.insured_area if person.insurance else person.holder.social_security_number[:6]
    return ApplyCard(str(uuid.uuid4()), person.holder.social_security_number, person.holder.name, area, delivery)


def status_changes(sandbox: RunningSandbox) -> list[Card]:
    seen: list[Card] = []
    sandbox.system.listeners.append(lambda card, _ssn: seen.append(card))
    return seen


# --- reads --------------------------------------------------------------------------------------------


async def test_get_card_of_a_normal_card_returns_holder_and_insurance(
    sandbox: RunningSandbox, adapter: RegionAdapter
) -> None:
    row = card_row(sandbox, CardStatus.NORMAL, insured=True)
    person = sandbox.system.people[row.ssn]

    record = await adapter.get_card(credential(sandbox, row), timeout=TIMEOUT)

    assert record.card == row.card
    assert record.holder == person.holder
    assert record.insurances == (person.insurance,)
    assert record.insurances[0].insurance_type in (InsuranceType.EMPLOYEE, InsuranceType.RESIDENT)


@pytest.mark.parametrize("status", [s for s in CardStatus if s is not CardStatus.NORMAL])
async def test_get_card_reports_every_other_status_without_error(
    sandbox: RunningSandbox, adapter: RegionAdapter, status: CardStatus
) -> None:
    record = await adapter.get_card(credential(sandbox, card_row(sandbox, status)), timeout=TIMEOUT)

    assert record.card.status is status


async def test_get_card_of_an_uninsured_holder_has_no_insurances(
    sandbox: RunningSandbox, adapter: RegionAdapter
) -> None:
    row = next(r for r in sandbox.system.cards.values() if sandbox.system.people[r.ssn].insurance is None)

    record = await adapter.get_card(credential(sandbox, row), timeout=TIMEOUT)

    assert record.insurances == ()


@pytest.mark.parametrize("wrong", ["social_security_number", "card_identification_code", "holder_name", "bare-ssn"])
async def test_get_card_with_a_field_of_another_holder_is_a_holder_mismatch(
    sandbox: RunningSandbox, adapter: RegionAdapter, wrong: str
) -> None:
    cred = credential(sandbox, card_row(sandbox, CardStatus.NORMAL))
    other = credential(sandbox, card_row(sandbox, CardStatus.SEALED))
    assert other.social_security_number != cred.social_security_number
    if wrong == "holder_name":
        cred = replace(cred, holder_name=cred.holder_name + "某")
    elif wrong == "bare-ssn":  # another person's number, no identification code, no name
        cred = replace(cred, social_security_number=other.social_security_number, card_identification_code="")
        cred = replace(cred, holder_name="")
    else:
        cred = replace(cred, **{wrong: getattr(other, wrong)})

    with pytest.raises(HolderMismatch) as caught:
        await adapter.get_card(cred, timeout=TIMEOUT)
    assert caught.value.reason == "HOLDER_MISMATCH"


@pytest.mark.parametrize("holder", ["seeded", "unknown"])
async def test_get_card_of_an_unknown_card_number_is_card_not_found(
    sandbox: RunningSandbox, adapter: RegionAdapter, region: str, holder: str
) -> None:
    row = card_row(sandbox, CardStatus.NORMAL)
    ssn = row.ssn if holder == "seeded" else UNKNOWN_SSN
    assert "X00000019" not in sandbox.system.cards

    with pytest.raises(CardNotFound) as caught:
        await adapter.get_card(CardCredential(ssn, "X00000019", "", row.card.issuing_area, ""), timeout=TIMEOUT)
    if region == "yangtze-delta":  # only the envelope protocol names the region in the refusal itself
        assert caught.value.metadata["region"] == region


async def test_knows_holder(sandbox: RunningSandbox, adapter: RegionAdapter) -> None:
    known = next(iter(sandbox.system.people))
    assert UNKNOWN_SSN not in sandbox.system.people

    assert await adapter.knows_holder(known, timeout=TIMEOUT) is True
    assert await adapter.knows_holder(UNKNOWN_SSN, timeout=TIMEOUT) is False


async def test_check_health_answers(adapter: RegionAdapter) -> None:
    await adapter.check_health(timeout=TIMEOUT)


# --- applications -------------------------------------------------------------------------------------


async def test_application_moves_through_every_stage_to_issued(sandbox: RunningSandbox, adapter: RegionAdapter) -> None:
    person = cardless(sandbox)
    ssn, name = person.holder.social_security_number, person.holder.name

    submitted = await adapter.apply_card(apply_request(person), timeout=TIMEOUT)
    progress = await adapter.get_application(ssn, name, timeout=TIMEOUT)
    stages = [progress.stage]
    for _ in range(5):
        sandbox.system.clock.advance(sandbox.system.stage_seconds)
        stages.append((await adapter.get_application(ssn, name, timeout=TIMEOUT)).stage)
    issued = await adapter.get_application(ssn, name, timeout=TIMEOUT)

    assert submitted.stage is Stage.SUBMITTED
    assert progress.application_id == submitted.application_id
    assert stages == ALL_STAGES
    assert [e.stage for e in issued.history] == ALL_STAGES
    assert issued == sandbox.system.application(ssn, name)  # history and times survive the wire
    assert issued.application_id == submitted.application_id
    assert issued.card is not None and issued.card.status is CardStatus.SEALED
    assert issued.card.card_number in sandbox.system.cards


async def test_an_application_issues_in_one_long_clock_jump(sandbox: RunningSandbox, adapter: RegionAdapter) -> None:
    person = cardless(sandbox)
    ssn, name = person.holder.social_security_number, person.holder.name

    await adapter.apply_card(apply_request(person), timeout=TIMEOUT)
    sandbox.system.clock.advance(3600)
    issued = await adapter.get_application(ssn, name, timeout=TIMEOUT)

    assert issued.stage is Stage.ISSUED
    assert [e.stage for e in issued.history] == ALL_STAGES


async def test_mailed_application_passes_the_mailed_stage(sandbox: RunningSandbox, adapter: RegionAdapter) -> None:
    person = cardless(sandbox)
    await adapter.apply_card(apply_request(person, Delivery.MAIL), timeout=TIMEOUT)
    sandbox.system.clock.advance(4 * sandbox.system.stage_seconds)

    application = await adapter.get_application(
        person.holder.social_security_number, person.holder.name, timeout=TIMEOUT
    )

    assert application.stage is Stage.MAILED
    assert [e.stage for e in application.history][-2:] == [Stage.KEYS_LOADED, Stage.MAILED]


async def test_a_failed_application_carries_its_reason(sandbox: RunningSandbox, adapter: RegionAdapter) -> None:
    person = cardless(sandbox)
    person.fails_production = True  # the seed has few such people; make one
    await adapter.apply_card(apply_request(person), timeout=TIMEOUT)
    sandbox.system.clock.advance(sandbox.system.stage_seconds * 10)

    failed = await adapter.get_application(person.holder.social_security_number, person.holder.name, timeout=TIMEOUT)

    assert failed.stage is Stage.FAILED
    assert failed.failure_reason
    assert failed.card is None


async def test_apply_refusals(sandbox: RunningSandbox, adapter: RegionAdapter) -> None:
    holder = sandbox.system.people[card_row(sandbox, CardStatus.NORMAL).ssn]
    person = cardless(sandbox)
    area = person.holder.social_security_number[:6]

    with pytest.raises(CardAlreadyHeld):
        await adapter.apply_card(apply_request(holder), timeout=TIMEOUT)
    with pytest.raises(HolderNotFound):
        await adapter.apply_card(ApplyCard(str(uuid.uuid4()), UNKNOWN_SSN, "王伟", area), timeout=TIMEOUT)
    with pytest.raises(HolderMismatch):
        await adapter.apply_card(replace(apply_request(holder), holder_name="某某"), timeout=TIMEOUT)
    with pytest.raises(HolderMismatch):
        await adapter.apply_card(replace(apply_request(person), holder_name="无名"), timeout=TIMEOUT)
    with pytest.raises(ApplicationNotFound):
        await adapter.get_application(person.holder.social_security_number, person.holder.name, timeout=TIMEOUT)
    assert person.applications == []


# --- card status changes and replacement -----------------------------------------------------------------


async def test_enable_report_loss_and_cancel_loss(sandbox: RunningSandbox, adapter: RegionAdapter) -> None:
    cred = credential(sandbox, card_row(sandbox, CardStatus.SEALED))

    enabled = await adapter.change_card(ChangeCard(str(uuid.uuid4()), cred, CardAction.ENABLE), timeout=TIMEOUT)
    lost = await adapter.change_card(ChangeCard(str(uuid.uuid4()), cred, CardAction.REPORT_LOSS), timeout=TIMEOUT)
    found = await adapter.change_card(ChangeCard(str(uuid.uuid4()), cred, CardAction.CANCEL_LOSS), timeout=TIMEOUT)

    assert enabled.status is CardStatus.NORMAL
    assert lost.status is CardStatus.TEMPORARILY_LOST
    assert found.status is CardStatus.NORMAL
    assert sandbox.system.cards[cred.card_number].card == found


@pytest.mark.parametrize(
    ("status", "action"),
    [(CardStatus.NORMAL, CardAction.ENABLE), (CardStatus.LOST, CardAction.CANCEL_LOSS)],
)
async def test_a_change_not_allowed_from_the_status_is_a_conflict(
    sandbox: RunningSandbox, adapter: RegionAdapter, status: CardStatus, action: CardAction
) -> None:
    cred = credential(sandbox, card_row(sandbox, status))

    with pytest.raises(CardStateConflict) as caught:
        await adapter.change_card(ChangeCard(str(uuid.uuid4()), cred, action), timeout=TIMEOUT)

    assert caught.value.metadata == {"action": action.name, "status": status.name}
    assert sandbox.system.cards[cred.card_number].card.status is status


async def test_replace_cancels_the_old_card_and_starts_an_application(
    sandbox: RunningSandbox, adapter: RegionAdapter
) -> None:
    cred = credential(sandbox, card_row(sandbox, CardStatus.NORMAL))
    request = ReplaceCard(str(uuid.uuid4()), cred, ReplaceReason.DAMAGED)

    application = await adapter.replace_card(request, timeout=TIMEOUT)

    assert application.stage is Stage.SUBMITTED
    assert sandbox.system.cards[cred.card_number].card.status is CardStatus.CANCELLED
    assert (await adapter.get_card(cred, timeout=TIMEOUT)).card.status is CardStatus.CANCELLED
    progress = await adapter.get_application(cred.social_security_number, cred.holder_name, timeout=TIMEOUT)
    assert progress.application_id == application.application_id
    with pytest.raises(CardStateConflict) as caught:
        await adapter.replace_card(replace(request, request_id=str(uuid.uuid4())), timeout=TIMEOUT)
    assert caught.value.metadata == {"action": "REPLACE", "status": "CANCELLED"}


# --- idempotency ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "action", "after"),
    [
        (CardStatus.SEALED, CardAction.ENABLE, CardStatus.NORMAL),
        (CardStatus.NORMAL, CardAction.REPORT_LOSS, CardStatus.TEMPORARILY_LOST),
    ],
)
async def test_a_replayed_write_gets_the_same_answer_and_changes_once(
    sandbox: RunningSandbox, adapter: RegionAdapter, status: CardStatus, action: CardAction, after: CardStatus
) -> None:
    changes = status_changes(sandbox)
    request = ChangeCard("same-id", credential(sandbox, card_row(sandbox, status)), action)

    first = await adapter.change_card(request, timeout=TIMEOUT)
    second = await adapter.change_card(request, timeout=TIMEOUT)

    assert first == second
    assert first.status is after
    assert [c.status for c in changes] == [after]


async def test_a_replayed_application_is_one_application(sandbox: RunningSandbox, adapter: RegionAdapter) -> None:
    person = cardless(sandbox)
    request = apply_request(person)

    first = await adapter.apply_card(request, timeout=TIMEOUT)
    second = await adapter.apply_card(request, timeout=TIMEOUT)

    assert first == second
    assert first.application_id == second.application_id
    assert len(person.applications) == 1


async def test_the_same_request_id_for_another_request_is_refused(
    sandbox: RunningSandbox, adapter: RegionAdapter
) -> None:
    cred = credential(sandbox, card_row(sandbox, CardStatus.NORMAL))
    await adapter.change_card(ChangeCard("req-reused", cred, CardAction.REPORT_LOSS), timeout=TIMEOUT)

    with pytest.raises(IdempotencyKeyReused) as caught:
        await adapter.change_card(ChangeCard("req-reused", cred, CardAction.CANCEL_LOSS), timeout=TIMEOUT)
    assert caught.value.metadata == {"request_id": "req-reused"}
    assert sandbox.system.cards[cred.card_number].card.status is CardStatus.TEMPORARILY_LOST


# --- faults -----------------------------------------------------------------------------------------------


Read = Callable[[RunningSandbox, RegionAdapter, float], Awaitable[object]]
READS: dict[str, Read] = {
    "check_health": lambda _sandbox, adapter, timeout: adapter.check_health(timeout=timeout),
    "knows_holder": lambda _sandbox, adapter, timeout: adapter.knows_holder(UNKNOWN_SSN, timeout=timeout),
    "get_card": lambda sandbox, adapter, timeout: adapter.get_card(
        credential(sandbox, card_row(sandbox, CardStatus.NORMAL)), timeout=timeout
    ),
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
async def test_a_region_that_is_down_is_unavailable(
    sandbox: RunningSandbox, adapter: RegionAdapter, region: str, read: Read
) -> None:
    sandbox.faults.down = True

    with pytest.raises(RegionUnavailable) as caught:
        await read(sandbox, adapter, TIMEOUT)
    # The region answered that it is down: whether it acted cannot be proven, so it may have been reached.
    assert caught.value.retryable and caught.value.may_have_reached
    assert caught.value.region == region
    assert caught.value.metadata == {"region": region}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
async def test_a_slow_region_times_out(sandbox: RunningSandbox, adapter: RegionAdapter, read: Read) -> None:
    sandbox.faults.latency_ms = 500

    with pytest.raises(RegionTimeout) as caught:
        await read(sandbox, adapter, 0.1)
    assert caught.value.may_have_reached


@pytest.mark.parametrize("status", [CardStatus.SEALED, CardStatus.NORMAL])
async def test_a_busy_region_is_unavailable_and_does_not_act(
    sandbox: RunningSandbox, adapter: RegionAdapter, region: str, status: CardStatus
) -> None:
    changes = status_changes(sandbox)
    sandbox.faults.error_rate = 1.0
    cred = credential(sandbox, card_row(sandbox, status))
    action = CardAction.ENABLE if status is CardStatus.SEALED else CardAction.REPORT_LOSS

    with pytest.raises(RegionUnavailable):
        await adapter.change_card(ChangeCard(str(uuid.uuid4()), cred, action), timeout=TIMEOUT)
    with pytest.raises(RegionUnavailable) as caught:
        await adapter.knows_holder(UNKNOWN_SSN, timeout=TIMEOUT)
    assert caught.value.retryable and caught.value.may_have_reached
    assert caught.value.region == region
    assert changes == []
    assert sandbox.system.cards[cred.card_number].card.status is status


async def test_connection_refused_is_unavailable(sandbox: RunningSandbox, make_adapter: MakeAdapter) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scheme = sandbox.address.split("//")[0] + "//" if "//" in sandbox.address else ""
    adapter = await make_adapter(f"{scheme}127.0.0.1:{port}")

    with pytest.raises(RegionUnavailable):
        await adapter.check_health(timeout=TIMEOUT)


def test_the_adapter_is_registered_under_its_entry_point(region: str, region_configs: dict[str, RegionConfig]) -> None:
    config = region_configs[region]
    (entry,) = entry_points(group="yikatong.adapters", name=region)

    assert config.adapter == region
    assert entry.load() is ADAPTER_CLASSES[region]
    assert AdapterRegistry.from_entry_points().get(config.adapter) is ADAPTER_CLASSES[region]
