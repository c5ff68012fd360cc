"""The one table from domain errors to gRPC status codes, and their ``google.rpc.Status`` form.

Every error carries exactly one ``google.rpc.ErrorInfo`` with domain ``yikatong.gateway``, the error's
reason and its metadata.
"""

from __future__ import annotations

import datetime as dt

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from adapters import errors
from gateway import errors as hub

DOMAIN = "yikatong.gateway"

CODES: dict[type[errors.YikatongError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    hub.RegionNotFederated: grpc.StatusCode.FAILED_PRECONDITION,
    hub.CardNotUsable: grpc.StatusCode.FAILED_PRECONDITION,
    errors.CardStateConflict: grpc.StatusCode.FAILED_PRECONDITION,
    errors.CardAlreadyHeld: grpc.StatusCode.FAILED_PRECONDITION,
    errors.CardNotFound: grpc.StatusCode.NOT_FOUND,
    errors.HolderMismatch: grpc.StatusCode.NOT_FOUND,
    errors.HolderNotFound: grpc.StatusCode.NOT_FOUND,
    errors.ApplicationNotFound: grpc.StatusCode.NOT_FOUND,
    errors.IdempotencyKeyReused: grpc.StatusCode.ALREADY_EXISTS,
    hub.RequestInProgress: grpc.StatusCode.ABORTED,
    errors.SettlementNotFound: grpc.StatusCode.NOT_FOUND,
    hub.SettlementOutcomeUnknown: grpc.StatusCode.UNAVAILABLE,
    hub.CorrectionPending: grpc.StatusCode.UNAVAILABLE,
    errors.Refusal: grpc.StatusCode.FAILED_PRECONDITION,
    hub.ECardTokenRejected: grpc.StatusCode.UNAUTHENTICATED,
    hub.CallerUnknown: grpc.StatusCode.UNAUTHENTICATED,
    hub.CallerNotAuthorized: grpc.StatusCode.PERMISSION_DENIED,
    hub.CallerOutOfScope: grpc.StatusCode.PERMISSION_DENIED,
    hub.CallerRateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    hub.DirectoryBusy: grpc.StatusCode.RESOURCE_EXHAUSTED,
    hub.NotSupported: grpc.StatusCode.UNIMPLEMENTED,
    hub.RequestTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    hub.LedgerUnavailable: grpc.StatusCode.UNAVAILABLE,
    hub.RegionBusy: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.RegionUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.RegionTimeout: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.RegionProtocolError: grpc.StatusCode.UNAVAILABLE,
    errors.AdapterError: grpc.StatusCode.UNAVAILABLE,
}


def code_of(error: errors.YikatongError) -> grpc.StatusCode:
    """The status code of an error: that of its nearest class in the table (of its origin, when replayed)."""
    kind = error.origin if isinstance(error, hub.StoredRefusal) else type(error)
    for cls in kind.__mro__:
        if cls in CODES:
            return CODES[cls]
    return grpc.StatusCode.INTERNAL


def to_status(error: errors.YikatongError) -> status_pb2.Status:
    """The ``google.rpc.Status`` of an error, with one ``ErrorInfo`` (and a ``RetryInfo`` when it says when)."""
    details = [error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)]
    if isinstance(error, hub.CallerRateLimited):
        delay = duration_pb2.Duration()
        delay.FromTimedelta(dt.timedelta(seconds=error.retry_after_seconds))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    packed = []
    for detail in details:
        packed.append(any_pb2.Any())
        packed[-1].Pack(detail)
    return status_pb2.Status(code=code_of(error).value[0], message=error.message, details=packed)


def error_reason(error: grpc.aio.AioRpcError) -> str:
    """The ``ErrorInfo.reason`` of a failed call, as a client reads it ("" when there is none)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""
