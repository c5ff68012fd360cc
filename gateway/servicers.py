"""The gRPC servicers: decode → validate → route → call the adapter → encode.

Cross-cutting concerns (request id, deadline, logging, error mapping) live in the interceptors; the servicers
raise domain errors and return protobuf answers.
"""

from __future__ import annotations

from typing import Any

from adapters import domain
from adapters.errors import CardNotUsable
from gateway import codec, settlement_codec
from gateway.clearing import Clearing
from gateway.directory import HolderDirectory
from gateway.federation import Federation
from gateway.idempotency import Idempotency
from gateway.lookup import CardLookup
from gateway.metrics import Metrics
from gateway.resident import Resident
from gateway.settlement import Settlements
from yikatong.v1 import card_affairs_pb2 as affairs_pb
from yikatong.v1 import card_affairs_pb2_grpc as affairs_grpc
from yikatong.v1 import card_pb2 as card_pb
from yikatong.v1 import card_pb2_grpc as card_grpc
from yikatong.v1 import clearing_pb2 as clearing_pb
from yikatong.v1 import clearing_pb2_grpc as clearing_grpc
from yikatong.v1 import common_pb2 as common_pb
from yikatong.v1 import events_pb2 as events_pb
from yikatong.v1 import events_pb2_grpc as events_grpc
from yikatong.v1 import federation_pb2 as federation_pb
from yikatong.v1 import federation_pb2_grpc as federation_grpc
from yikatong.v1 import resident_pb2 as resident_pb
from yikatong.v1 import resident_pb2_grpc as resident_grpc
from yikatong.v1 import settlement_pb2 as settlement_pb
from yikatong.v1 import settlement_pb2_grpc as settlement_grpc

Context = Any  # grpc.aio.ServicerContext; the servicers never touch it


class CardServicer(card_grpc.CardServiceServicer):
    def __init__(self, lookup: CardLookup) -> None:
        self.lookup = lookup

    async def VerifyCard(self, request: card_pb.VerifyCardRequest, context: Context) -> card_pb.VerifyCardResponse:
        credential = await self.lookup.credential(request.card)
        self.lookup.federation.note_venue(codec.decode_venue(request.venue))
        region, record = await self.lookup.record(credential)
        if record.card.status is not domain.CardStatus.NORMAL:
            raise CardNotUsable(record.card.status, record.card.card_number)
        return card_pb.VerifyCardResponse(
            holder=codec.encode_holder(record.holder),
            card=codec.encode_card(record.card),
            issuing_region=region,
            insurances=[codec.encode_insurance(i) for i in record.insurances],
        )

    async def GetCardStatus(
        self, request: card_pb.GetCardStatusRequest, context: Context
    ) -> card_pb.GetCardStatusResponse:
        region, record = await self.lookup.record(codec.decode_credential(request.card))
        return card_pb.GetCardStatusResponse(card=codec.encode_card(record.card), issuing_region=region)


