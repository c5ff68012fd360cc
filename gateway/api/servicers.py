"""The gRPC servicers: decode → application service → encode.

Each method takes the decoded request and the :class:`~gateway.services.call.Call` the interceptors made for it,
and returns the response message. Cross-cutting concerns (request id, deadline, logging, error mapping, caller
identity) live in the interceptors, and every rule in the application services; a servicer holds neither.
"""

from __future__ import annotations

from adapters import domain
from gateway.api import codec
from gateway.api import settlement_codec as sc
from gateway.domain import NO_CARD
from gateway.services import Services
from gateway.services.call import Call
from yikatong.v1 import card_affairs_pb2 as affairs_pb
from yikatong.v1 import card_pb2 as card_pb
from yikatong.v1 import clearing_pb2 as clearing_pb
from yikatong.v1 import common_pb2 as common_pb
from yikatong.v1 import events_pb2 as events_pb
from yikatong.v1 import federation_pb2 as federation_pb
from yikatong.v1 import resident_pb2 as resident_pb
from yikatong.v1 import settlement_pb2 as settlement_pb


class CardServicer:
    SERVICE = card_pb.DESCRIPTOR.services_by_name["CardService"]

    def __init__(self, services: Services) -> None:
        self.cards = services.cards

    async def VerifyCard(self, request: card_pb.VerifyCardRequest, call: Call) -> card_pb.VerifyCardResponse:
        presented = codec.decode_presented(request.card)
        found = await self.cards.verify(call, presented, codec.decode_venue(request.venue))
        return card_pb.VerifyCardResponse(
            holder=codec.encode_holder(found.record.holder),
            card=codec.encode_card(found.record.card),
            issuing_region=found.region,
            insurances=[codec.encode_insurance(i) for i in found.record.insurances],
        )

    async def GetCardStatus(self, request: card_pb.GetCardStatusRequest, call: Call) -> card_pb.GetCardStatusResponse:
        found = await self.cards.status(call, codec.decode_presented(request.card))
        return card_pb.GetCardStatusResponse(card=codec.encode_card(found.record.card), issuing_region=found.region)


class CardAffairsServicer:
    SERVICE = affairs_pb.DESCRIPTOR.services_by_name["CardAffairsService"]

    def __init__(self, services: Services) -> None:
        self.affairs = services.affairs

    async def ApplyCard(self, request: affairs_pb.ApplyCardRequest, call: Call) -> affairs_pb.ApplyCardResponse:
        apply = domain.ApplyCard(
            request_id=codec.decode_request_id(request.request_id),
            social_security_number=codec.decode_ssn(request.social_security_number, "social_security_number"),
            holder_name=codec.decode_name(request.holder_name, "holder_name"),
            insured_area=codec.decode_area(request.insured_area, "insured_area"),
            delivery=codec.decode_delivery(request.delivery),
            delivery_area=codec.decode_area(request.delivery_area, "delivery_area") if request.delivery_area else "",
        )
        return affairs_pb.ApplyCardResponse(application=codec.encode_application(await self.affairs.apply(call, apply)))

    async def _change(self, request: _CardChange, action: domain.CardAction, call: Call) -> common_pb.Card:
        request_id = codec.decode_request_id(request.request_id)
        card = codec.decode_presented(request.card, name_required=True)
        change = domain.ChangeCard(request_id, NO_CARD, action)
        return codec.encode_card(await self.affairs.change(call, card, change))

    async def EnableSocialSecurity(
        self, request: affairs_pb.EnableSocialSecurityRequest, call: Call
    ) -> affairs_pb.EnableSocialSecurityResponse:
        card = await self._change(request, domain.CardAction.ENABLE, call)
        return affairs_pb.EnableSocialSecurityResponse(card=card)

    async def ReportLoss(self, request: affairs_pb.ReportLossRequest, call: Call) -> affairs_pb.ReportLossResponse:
        return affairs_pb.ReportLossResponse(card=await self._change(request, domain.CardAction.REPORT_LOSS, call))

    async def CancelLossReport(
        self, request: affairs_pb.CancelLossReportRequest, call: Call
    ) -> affairs_pb.CancelLossReportResponse:
        card = await self._change(request, domain.CardAction.CANCEL_LOSS, call)
        return affairs_pb.CancelLossReportResponse(card=card)

    async def ReplaceCard(self, request: affairs_pb.ReplaceCardRequest, call: Call) -> affairs_pb.ReplaceCardResponse:
        request_id = codec.decode_request_id(request.request_id)
        card = codec.decode_presented(request.card, name_required=True)
        replace = domain.ReplaceCard(request_id, NO_CARD, codec.decode_replace_reason(request.reason))
        found = await self.affairs.replace(call, card, replace)
        return affairs_pb.ReplaceCardResponse(application=codec.encode_application(found))

    async def GetApplicationProgress(
        self, request: affairs_pb.GetApplicationProgressRequest, call: Call
    ) -> affairs_pb.GetApplicationProgressResponse:
        ssn = codec.decode_ssn(request.social_security_number, "social_security_number")
        name = codec.decode_name(request.holder_name, "holder_name")
        found = await self.affairs.progress(call, ssn, name)
        return affairs_pb.GetApplicationProgressResponse(application=codec.encode_application(found))


