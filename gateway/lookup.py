"""Finding a card's record at its issuing region, and a person's region through the holder directory."""

from __future__ import annotations

from typing import Protocol

from adapters import domain
from adapters.errors import CardNotUsable, NotInsured, YikatongError
from gateway import codec
from gateway.directory import HolderDirectory
from gateway.federation import Federation
from gateway.metrics import Metrics
from yikatong.v1 import common_pb2 as common_pb


class TokenVerifier(Protocol):
    """Turns an e-card QR token into the card credential it stands for (``gateway.ecard``)."""

    async def credential(self, token: str, field: str = "card.ecard_token") -> domain.CardCredential: ...


class CardLookup:
    """Looks a credential's card up at its issuing region and teaches the directory who holds it.

    Args:
        federation: the regions.
        directory: the holder directory.
        tokens: verifies e-card tokens; without one, tokens are refused as unsupported.
        metrics: e-card token outcomes.
    """

    def __init__(
        self,
        federation: Federation,
        directory: HolderDirectory,
        tokens: TokenVerifier | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.federation, self.directory, self.tokens, self.metrics = federation, directory, tokens, metrics

    async def credential(self, msg: common_pb.CardCredential, field: str = "card") -> domain.CardCredential:
        """The credential of physical card fields, or of an e-card token verified once (DESIGN §4.8)."""
        if not msg.ecard_token or self.tokens is None:
            return codec.decode_credential(msg, field)
        try:
            credential = await self.tokens.credential(msg.ecard_token, f"{field}.ecard_token")
        except YikatongError as exc:
            self._count_token(exc.reason)
            raise
        self._count_token("accepted")
        return credential

    def _count_token(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.ecard_tokens.labels(outcome).inc()

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
