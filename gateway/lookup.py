"""Finding a card's record at its issuing region, and a person's region through the holder directory."""

from __future__ import annotations

from adapters import domain
from adapters.errors import CardNotUsable, NotInsured
from gateway.directory import HolderDirectory
from gateway.federation import Federation


class CardLookup:
    """Looks a credential's card up at its issuing region and teaches the directory who holds it."""

    def __init__(self, federation: Federation, directory: HolderDirectory) -> None:
        self.federation, self.directory = federation, directory

    async def record(self, credential: domain.CardCredential) -> tuple[str, domain.CardRecord]:
        region = self.federation.region_for_area(credential.issuing_area)
        record = await self.federation.call(region, "get_card", lambda a, t: a.get_card(credential, timeout=t))
        self.directory.learn(credential.social_security_number, region)
        return region, record

    async def holder_region(self, ssn: str) -> str:
        """The region that knows the person, through the holder directory."""

        async def ask(region: str, person: str) -> bool:
            return await self.federation.call(region, "knows_holder", lambda a, t: a.knows_holder(person, timeout=t))

        return await self.directory.resolve(ssn, list(self.federation.regions), ask)

    async def insurance(self, credential: domain.CardCredential) -> tuple[domain.Insurance, str]:
        """The medical insurance of a NORMAL card's holder and the region of its insured place (DESIGN §4.2).

        Raises:
            CardNotUsable: the card is not NORMAL.
            NotInsured: the holder has no medical insurance.
            RegionNotFederated: no region serves the insured place.
        """
        _, record = await self.record(credential)
        if record.card.status is not domain.CardStatus.NORMAL:
            raise CardNotUsable(record.card.status, record.card.card_number)
        if not record.insurances:
            raise NotInsured("the card holder has no medical insurance", metadata={})
        insurance = record.insurances[0]
        return insurance, self.federation.region_for_area(insurance.insured_area)
