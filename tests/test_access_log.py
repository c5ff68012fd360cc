"""One structured access-log line per RPC, with no personal number in it."""

from __future__ import annotations

import json
import logging

import grpc
import pytest

from adapters.domain import CardStatus
from gateway.masking import mask_text
from tests.conftest import Federation, credential
from yikatong.v1 import card_pb2, common_pb2


def test_mask_text_masks_ssns_codes_and_card_numbers() -> None:
    text = "510105199001011234 320200D156000005AD932A48BDC3B9E9 card B7K334774"
    assert mask_text(text) == "5101**********1234 320200**********************B9E9 card B7*****74"


async def test_each_rpc_logs_one_line_without_personal_numbers(
    federation: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    person = federation.pick("sichuan-chongqing", lambda p: p.status is CardStatus.LOST)
    request = card_pb2.VerifyCardRequest(card=credential(person), venue=common_pb2.Venue(area_code="310104"))
    with caplog.at_level(logging.INFO, logger="yikatong.access"), pytest.raises(grpc.aio.AioRpcError):
        await federation.cards.VerifyCard(request, metadata=(("x-request-id", "trace-42"),), timeout=5)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "yikatong.access"]
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "/yikatong.v1.CardService/VerifyCard"
    assert (line["region"], line["code"], line["attempts"], line["request_id"]) == (
        "sichuan-chongqing",
        "FAILED_PRECONDITION",
        1,
        "trace-42",
    )
    logged = caplog.text
    for number in (person.social_security_number, person.card_number, person.card_identification_code):
        assert number not in logged
