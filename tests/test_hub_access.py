"""Who is calling (DESIGN §10), through a hub serving mutual TLS with certificates of the development PKI:
handshake refusals, the role × RPC table, scope, per-participant idempotency, events of a region's own cards,
rate and size limits."""

from __future__ import annotations

import datetime as dt
import json
import logging
import stat
import subprocess
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf import message_factory
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from adapters.domain import CardStatus
from gateway import pki
from gateway.api.authorization import ROLE_METHODS
from gateway.api.servicers import SERVICERS
from gateway.api.status import error_reason
from regions.seed import SeededPerson, generate
from tests.bills import settle_request
from tests.conftest import YIKATONG, SecureFederation, credential
from yikatong.v1 import card_pb2, card_pb2_grpc, clearing_pb2, clearing_pb2_grpc, common_pb2, events_pb2, settlement_pb2

T = 5
SHANGHAI, CHENGDU = "hospital-shanghai-xuhui", "hospital-chengdu-wuhou"
METHODS = [f"/{s.SERVICE.full_name}/{m.name}" for s in SERVICERS for m in s.SERVICE.methods]
# One participant of each role, from the shipped participants file.
BY_ROLE = {
    "hospital": SHANGHAI,
    "card-service": "card-service-yangtze-delta",
    "venue": "transit-hangzhou",
    "region": "region-yangtze-delta",
    "clearing": "clearing-national",
    "operator": "operator-noc",
}


def error_metadata(exc: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return dict(info.metadata)
    return {}


async def verify(channel: grpc.aio.Channel, person: SeededPerson, venue: str = "310104") -> card_pb2.VerifyCardResponse:
    request = card_pb2.VerifyCardRequest(card=credential(person), venue=common_pb2.Venue(area_code=venue))
    return await card_pb2_grpc.CardServiceStub(channel).VerifyCard(request, timeout=T)


def shanghai_card(secure: SecureFederation) -> SeededPerson:
    config = secure.sandboxes["yangtze-delta"].config
    return next(
        p
        for p in generate(config.region_id, config.provinces)
        if p.status is CardStatus.NORMAL and p.issuing_area.startswith("31")
    )


# --- authentication -----------------------------------------------------------------------------------------


async def test_a_participant_with_its_certificate_is_served(secure_federation: SecureFederation) -> None:
    answer = await verify(secure_federation.channel("transit-hangzhou"), shanghai_card(secure_federation), "330100")
    assert answer.card.status == common_pb2.CARD_STATUS_NORMAL


async def test_no_certificate_a_foreign_ca_or_an_expired_certificate_fails_the_handshake(
    secure_federation: SecureFederation, tmp_path: Path
) -> None:
    secure = secure_federation
    foreign = pki.init(tmp_path / "foreign", ["transit-hangzhou"])
    expired = pki.Pki(tmp_path / "expired")
    for path in ("ca.pem", "ca.key"):
        expired.folder.mkdir(exist_ok=True)
        (expired.folder / path).write_bytes((secure.pki.folder / path).read_bytes())
    pki.issue(expired, "transit-hangzhou", now=dt.datetime.now(dt.UTC) - dt.timedelta(days=30), days=10)
    ca = secure.pki.ca.read_bytes()
    cases = {
        "no certificate": grpc.ssl_channel_credentials(ca),
        "foreign CA": secure.credentials("transit-hangzhou", foreign),
        "expired": secure.credentials("transit-hangzhou", expired),
    }
    for case, credentials in cases.items():
        async with grpc.aio.secure_channel(secure.hub.address, credentials) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await verify(channel, shanghai_card(secure), "330100")
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE, case  # the handshake failed: nothing served


async def test_a_genuine_certificate_of_an_unknown_participant_is_unauthenticated(
    secure_federation: SecureFederation,
) -> None:
    pki.issue(secure_federation.pki, "hospital-not-listed")

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await verify(secure_federation.channel("hospital-not-listed"), shanghai_card(secure_federation))

    assert (refused.value.code(), error_reason(refused.value)) == (grpc.StatusCode.UNAUTHENTICATED, "CALLER_UNKNOWN")
    assert error_metadata(refused.value)["participant"] == "hospital-not-listed"


# --- the role × RPC table -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(BY_ROLE))
async def test_every_rpc_answers_each_role_as_the_table_says(secure_federation: SecureFederation, role: str) -> None:
    participant = BY_ROLE[role]
    channel = secure_federation.channel(participant)
    for method in METHODS:
        service, name = method.strip("/").split("/")
        descriptor = next(s.SERVICE for s in SERVICERS if s.SERVICE.full_name == service).methods_by_name[name]
        empty = message_factory.GetMessageClass(descriptor.input_type)()
        call = channel.unary_unary(method, request_serializer=lambda m: m.SerializeToString())
        try:
            await call(empty, timeout=T)
            refused = None
        except grpc.aio.AioRpcError as exc:
            refused = exc
        allowed = method in ROLE_METHODS[role]
        denied = refused is not None and error_reason(refused) == "CALLER_NOT_AUTHORIZED"
        assert denied is not allowed, f"{role} {method}: {refused and error_reason(refused)}"
        if denied:
            assert refused is not None and refused.code() is grpc.StatusCode.PERMISSION_DENIED
            assert error_metadata(refused) == {"participant": participant, "method": name}
    samples = secure_federation.hub.metrics.registry
    denied_count = samples.get_sample_value(
        "yikatong_authz_decisions_total",
        {"participant": participant, "grpc_method": "ListRegions", "decision": "denied"},
    )
    assert (denied_count or 0) == (0 if role == "operator" else 1)


# --- scope --------------------------------------------------------------------------------------------------


async def test_a_hospital_settles_only_at_its_own_institutions_in_its_own_areas(
    secure_federation: SecureFederation,
) -> None:
    person = insured_person(secure_federation)
    stub = secure_federation.settlement(SHANGHAI)
    elsewhere = settle_request(person, "500103")
    not_ours = hospital_bill(person, "310104")
    not_ours.venue.institution_id = "H3101049999"

    for request, field in ((elsewhere, "venue.area_code"), (not_ours, "venue.institution_id")):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Settle(request, timeout=T)
        assert (refused.value.code(), error_reason(refused.value)) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "CALLER_OUT_OF_SCOPE",
        )
        assert error_metadata(refused.value)["field"] == field


