"""The 京津冀 card centre's own gRPC wire (result codes), against the real sandbox.

What every region adapter does alike is tested in ``test_region_adapters.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import pytest

from adapters.domain import CardStatus
from jingjinji.v1 import card_center_pb2 as pb
from jingjinji.v1.card_center_pb2_grpc import CardCenterServiceStub
from regions.cardsystem import CardRow, CardSystem
from regions.sandbox import RunningSandbox

REGION = "beijing-tianjin-hebei"

StartSandbox = Callable[[str], Awaitable[RunningSandbox]]


@pytest.fixture
async def sandbox(start_region: StartSandbox) -> RunningSandbox:
    return await start_region(REGION)


def card_in(system: CardSystem, status: CardStatus) -> CardRow:
    return next(row for row in system.cards.values() if row.card.status is status)


# --- the card centre's own wire -----------------------------------------------------------------


async def test_card_centre_answers_malformed_input_with_code_1000(sandbox: RunningSandbox) -> None:
    row = card_in(sandbox.system, CardStatus.NORMAL)
    fields = {"sfzh": row.ssn, "kh": row.card.card_number, "sbm": row.card.card_identification_code}
    async with grpc.aio.insecure_channel(sandbox.address) as channel:
        stub = CardCenterServiceStub(channel)
        bad_action = await stub.ChangeCardState(pb.ChangeCardStateRequest(msgid="m", action="FLY", **fields))
        no_msgid = await stub.ChangeCardState(pb.ChangeCardStateRequest(action="ENABLE", **fields))

    assert bad_action.result.code == 1000
    assert no_msgid.result.code == 1000
    assert sandbox.system.cards[row.card.card_number].card.status is CardStatus.NORMAL
