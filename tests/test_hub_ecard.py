"""E-card QR tokens through the hub (DESIGN §4.8): accepted as the card they name, once; refused with a reason."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

import grpc
import pytest

from adapters.domain import CardStatus
from gateway.api.status import error_reason
from regions.ecard import b64url, credential_of, derive_key, issue_token
from regions.seed import SeededPerson
from tests.bills import settle_request
from tests.conftest import Federation
from yikatong.v1 import card_affairs_pb2, card_pb2, common_pb2, resident_pb2, settlement_pb2

VENUE = common_pb2.Venue(area_code="310104")


def token_request(token: str) -> card_pb2.VerifyCardRequest:
    return card_pb2.VerifyCardRequest(card=common_pb2.CardCredential(ecard_token=token), venue=VENUE)


def normal_person(federation: Federation, region: str, skip: int = 0) -> SeededPerson:
    return [p for p in federation.people(region) if p.status is CardStatus.NORMAL][skip]


async def test_a_valid_token_is_recognised_as_its_card_in_verify_and_authorize(federation: Federation) -> None:
    person = normal_person(federation, "sichuan-chongqing")
    verified = await federation.cards.VerifyCard(token_request(issue_token(credential_of(person))), timeout=5)
    authorized = await federation.resident.AuthorizeService(
        resident_pb2.AuthorizeServiceRequest(
            card=common_pb2.CardCredential(ecard_token=issue_token(credential_of(person))),
            service_kind=resident_pb2.SERVICE_KIND_PARK,
            venue=common_pb2.Venue(area_code="500103"),
        ),
        timeout=5,
    )

    assert verified.holder.social_security_number == person.social_security_number
    assert verified.card.card_number == person.card_number
    assert verified.issuing_region == "sichuan-chongqing"
    assert authorized.authorized and authorized.issuing_region == "sichuan-chongqing"
    assert federation.metric("yikatong_ecard_tokens_total", {"outcome": "accepted"}) == 2


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("expired", "ECARD_TOKEN_EXPIRED"),
        ("tampered", "ECARD_SIGNATURE_INVALID"),
        ("unknown key", "ECARD_KEY_UNKNOWN"),
        ("replayed", "ECARD_TOKEN_USED"),
    ],
)
async def test_a_bad_token_is_refused_with_its_own_reason(federation: Federation, case: str, reason: str) -> None:
    card = credential_of(normal_person(federation, "yangtze-delta", 3))
    if case == "expired":
        token = issue_token(card, ttl_seconds=10, now=time.time() - 30)
    elif case == "tampered":  # another person's card put into a genuine token, the signature kept
        body, signature = issue_token(card).split(".")
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        payload |= vars(credential_of(normal_person(federation, "yangtze-delta", 4)))
        token = f"{b64url(json.dumps(payload).encode())}.{signature}"
    elif case == "unknown key":
        token = issue_token(card, key=derive_key("a key nobody configured"), kid="rogue-2026")
    else:
        token = issue_token(card)
        await federation.cards.VerifyCard(token_request(token), timeout=5)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await federation.cards.VerifyCard(token_request(token), timeout=5)

    assert (refused.value.code(), error_reason(refused.value)) == (grpc.StatusCode.UNAUTHENTICATED, reason)
    assert federation.metric("yikatong_ecard_tokens_total", {"outcome": reason}) == 1


async def test_ten_concurrent_uses_of_one_token_accept_exactly_one(federation: Federation) -> None:
    person = normal_person(federation, "beijing-tianjin-hebei", 5)
    token = issue_token(credential_of(person))

    answers = await asyncio.gather(
        *(federation.cards.VerifyCard(token_request(token), timeout=5) for _ in range(10)), return_exceptions=True
    )

    accepted = [a for a in answers if isinstance(a, card_pb2.VerifyCardResponse)]
    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert len(accepted) == 1 and accepted[0].card.card_number == person.card_number
    assert [error_reason(e) for e in refused] == ["ECARD_TOKEN_USED"] * 9


async def test_a_token_stands_for_its_card_in_settlement_and_card_services_and_a_retry_replays(
    federation: Federation,
) -> None:
    person = next(p for p in federation.people("sichuan-chongqing") if p.status is CardStatus.NORMAL and p.insurance)
    token = issue_token(credential_of(person))
    request = settle_request(person, "310104")
    request.card.CopyFrom(common_pb2.CardCredential(ecard_token=token))

    settled = (await federation.settlement.Settle(request, timeout=5)).settlement
    again = (await federation.settlement.Settle(request, timeout=5)).settlement  # the used token is not asked again
    status = await federation.cards.GetCardStatus(
        card_pb2.GetCardStatusRequest(card=common_pb2.CardCredential(ecard_token=issue_token(credential_of(person)))),
        timeout=5,
    )
    reported = await federation.affairs.ReportLoss(
        card_affairs_pb2.ReportLossRequest(
            request_id=str(uuid.uuid4()),
            card=common_pb2.CardCredential(ecard_token=issue_token(credential_of(person))),
        ),
        timeout=5,
    )

    assert settled.state == settlement_pb2.SETTLEMENT_STATE_SETTLED and again == settled
    assert status.card.card_number == person.card_number
    assert reported.card.status == common_pb2.CARD_STATUS_TEMPORARILY_LOST