async def test_another_hospitals_settlement_cannot_be_read_reversed_or_reconciled(
    secure_federation: SecureFederation,
) -> None:
    secure = secure_federation
    person = insured_person(secure)
    settled = (await secure.settlement(SHANGHAI).Settle(hospital_bill(person, "310104"), timeout=T)).settlement
    chengdu = secure.settlement(CHENGDU)
    get = settlement_pb2.GetSettlementRequest(settlement_id=settled.settlement_id)
    reverse = settlement_pb2.ReverseSettlementRequest(request_id="rev-1", settlement_id=settled.settlement_id)

    for attempt in (chengdu.GetSettlement(get, timeout=T), chengdu.ReverseSettlement(reverse, timeout=T)):
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await attempt
        assert (hidden.value.code(), error_reason(hidden.value)) == (grpc.StatusCode.NOT_FOUND, "SETTLEMENT_NOT_FOUND")
    reconcile = clearing_pb2.ReconcileRequest(treatment_area="310104", date=today(), count=1)
    with pytest.raises(grpc.aio.AioRpcError) as out_of_scope:
        await clearing_stub(secure, CHENGDU).Reconcile(reconcile, timeout=T)
    assert error_reason(out_of_scope.value) == "CALLER_OUT_OF_SCOPE"

    # Its own hospital and the clearing centre see it.
    own = await secure.settlement(SHANGHAI).GetSettlement(get, timeout=T)
    central = await secure.settlement("clearing-national").GetSettlement(get, timeout=T)
    assert own.settlement == central.settlement == settled
    matched = await clearing_stub(secure, SHANGHAI).Reconcile(
        clearing_pb2.ReconcileRequest(
            treatment_area="310104", date=today(), count=1, fund_pay_fen=settled.split.fund_pay_fen
        ),
        timeout=T,
    )
    assert matched.matched