class CardAffairsServicer(affairs_grpc.CardAffairsServiceServicer):
    def __init__(self, lookup: CardLookup, idempotency: Idempotency) -> None:
        self.lookup, self.federation, self.idempotency = lookup, lookup.federation, idempotency

    async def ApplyCard(self, request: affairs_pb.ApplyCardRequest, context: Context) -> affairs_pb.ApplyCardResponse:
        apply = domain.ApplyCard(
            request_id=codec.decode_request_id(request.request_id),
            social_security_number=codec.decode_ssn(request.social_security_number, "social_security_number"),
            holder_name=codec.decode_name(request.holder_name, "holder_name"),
            insured_area=codec.decode_area(request.insured_area, "insured_area"),
            delivery=codec.decode_delivery(request.delivery),
            delivery_area=codec.decode_area(request.delivery_area, "delivery_area") if request.delivery_area else "",
        )

        async def produce() -> affairs_pb.ApplyCardResponse:
            region = await self.lookup.holder_region(apply.social_security_number)
            app = await self.federation.call(region, "apply_card", lambda a, t: a.apply_card(apply, timeout=t))
            return affairs_pb.ApplyCardResponse(application=codec.encode_application(app, region))

        return await self.idempotency.run("ApplyCard", apply.request_id, request, produce, affairs_pb.ApplyCardResponse)

    async def _change(self, method: str, request: Any, action: domain.CardAction) -> common_pb.Card:
        change = domain.ChangeCard(
            codec.decode_request_id(request.request_id),
            codec.decode_credential(request.card, name_required=True),
            action,
        )
        region = self.federation.region_for_area(change.credential.issuing_area)

        async def produce() -> common_pb.Card:
            return codec.encode_card(
                await self.federation.call(region, "change_card", lambda a, t: a.change_card(change, timeout=t))
            )

        return await self.idempotency.run(method, change.request_id, request, produce, common_pb.Card)

    async def EnableSocialSecurity(
        self, request: affairs_pb.EnableSocialSecurityRequest, context: Context
    ) -> affairs_pb.EnableSocialSecurityResponse:
        card = await self._change("EnableSocialSecurity", request, domain.CardAction.ENABLE)
        return affairs_pb.EnableSocialSecurityResponse(card=card)

    async def ReportLoss(
        self, request: affairs_pb.ReportLossRequest, context: Context
    ) -> affairs_pb.ReportLossResponse:
        return affairs_pb.ReportLossResponse(
            card=await self._change("ReportLoss", request, domain.CardAction.REPORT_LOSS)
        )

    async def CancelLossReport(
        self, request: affairs_pb.CancelLossReportRequest, context: Context
    ) -> affairs_pb.CancelLossReportResponse:
        card = await self._change("CancelLossReport", request, domain.CardAction.CANCEL_LOSS)
        return affairs_pb.CancelLossReportResponse(card=card)

    async def ReplaceCard(
        self, request: affairs_pb.ReplaceCardRequest, context: Context
    ) -> affairs_pb.ReplaceCardResponse:
        replace = domain.ReplaceCard(
            codec.decode_request_id(request.request_id),
            codec.decode_credential(request.card, name_required=True),
            codec.decode_replace_reason(request.reason),
        )
        region = self.federation.region_for_area(replace.credential.issuing_area)

        async def produce() -> affairs_pb.ReplaceCardResponse:
            app = await self.federation.call(region, "replace_card", lambda a, t: a.replace_card(replace, timeout=t))
            return affairs_pb.ReplaceCardResponse(application=codec.encode_application(app, region))

        return await self.idempotency.run(
            "ReplaceCard", replace.request_id, request, produce, affairs_pb.ReplaceCardResponse
        )

    async def GetApplicationProgress(
        self, request: affairs_pb.GetApplicationProgressRequest, context: Context
    ) -> affairs_pb.GetApplicationProgressResponse:
        ssn = codec.decode_ssn(request.social_security_number, "social_security_number")
        name = codec.decode_name(request.holder_name, "holder_name")
        region = await self.lookup.holder_region(ssn)
        app = await self.federation.call(
            region, "get_application", lambda a, t: a.get_application(ssn, name, timeout=t)
        )
        return affairs_pb.GetApplicationProgressResponse(application=codec.encode_application(app, region))


class FederationServicer(federation_grpc.FederationServiceServicer):
    def __init__(self, federation: Federation) -> None:
        self.federation = federation

    async def ListRegions(
        self, request: federation_pb.ListRegionsRequest, context: Context
    ) -> federation_pb.ListRegionsResponse:
        return federation_pb.ListRegionsResponse(
            regions=[
                federation_pb.Region(
                    id=r.config.region_id,
                    name=r.config.name,
                    provinces=r.config.provinces,
                    adapter=r.config.adapter,
                    healthy=r.healthy,
                    circuit_state=r.guard.breaker.state,
                )
                for r in self.federation.regions.values()
            ]
        )


