"""The refusals a region's back-end answers with, and one table per region that reads its codes both ways.

A region's protocol writes each refusal as a code of its own (``"4040"``, ``1001``, ``"CARD_NOT_FOUND"``). The
region's protocol module declares that table once, by the refusals' reasons; its sandbox encodes a refusal with
:meth:`RefusalCodes.code` and its adapter decodes a code with :meth:`RefusalCodes.refusal`::

    REFUSALS = RefusalCodes({"CARD_NOT_FOUND": 1001, "HOLDER_MISMATCH": 1002, ...})

    REFUSALS.code(CardNotFound("no such card"))      # 1001, in the sandbox
    REFUSALS.refusal(1001)                           # CardNotFound, in the adapter

The adapter still builds the refusal: most take the region's message; ``CardStateConflict``,
``SettlementNotSettled`` and ``IdempotencyKeyReused`` take the details their region's protocol carries.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from adapters.errors import (
    ApplicationNotFound,
    CardAlreadyHeld,
    CardNotFound,
    CardStateConflict,
    HolderMismatch,
    HolderNotFound,
    IdempotencyKeyReused,
    NotInsured,
    Refusal,
    SettlementCorrected,
    SettlementNotFound,
    SettlementNotSettled,
)

C = TypeVar("C", bound=Hashable)

REGION_REFUSALS: Mapping[str, type[Refusal]] = {
    cls.reason: cls
    for cls in (
        CardNotFound,
        HolderMismatch,
        HolderNotFound,
        ApplicationNotFound,
        CardAlreadyHeld,
        CardStateConflict,
        IdempotencyKeyReused,
        NotInsured,
        SettlementNotFound,
        SettlementNotSettled,
        SettlementCorrected,
    )
}
"""Every refusal a region's card or medical system may answer with, by its reason: each region codes them all."""


@dataclass(frozen=True)
class RefusalCodes(Generic[C]):
    """One region's codes for the refusals of :data:`REGION_REFUSALS`, read both ways.

    Args:
        codes: the region's code of each refusal, by the refusal's reason (``"CARD_NOT_FOUND"``, …).

    Raises:
        ValueError: a reason of :data:`REGION_REFUSALS` has no code, an unknown reason has one, or two reasons
            share a code.
    """

    codes: Mapping[str, C]
    _reasons: Mapping[object, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        missing, unknown = REGION_REFUSALS.keys() - self.codes.keys(), self.codes.keys() - REGION_REFUSALS.keys()
        if missing or unknown:
            raise ValueError(f"refusal codes: no code for {sorted(missing)}; unknown reasons {sorted(unknown)}")
        reasons: dict[object, str] = {code: reason for reason, code in self.codes.items()}
        if len(reasons) != len(self.codes):
            raise ValueError("refusal codes: two reasons share a code")
        object.__setattr__(self, "_reasons", reasons)

    def code(self, refusal: Refusal) -> C | None:
        """The code a sandbox answers ``refusal`` with; ``None`` for a refusal regions do not answer with."""
        return self.codes.get(refusal.reason)

    def refusal(self, code: object) -> type[Refusal] | None:
        """The refusal an adapter raises for the region's ``code``; ``None`` when it is no refusal's code."""
        reason = self._reasons.get(code) if isinstance(code, Hashable) else None
        return None if reason is None else REGION_REFUSALS[reason]