async def test_the_same_request_id_from_two_hospitals_settles_twice(secure_federation: SecureFederation) -> None:
    secure = secure_federation
    person = insured_person(secure)
    request_id = str(uuid.uuid4())
    at_shanghai, at_chengdu = hospital_bill(person, "310104"), hospital_bill(person, "510100")
    at_shanghai.request_id = at_chengdu.request_id = request_id

    first = (await secure.settlement(SHANGHAI).Settle(at_shanghai, timeout=T)).settlement
    second = (await secure.settlement(CHENGDU).Settle(at_chengdu, timeout=T)).settlement
    again = (await secure.settlement(SHANGHAI).Settle(at_shanghai, timeout=T)).settlement

    assert first.settlement_id != second.settlement_id
    assert first.request_id == second.request_id == request_id
    assert again == first
    region = secure.sandboxes[first.insured_region]
    assert len({msgid for msgid in region.medical.settlements}) >= 2


# --- region back-ends ---------------------------------------------------------------------------------------


async def test_a_region_publishes_card_events_of_its_own_provinces_only(secure_federation: SecureFederation) -> None:
    secure = secure_federation
    person = shanghai_card(secure)

    def event(region: str) -> events_pb2.PublishCardEventRequest:
        return events_pb2.PublishCardEventRequest(
            event=events_pb2.CardEvent(
                event_id=uuid.uuid4().hex,
                region=region,
                card_number=person.card_number,
                issuing_area=person.issuing_area,
                status=common_pb2.CARD_STATUS_TEMPORARILY_LOST,
            )
        )

    publish = secure.channel("region-yangtze-delta").unary_unary(
        "/yikatong.v1.RegionEventService/PublishCardEvent",
        request_serializer=events_pb2.PublishCardEventRequest.SerializeToString,
        response_deserializer=events_pb2.PublishCardEventResponse.FromString,
    )
    other = secure.channel("region-sichuan-chongqing").unary_unary(
        "/yikatong.v1.RegionEventService/PublishCardEvent",
        request_serializer=events_pb2.PublishCardEventRequest.SerializeToString,
        response_deserializer=events_pb2.PublishCardEventResponse.FromString,
    )

    assert (await publish(event("yangtze-delta"), timeout=T)).accepted
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await other(event("yangtze-delta"), timeout=T)
    assert (refused.value.code(), error_reason(refused.value)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "CALLER_OUT_OF_SCOPE",
    )
    assert error_metadata(refused.value)["field"] == "event.issuing_area"


# --- limits -------------------------------------------------------------------------------------------------


async def test_a_caller_over_its_rate_limit_is_told_when_to_retry(secure_federation: SecureFederation) -> None:
    person = shanghai_card(secure_federation)
    channel = secure_federation.channel("test-throttled")
    await verify(channel, person)
    await verify(channel, person)  # the burst of two

    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await verify(channel, person)

    assert (limited.value.code(), error_reason(limited.value)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "CALLER_RATE_LIMITED",
    )
    status = rpc_status.from_call(limited.value)  # type: ignore[arg-type]
    retry = error_details_pb2.RetryInfo()
    assert status is not None and any(detail.Unpack(retry) for detail in status.details)
    assert 0 < retry.retry_delay.ToTimedelta().total_seconds() <= 1.0