_CardChange = affairs_pb.EnableSocialSecurityRequest | affairs_pb.ReportLossRequest | affairs_pb.CancelLossReportRequest


class FederationServicer:
    SERVICE = federation_pb.DESCRIPTOR.services_by_name["FederationService"]

    def __init__(self, services: Services) -> None:
        self.federation = services.federation

    async def ListRegions(
        self, request: federation_pb.ListRegionsRequest, call: Call
    ) -> federation_pb.ListRegionsResponse:
        return federation_pb.ListRegionsResponse(
            regions=[
                federation_pb.Region(
                    id=r.region_id,
                    name=r.name,
                    provinces=r.provinces,
                    adapter=r.adapter,
                    healthy=r.healthy,
                    circuit_state=r.circuit_state,
                )
                for r in self.federation.views()
            ]
        )


class MedicalSettlementServicer:
    SERVICE = settlement_pb.DESCRIPTOR.services_by_name["MedicalSettlementService"]

    def __init__(self, services: Services) -> None:
        self.settlements, self.reversals = services.settlements, services.reversals

    async def FileRemoteCare(
        self, request: settlement_pb.FileRemoteCareRequest, call: Call
    ) -> settlement_pb.FileRemoteCareResponse:
        return sc.encode_filing(await self.settlements.file(call, *sc.decode_filing(request)))

    async def PreSettle(self, request: settlement_pb.PreSettleRequest, call: Call) -> settlement_pb.PreSettleResponse:
        request_id = codec.decode_request_id(request.request_id) if request.request_id else ""
        return sc.encode_pre_settled(
            await self.settlements.pre_settle(call, *sc.decode_bill(request, request_id=request_id))
        )

    async def Settle(self, request: settlement_pb.SettleRequest, call: Call) -> settlement_pb.SettleResponse:
        card, bill = sc.decode_bill(request, request_id=codec.decode_request_id(request.request_id))
        record = await self.settlements.settle(call, card, bill)
        return settlement_pb.SettleResponse(settlement=sc.encode_settlement(record))

    async def ReverseSettlement(
        self, request: settlement_pb.ReverseSettlementRequest, call: Call
    ) -> settlement_pb.ReverseSettlementResponse:
        record = await self.reversals.reverse(call, sc.decode_reversal(request))
        return settlement_pb.ReverseSettlementResponse(settlement=sc.encode_settlement(record))

    async def GetSettlement(
        self, request: settlement_pb.GetSettlementRequest, call: Call
    ) -> settlement_pb.GetSettlementResponse:
        record = await self.settlements.get(call, sc.decode_settlement_id(request.settlement_id))
        return settlement_pb.GetSettlementResponse(settlement=sc.encode_settlement(record))


class ClearingServicer:
    SERVICE = clearing_pb.DESCRIPTOR.services_by_name["ClearingService"]

    def __init__(self, services: Services) -> None:
        self.clearing = services.clearing

    async def GetClearingReport(
        self, request: clearing_pb.GetClearingReportRequest, call: Call
    ) -> clearing_pb.GetClearingReportResponse:
        report = await self.clearing.report(sc.decode_period(request.period))
        return clearing_pb.GetClearingReportResponse(report=sc.encode_report(report))

    async def CloseClearingPeriod(
        self, request: clearing_pb.CloseClearingPeriodRequest, call: Call
    ) -> clearing_pb.CloseClearingPeriodResponse:
        report = await self.clearing.close(call, sc.decode_close(request))
        return clearing_pb.CloseClearingPeriodResponse(report=sc.encode_report(report))

    async def Reconcile(self, request: clearing_pb.ReconcileRequest, call: Call) -> clearing_pb.ReconcileResponse:
        return sc.encode_reconciliation(await self.clearing.reconcile(call, sc.decode_reconcile(request)))


class ResidentServicer:
    SERVICE = resident_pb.DESCRIPTOR.services_by_name["ResidentService"]

    def __init__(self, services: Services) -> None:
        self.resident = services.resident

    async def AuthorizeService(
        self, request: resident_pb.AuthorizeServiceRequest, call: Call
    ) -> resident_pb.AuthorizeServiceResponse:
        presented = codec.decode_presented(request.card)
        kind = codec.decode_service_kind(request.service_kind)
        decision = await self.resident.authorize(call, presented, kind, codec.decode_venue(request.venue))
        return codec.encode_decision(decision)


class RegionEventServicer:
    """Card events from region back-ends (authenticated by the region-auth interceptor)."""

    SERVICE = events_pb.DESCRIPTOR.services_by_name["RegionEventService"]

    def __init__(self, services: Services) -> None:
        self.resident, self.federation = services.resident, services.federation

    async def PublishCardEvent(
        self, request: events_pb.PublishCardEventRequest, call: Call
    ) -> events_pb.PublishCardEventResponse:
        await self.resident.card_event(call, codec.decode_card_event(request.event, self.federation.region_of_province))
        return events_pb.PublishCardEventResponse(accepted=True)


SERVICERS = (
    CardServicer,
    CardAffairsServicer,
    MedicalSettlementServicer,
    ClearingServicer,
    ResidentServicer,
    RegionEventServicer,
    FederationServicer,
)
