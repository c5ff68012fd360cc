"""One structured access-log line per RPC, with no personal number in it."""

from __future__ import annotations

import io
import json
import logging
import time

import grpc
import pytest

from adapters.domain import CardStatus
from gateway.logwriter import BatchWriter
from gateway.masking import MaskingFilter, mask_text
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


def test_the_batch_writer_writes_every_line_masked_in_order_and_the_rest_on_close() -> None:
    stream = io.StringIO()
    writer = BatchWriter(stream, interval=0.01)
    writer.setFormatter(logging.Formatter("%(message)s"))
    writer.addFilter(MaskingFilter())
    logger = logging.getLogger("test.batch")
    logger.addHandler(writer)
    logger.propagate = False
    try:
        logger.warning("first, SSN %s", "510105199001011234")
        deadline = time.monotonic() + 5
        while not stream.getvalue():  # written by the writer's thread, a batch later
            assert time.monotonic() < deadline
            time.sleep(0.005)
        for n in range(100):
            logger.warning("line %d", n)
    finally:
        logger.removeHandler(writer)
        writer.close()  # what is still gathered is written
    assert stream.getvalue().splitlines() == ["first, SSN 5101**********1234", *(f"line {n}" for n in range(100))]


def test_the_quick_look_passes_plain_lines_and_masks_what_it_must() -> None:
    plain = '{"method": "/yikatong.v1.CardService/VerifyCard", "request_id": "5f0c1e2d3b4a49a8b7c6d5e4f3a2b1c0"}'
    assert mask_text(plain) == plain
    assert mask_text("holder_name=张三丰") == "holder_name=张**"
    assert mask_text("card B7K334774.") == "card B7*****74."