class MedicalSettlementServicer(settlement_grpc.MedicalSettlementServiceServicer):
    def __init__(self, settlements: Settlements, idempotency: Idempotency) -> None:
        self.settlements, self.idempotency = settlements, idempotency

    async def FileRemoteCare(
        self, request: settlement_pb.FileRemoteCareRequest, context: Context
    ) -> settlement_pb.FileRemoteCareResponse:
        filing = settlement_codec.decode_filing(request)

        async def produce() -> settlement_pb.FileRemoteCareResponse:
            done, insurance, region = await self.settlements.file(filing)
            return settlement_codec.encode_filing(done, region, insurance.insured_area)

        return await self.idempotency.run(
            "FileRemoteCare", filing.request_id, request, produce, settlement_pb.FileRemoteCareResponse
        )

    async def PreSettle(
        self, request: settlement_pb.PreSettleRequest, context: Context
    ) -> settlement_pb.PreSettleResponse:
        request_id = codec.decode_request_id(request.request_id) if request.request_id else ""
        bill = settlement_codec.decode_bill(request, request_id=request_id)
        split, insurance, region = await self.settlements.pre_settle(bill)
        return settlement_pb.PreSettleResponse(
            split=settlement_codec.encode_split(split), insured_area=insurance.insured_area, insured_region=region
        )

    async def Settle(self, request: settlement_pb.SettleRequest, context: Context) -> settlement_pb.SettleResponse:
        bill = settlement_codec.decode_bill(request, request_id=codec.decode_request_id(request.request_id))

        async def produce() -> settlement_pb.SettleResponse:
            record = await self.settlements.settle(bill)
            return settlement_pb.SettleResponse(settlement=settlement_codec.encode_settlement(record))

        return await self.idempotency.run("Settle", bill.request_id, request, produce, settlement_pb.SettleResponse)

    async def ReverseSettlement(
        self, request: settlement_pb.ReverseSettlementRequest, context: Context
    ) -> settlement_pb.ReverseSettlementResponse:
        request_id = codec.decode_request_id(request.request_id)
        settlement_id = settlement_codec.decode_settlement_id(request.settlement_id)
        reason = settlement_codec.decode_reason(request.reason)

        async def produce() -> settlement_pb.ReverseSettlementResponse:
            record = await self.settlements.reverse(request_id, settlement_id, reason)
            return settlement_pb.ReverseSettlementResponse(settlement=settlement_codec.encode_settlement(record))

        return await self.idempotency.run(
            "ReverseSettlement", request_id, request, produce, settlement_pb.ReverseSettlementResponse
        )

    async def GetSettlement(
        self, request: settlement_pb.GetSettlementRequest, context: Context
    ) -> settlement_pb.GetSettlementResponse:
        record = await self.settlements.get(settlement_codec.decode_settlement_id(request.settlement_id))
        return settlement_pb.GetSettlementResponse(settlement=settlement_codec.encode_settlement(record))


class ClearingServicer(clearing_grpc.ClearingServiceServicer):
    def __init__(self, clearing: Clearing, idempotency: Idempotency) -> None:
        self.clearing, self.idempotency = clearing, idempotency

    async def GetClearingReport(
        self, request: clearing_pb.GetClearingReportRequest, context: Context
    ) -> clearing_pb.GetClearingReportResponse:
        report = await self.clearing.report(settlement_codec.decode_period(request.period))
        return clearing_pb.GetClearingReportResponse(report=report)

    async def CloseClearingPeriod(
        self, request: clearing_pb.CloseClearingPeriodRequest, context: Context
    ) -> clearing_pb.CloseClearingPeriodResponse:
        request_id = codec.decode_request_id(request.request_id)
        period = settlement_codec.decode_period(request.period)

        async def produce() -> clearing_pb.CloseClearingPeriodResponse:
            return clearing_pb.CloseClearingPeriodResponse(report=await self.clearing.close(period))

        return await self.idempotency.run(
            "CloseClearingPeriod", request_id, request, produce, clearing_pb.CloseClearingPeriodResponse
        )

    async def Reconcile(self, request: clearing_pb.ReconcileRequest, context: Context) -> clearing_pb.ReconcileResponse:
        return await self.clearing.reconcile(settlement_codec.decode_reconcile(request))


class ResidentServicer(resident_grpc.ResidentServiceServicer):
    def __init__(self, resident: Resident) -> None:
        self.resident = resident

    async def AuthorizeService(
        self, request: resident_pb.AuthorizeServiceRequest, context: Context
    ) -> resident_pb.AuthorizeServiceResponse:
        credential = await self.resident.lookup.credential(request.card)
        kind = codec.decode_service_kind(request.service_kind)
        decision = await self.resident.authorize(credential, kind, codec.decode_venue(request.venue))
        return resident_pb.AuthorizeServiceResponse(
            authorized=decision.authorized,
            reason=decision.reason,
            via_stand_in=decision.via_stand_in,
            issuing_region=decision.issuing_region,
            card_status=codec.encode_status(decision.status) if decision.status else common_pb.CARD_STATUS_UNSPECIFIED,
            local=decision.local,
        )


class RegionEventServicer(events_grpc.RegionEventServiceServicer):
    """Card events from region back-ends (authenticated by :class:`~gateway.interceptors.RegionAuthInterceptor`)."""

    def __init__(self, resident: Resident, directory: HolderDirectory, metrics: Metrics) -> None:
        self.resident, self.directory, self.metrics = resident, directory, metrics

    async def PublishCardEvent(
        self, request: events_pb.PublishCardEventRequest, context: Context
    ) -> events_pb.PublishCardEventResponse:
        event = codec.decode_card_event(request.event, self.resident.federation)
        self.resident.cache.forget(event.card_number)
        if event.social_security_number:
            self.directory.learn(event.social_security_number, event.region)
        self.metrics.card_events.labels(event.region, event.status.name).inc()
        return events_pb.PublishCardEventResponse(accepted=True)
