"""The region's own books, as its sandbox's admin API shows them (issue 12, item 8).

Operators and tests reconcile the hub against a region with these two reads:

* ``GET /admin/settlements``: one JSON object per line (``application/x-ndjson``), one per message id the
  insured place's system has seen — ``region_settlement_id``, ``request_id`` (the hub's message id), ``state``
  (``SETTLED``, ``REVERSED`` or ``CORRECTED``), ``fund_pay_fen``, ``account_pay_fen``, ``cash_pay_fen``,
  ``deductible_fen``, ``visit_type``, ``year``, ``insured_area`` and the masked ``social_security_number``.
  A correction of a message id the region never settled is a ``CORRECTED`` row with no settlement: empty ids and
  areas, amounts 0.
* ``GET /admin/accumulators?social_security_number=S``: one insured person's money this year (the sandbox
  clock's), shaped as ``yikatong sandbox cards`` prints the seed state: ``{"accumulators": {"OUTPATIENT":
  {"deductible_used_fen", "fund_paid_fen"}, "INPATIENT": {…}}, "account_balance_fen"}``. A malformed number is
  400 and a person the region does not insure 404, each a JSON ``error`` naming the parameter.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from adapters.domain import VisitType
from adapters.identifiers import InvalidIdentifier, parse_ssn
from regions.medical import MedicalSystem, SettlementRow

SSN_PARAMETER = "social_security_number"


def mask_ssn(ssn: str) -> str:
    """The number as the hub's logs show it (``gateway.masking``): first 4 and last 4 characters kept.

    Written here rather than imported, so a sandbox (which partners copy) does not depend on the hub.
    """
    return ssn[:4] + "*" * 10 + ssn[-4:] if len(ssn) == 18 else ""


def settlement_entry(row: SettlementRow, insured_area: str) -> dict[str, Any]:
    """One settlement row as ``GET /admin/settlements`` lists it."""
    split = row.settlement.split if row.settlement is not None else None
    return {
        "region_settlement_id": row.settlement.region_settlement_id if row.settlement is not None else "",
        "request_id": row.request_id,
        "state": row.state.value,
        "fund_pay_fen": split.fund_pay_fen if split else 0,
        "account_pay_fen": split.account_pay_fen if split else 0,
        "cash_pay_fen": split.cash_pay_fen if split else 0,
        "deductible_fen": split.deductible_fen if split else 0,
        "visit_type": row.visit_type.value if split else "",
        "year": row.year,
        "insured_area": insured_area,
        SSN_PARAMETER: mask_ssn(row.social_security_number),
    }


def settlement_entries(medical: MedicalSystem) -> list[dict[str, Any]]:
    """Every message id the region's medical system holds, in the order it first saw them."""
    entries = []
    for row in list(medical.settlements.values()):
        person = medical.insured.get(row.social_security_number)
        entries.append(settlement_entry(row, person.insured_area if person else ""))
    return entries


def person_books(medical: MedicalSystem, ssn: str) -> dict[str, Any]:
    """One insured person's accumulators per visit type this year and account balance.

    Raises:
        KeyError: the region does not insure the person.
    """
    person = medical.insured[ssn]
    accumulators = {}
    for visit in VisitType:
        used = medical.accumulator(ssn, visit)
        accumulators[visit.value] = {
            "deductible_used_fen": used.deductible_used_fen,
            "fund_paid_fen": used.fund_paid_fen,
        }
    return {"accumulators": accumulators, "account_balance_fen": person.account_balance_fen}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "parameter": SSN_PARAMETER}, status=status)


def routes(medical: MedicalSystem) -> list[web.RouteDef]:
    """The two admin reads over the region's medical system."""

    async def settlements(_: web.Request) -> web.Response:
        body = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in settlement_entries(medical))
        return web.Response(text=body, content_type="application/x-ndjson")

    async def accumulators(request: web.Request) -> web.Response:
        raw = request.query.get(SSN_PARAMETER, "")
        if not raw:
            return _error(400, f"{SSN_PARAMETER} is required")
        try:
            ssn = parse_ssn(raw)
        except InvalidIdentifier as exc:
            return _error(400, f"{SSN_PARAMETER} {exc.problem}")
        try:
            return web.json_response(person_books(medical, ssn))
        except KeyError:
            return _error(404, f"{SSN_PARAMETER} {mask_ssn(ssn)} is not insured at {medical.region_id}")

    return [web.get("/admin/settlements", settlements), web.get("/admin/accumulators", accumulators)]
