"""The five cross-province card services (跨省通办, DESIGN §4.4), each write idempotent on its request id.

An application goes to the region that knows the person (the holder directory); a change of a card goes to the
card's issuing region.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from adapters import domain
from gateway.domain import CardWrite, PresentedCard, RegionApplication
from gateway.services.call import Call
from gateway.services.cards import Cards
from gateway.services.idempotency import Idempotency

# Idempotency keys are per method (DESIGN §6): the RPC each card action comes from.
_CHANGES = {
    domain.CardAction.ENABLE: "EnableSocialSecurity",
    domain.CardAction.REPORT_LOSS: "ReportLoss",
    domain.CardAction.CANCEL_LOSS: "CancelLossReport",
}


class CardAffairs:
    """Applications, status changes and replacements at the regions.

    Args:
        cards: card and person look-ups.
        idempotency: runs each write once per request id.
        card_changed: told of a card whose status changed through the hub.
    """

    def __init__(self, cards: Cards, idempotency: Idempotency, card_changed: Callable[[str], Awaitable[None]]) -> None:
        self.cards, self.federation, self.idempotency = cards, cards.federation, idempotency
        self.card_changed = card_changed  # a status changed here: caches (every replica's) forget it

    async def apply(self, call: Call, request: domain.ApplyCard) -> RegionApplication:
        """申领 at the person's region."""

        async def produce() -> RegionApplication:
            region = await self.cards.holder_region(call, request.social_security_number)
            sent = replace(request, request_id=call.message_id(request.request_id))
            return RegionApplication(await self.federation.region(region, call).apply_card(sent), region)

        return await self.idempotency.run(call, "ApplyCard", request, produce, RegionApplication, audited=True)

    async def change(self, call: Call, card: PresentedCard, request: domain.ChangeCard) -> domain.Card:
        """Enable the social-security function, report a temporary loss, or cancel that report."""

        async def produce() -> domain.Card:
            credential = await self.cards.credential(card)
            region = self.federation.region_for_area(credential.issuing_area)
            sent = replace(request, request_id=call.message_id(request.request_id), credential=credential)
            changed = await self.federation.region(region, call).change_card(sent)
            await self.card_changed(credential.card_number)
            return changed

        return await self.idempotency.run(
            call, _CHANGES[request.action], CardWrite(card, request), produce, domain.Card
        )

    async def replace(self, call: Call, card: PresentedCard, request: domain.ReplaceCard) -> RegionApplication:
        """补换 at the card's issuing region."""

        async def produce() -> RegionApplication:
            credential = await self.cards.credential(card)
            region = self.federation.region_for_area(credential.issuing_area)
            sent = replace(request, request_id=call.message_id(request.request_id), credential=credential)
            replacement = await self.federation.region(region, call).replace_card(sent)
            await self.card_changed(credential.card_number)  # the old card is cancelled
            return RegionApplication(replacement, region)

        return await self.idempotency.run(
            call, "ReplaceCard", CardWrite(card, request), produce, RegionApplication, audited=True
        )

    async def progress(self, call: Call, ssn: str, holder_name: str) -> RegionApplication:
        """制卡进度查询: the person's latest application at their region."""
        region = await self.cards.holder_region(call, ssn)
        return RegionApplication(await self.federation.region(region, call).get_application(ssn, holder_name), region)
