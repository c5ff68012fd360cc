"""The 长三角 sandbox's resident-service call (DESIGN §4.7): the hub's stand-in advice, service 9102.

The hub granted a resident service (transit, library, …) on a card of this region from a cached status while
the region could not be reached, and reports it once the region is back. The envelope's ``msgid`` is the
advice id; a repeat of it is acknowledged with the advice as first recorded and records nothing new.

``input.data``: ``mdtrt_cert_no`` (card number), ``card_admdvs`` (issuing area), ``serv_type`` (TRANSIT,
LIBRARY, MUSEUM, SCENIC_SPOT, PARK), ``use_admdvs`` (the venue's area), ``grnt_time`` (when the service was
granted) and ``stas_cfm_time`` (when the region last confirmed the NORMAL status the grant relied on). Unlike
``opt_time`` the two times are RFC 3339 with their offset, kept as sent: the region records the hub's moments,
not its own. ``output.advcinfo`` echoes the advice under ``advc_msgid``, in the request's own form (written by
``adapters.yangtze_delta.codec.advice_data``, which the adapter sends with); the request is read with this
module's own checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adapters.domain import ServiceKind, StandInAdvice
from adapters.identifiers import InvalidIdentifier, parse_card_number
from adapters.jsonwire import is_rfc3339
from adapters.yangtze_delta.codec import advice_data
from adapters.yangtze_delta.protocol import STAND_IN_ADVICE
from regions.backend import Backend
from regions.yangtze_delta import fields
from regions.yangtze_delta.fields import BadInput

Output = dict[str, Any]
Handler = Callable[[Backend, str, Mapping[str, Any]], Output]


def _moment(data: Mapping[str, Any], key: str) -> str:
    """An RFC 3339 date-time with its offset, returned as sent."""
    value = fields.text(data, key)
    if not is_rfc3339(value):
        raise BadInput(f"{key} must be an RFC 3339 time with an offset, e.g. 2025-03-01T08:30:00+08:00")
    return value


def _card_number(data: Mapping[str, Any], key: str) -> str:
    try:
        return parse_card_number(fields.text(data, key))
    except InvalidIdentifier as exc:
        raise BadInput(f"{key} {exc.problem}") from None


def _advice(msgid: str, data: Mapping[str, Any]) -> StandInAdvice:
    """The advice of a 9102 request; ``msgid`` is its advice id."""
    return StandInAdvice(
        advice_id=msgid,
        card_number=_card_number(data, "mdtrt_cert_no"),
        issuing_area=fields.area(data, "card_admdvs"),
        service_kind=ServiceKind(fields.name(data, "serv_type", tuple(k.value for k in ServiceKind))),
        venue_area=fields.area(data, "use_admdvs"),
        granted_at=_moment(data, "grnt_time"),
        status_confirmed_at=_moment(data, "stas_cfm_time"),
    )


def _advcinfo(advice: StandInAdvice) -> Output:
    """The advice as recorded: its id, then its fields as the request carried them."""
    return {"advc_msgid": advice.advice_id, **advice_data(advice)}


def _record(backend: Backend, msgid: str, data: Mapping[str, Any]) -> Output:
    backend.cards.record_advice(_advice(msgid, data))
    return {"advcinfo": _advcinfo(backend.cards.advices[msgid])}


SERVICES: dict[str, Handler] = {STAND_IN_ADVICE: _record}