async def test_a_request_over_the_size_limit_is_refused_with_its_reason(secure_federation: SecureFederation) -> None:
    person = shanghai_card(secure_federation)
    card = credential(person)
    card.holder_name = "x" * (secure_federation.hub.config.limits.max_receive_message_bytes + 1)

    with pytest.raises(grpc.aio.AioRpcError) as too_large:
        await card_pb2_grpc.CardServiceStub(secure_federation.channel("test-everything")).VerifyCard(
            card_pb2.VerifyCardRequest(card=card, venue=common_pb2.Venue(area_code="310104")), timeout=T
        )

    assert (too_large.value.code(), error_reason(too_large.value)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "REQUEST_TOO_LARGE",
    )


# --- helpers ------------------------------------------------------------------------------------------------


def hospital_bill(person: SeededPerson, venue: str) -> settlement_pb2.SettleRequest:
    """A bill at the shipped hospital of that venue area, with its institution id."""
    request = settle_request(person, venue)
    request.venue.institution_id = {"310104": "H3101040001", "510100": "H5101000001"}[venue]
    return request


def insured_person(secure: SecureFederation) -> SeededPerson:
    config = secure.sandboxes["sichuan-chongqing"].config
    return [p for p in generate(config.region_id, config.provinces) if p.status is CardStatus.NORMAL and p.insurance][1]


def today() -> str:
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()


def clearing_stub(secure: SecureFederation, participant: str) -> clearing_pb2_grpc.ClearingServiceStub:
    return clearing_pb2_grpc.ClearingServiceStub(secure.channel(participant))


async def test_a_participant_removed_on_reload_is_refused_and_a_bad_file_keeps_the_table(
    secure_federation: SecureFederation,
) -> None:
    secure = secure_federation
    path = secure.hub.config.participants_file
    person = shanghai_card(secure)
    await verify(secure.channel("transit-hangzhou"), person, "330100")

    path.write_text(path.read_text().replace('id = "transit-hangzhou"', 'id = "transit-hangzhou-retired"'))
    assert secure.hub.reload()
    with pytest.raises(grpc.aio.AioRpcError) as removed:
        await verify(secure.channel("transit-hangzhou"), person, "330100")
    path.write_text("[[participant]]\nid = 'broken'\n")
    assert not secure.hub.reload()

    assert error_reason(removed.value) == "CALLER_UNKNOWN"
    assert secure.hub.participants.get("transit-hangzhou-retired") is not None  # the table in force stayed


async def test_the_access_log_names_the_participant_and_the_clients_own_id_only_as_a_hint(
    secure_federation: SecureFederation, caplog: pytest.LogCaptureFixture
) -> None:
    request = card_pb2.VerifyCardRequest(
        card=credential(shanghai_card(secure_federation)), venue=common_pb2.Venue(area_code="330100")
    )
    stub = card_pb2_grpc.CardServiceStub(secure_federation.channel("transit-hangzhou"))
    with caplog.at_level(logging.INFO, logger="yikatong.access"):
        await stub.VerifyCard(request, metadata=(("x-caller-id", "hospital-shanghai-xuhui"),), timeout=T)

    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "yikatong.access"]
    assert (line["caller"], line["caller_hint"]) == ("transit-hangzhou", "hospital-shanghai-xuhui")


def test_pki_init_and_issue_make_owner_only_keys_for_listed_participants(tmp_path: Path) -> None:
    folder = tmp_path / "pki"
    made = subprocess.run([YIKATONG, "pki", "init", "--dir", str(folder)], capture_output=True, text=True, timeout=60)
    unknown = subprocess.run(
        [YIKATONG, "pki", "issue", "--participant", "hospital-nowhere", "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    listed = pki.Pki(folder).participant("museum-beijing")
    before = listed.cert.read_bytes()
    reissued = subprocess.run(
        [YIKATONG, "pki", "issue", "--participant", "museum-beijing", "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert made.returncode == 0 and reissued.returncode == 0
    assert unknown.returncode == 2 and "add it there first" in unknown.stderr
    assert listed.cert.read_bytes() != before
    assert stat.S_IMODE(listed.key.stat().st_mode) == 0o600 == stat.S_IMODE((folder / "ca.key").stat().st_mode)
