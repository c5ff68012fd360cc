"""The five card services through the hub, in each region, with idempotent replay and key-reuse refusal."""

from __future__ import annotations

import grpc
import pytest

from adapters.domain import CardStatus
from gateway.api.status import error_reason
from tests.conftest import REGION_IDS, Federation, credential
from yikatong.v1 import card_affairs_pb2 as affairs
from yikatong.v1 import card_pb2, common_pb2


async def status_of(federation: Federation, card: common_pb2.CardCredential) -> int:
    answer = await federation.cards.GetCardStatus(card_pb2.GetCardStatusRequest(card=card), timeout=5)
    return answer.card.status


@pytest.mark.parametrize("region", REGION_IDS)
async def test_apply_then_follow_production_to_issue_then_enable(federation: Federation, region: str) -> None:
    person = federation.pick(region, lambda p: p.status is None and not p.fails_production)
    request = affairs.ApplyCardRequest(
        request_id=f"apply-{region}",
        social_security_number=person.social_security_number,
        holder_name=person.name,
        insured_area=person.issuing_area,
        delivery=affairs.DELIVERY_MAIL,
    )
    applied = await federation.affairs.ApplyCard(request, timeout=5)
    assert applied.application.stage == affairs.APPLICATION_STAGE_SUBMITTED
    assert applied.application.issuing_region == region
    assert await federation.affairs.ApplyCard(request, timeout=5) == applied

    sandbox = federation.sandboxes[region]
    sandbox.system.clock.advance(6 * sandbox.config.sandbox.stage_seconds)
    query = affairs.GetApplicationProgressRequest(
        social_security_number=person.social_security_number, holder_name=person.name
    )
    progress = (await federation.affairs.GetApplicationProgress(query, timeout=5)).application
    assert [e.stage for e in progress.history] == [
        affairs.APPLICATION_STAGE_SUBMITTED,
        affairs.APPLICATION_STAGE_BANK_ACCOUNT_OPENED,
        affairs.APPLICATION_STAGE_AT_CARD_FACTORY,
        affairs.APPLICATION_STAGE_KEYS_LOADED,
        affairs.APPLICATION_STAGE_MAILED,
        affairs.APPLICATION_STAGE_ISSUED,
    ]
    new_card = common_pb2.CardCredential(
        social_security_number=person.social_security_number,
        card_number=progress.card.card_number,
        card_identification_code=progress.card.card_identification_code,
        holder_name=person.name,
    )
    assert progress.card.status == common_pb2.CARD_STATUS_SEALED
    enabled = await federation.affairs.EnableSocialSecurity(
        affairs.EnableSocialSecurityRequest(request_id=f"enable-{region}", card=new_card), timeout=5
    )
    assert enabled.card.status == common_pb2.CARD_STATUS_NORMAL
    assert await status_of(federation, new_card) == common_pb2.CARD_STATUS_NORMAL


@pytest.mark.parametrize("region", REGION_IDS)
async def test_report_loss_and_cancel_it_replay_and_refuse_a_reused_key(federation: Federation, region: str) -> None:
    person, other = [p for p in federation.people(region) if p.status is CardStatus.NORMAL][:2]
    report = affairs.ReportLossRequest(request_id=f"loss-{region}", card=credential(person))
    first = await federation.affairs.ReportLoss(report, timeout=5)
    assert first.card.status == common_pb2.CARD_STATUS_TEMPORARILY_LOST
    assert await federation.affairs.ReportLoss(report, timeout=5) == first
    assert await status_of(federation, credential(person)) == common_pb2.CARD_STATUS_TEMPORARILY_LOST

    reused = affairs.ReportLossRequest(request_id=f"loss-{region}", card=credential(other))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await federation.affairs.ReportLoss(reused, timeout=5)
    assert refused.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert error_reason(refused.value) == "IDEMPOTENCY_KEY_REUSED"
    assert await status_of(federation, credential(other)) == common_pb2.CARD_STATUS_NORMAL

    cancel = affairs.CancelLossReportRequest(request_id=f"unloss-{region}", card=credential(person))
    cancelled = await federation.affairs.CancelLossReport(cancel, timeout=5)
    assert cancelled.card.status == common_pb2.CARD_STATUS_NORMAL
    assert await federation.affairs.CancelLossReport(cancel, timeout=5) == cancelled

    with pytest.raises(grpc.aio.AioRpcError) as conflict:
        await federation.affairs.CancelLossReport(
            affairs.CancelLossReportRequest(request_id=f"unloss-again-{region}", card=credential(person)), timeout=5
        )
    assert conflict.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(conflict.value) == "CARD_STATE_CONFLICT"


@pytest.mark.parametrize("region", REGION_IDS)
async def test_replace_cancels_the_old_card_and_starts_a_replacement(federation: Federation, region: str) -> None:
    person = federation.pick(region, lambda p: p.status is CardStatus.LOST)
    request = affairs.ReplaceCardRequest(
        request_id=f"replace-{region}", card=credential(person), reason=affairs.REPLACE_REASON_LOST
    )
    replaced = await federation.affairs.ReplaceCard(request, timeout=5)
    assert replaced.application.stage == affairs.APPLICATION_STAGE_SUBMITTED
    assert replaced.application.issuing_region == region
    assert await federation.affairs.ReplaceCard(request, timeout=5) == replaced
    assert await status_of(federation, credential(person)) == common_pb2.CARD_STATUS_CANCELLED

    request.reason = affairs.REPLACE_REASON_DAMAGED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await federation.affairs.ReplaceCard(request, timeout=5)
    assert refused.value.code() is grpc.StatusCode.ALREADY_EXISTS


async def test_a_refusal_is_replayed_as_the_same_refusal(federation: Federation) -> None:
    person = federation.pick("sichuan-chongqing", lambda p: p.status is CardStatus.NORMAL)
    enable = affairs.EnableSocialSecurityRequest(request_id="enable-normal", card=credential(person))
    codes = []
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await federation.affairs.EnableSocialSecurity(enable, timeout=5)
        codes.append((refused.value.code(), error_reason(refused.value)))
    assert codes == [(grpc.StatusCode.FAILED_PRECONDITION, "CARD_STATE_CONFLICT")] * 2


async def test_writes_need_a_request_id_and_the_holders_name(federation: Federation) -> None:
    person = federation.pick("yangtze-delta", lambda p: p.status is CardStatus.NORMAL)
    for request, field in (
        (affairs.ReportLossRequest(card=credential(person)), "request_id"),
        (affairs.ReportLossRequest(request_id="x" * 65, card=credential(person)), "request_id"),
        (affairs.ReportLossRequest(request_id="no-name", card=credential(person, with_name=False)), "card.holder_name"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await federation.affairs.ReportLoss(request, timeout=5)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert field in (refused.value.details() or "")
    assert await status_of(federation, credential(person)) == common_pb2.CARD_STATUS_NORMAL
