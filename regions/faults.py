"""Fault knobs of a sandbox, changeable at run time: down, added latency, error rate."""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass, field
from typing import Any

SCOPES = ("all", "settlement")


@dataclass
class Faults:
    """What a sandbox does wrong on purpose.

    Attributes:
        down: every protocol call is refused as if the system were down.
        latency_ms: added before each protocol call is processed.
        error_rate: fraction (0–1) of protocol calls answered "system busy" without being processed.
        answer_delay_ms: added after a call is processed, before it is answered: the region acts on the
            request but the caller may give up first.
        answer_delay_calls: how many of the next calls get ``answer_delay_ms`` (0 = every call).
        answer_delay_scope: ``"all"`` calls, or only ``"settlement"`` calls (filing, settlement, outcome,
            correction, reversal) — card lookups then answer on time.
        unbalanced_splits: settlements are answered with a split one fen off (applied correctly).
        drop_events: card status events are lost instead of published to the hub.
    """

    down: bool = False
    latency_ms: int = 0
    error_rate: float = 0.0
    answer_delay_ms: int = 0
    answer_delay_calls: int = 0
    answer_delay_scope: str = "all"
    unbalanced_splits: bool = False
    drop_events: bool = False
    _rng: random.Random = field(default_factory=lambda: random.Random(7), repr=False, compare=False)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a JSON change set; ``{"clear": true}`` resets every knob. Bad values raise ValueError."""
        if changes.get("clear"):
            self.down, self.latency_ms, self.error_rate = False, 0, 0.0
            self.answer_delay_ms, self.answer_delay_calls, self.unbalanced_splits = 0, 0, False
            self.answer_delay_scope, self.drop_events = "all", False
        if "answer_delay_scope" in changes:
            if changes["answer_delay_scope"] not in SCOPES:
                raise ValueError(f"answer_delay_scope must be one of {', '.join(SCOPES)}")
            self.answer_delay_scope = changes["answer_delay_scope"]
        for flag in ("down", "unbalanced_splits", "drop_events"):
            if flag in changes:
                if not isinstance(changes[flag], bool):
                    raise ValueError(f"{flag} must be true or false")
                setattr(self, flag, changes[flag])
        for count in ("latency_ms", "answer_delay_ms", "answer_delay_calls"):
            if count in changes:
                value = changes[count]
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ValueError(f"{count} must be a whole number ≥ 0")
                setattr(self, count, value)
        if "error_rate" in changes:
            rate = changes["error_rate"]
            if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1:
                raise ValueError("error_rate must be a number from 0 to 1")
            self.error_rate = float(rate)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    async def before_call(self) -> str | None:
        """Wait out the added latency; return why the call must fail ("down", "busy") or None."""
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        if self.down:
            return "down"
        if self.error_rate and self._rng.random() < self.error_rate:
            return "busy"
        return None

    async def after_call(self, *, settlement: bool = False) -> None:
        """Wait out the answer delay of a processed call (``settlement``: a medical-insurance call)."""
        if not self.answer_delay_ms or (self.answer_delay_scope == "settlement" and not settlement):
            return
        if self.answer_delay_calls:
            self.answer_delay_calls -= 1
            if not self.answer_delay_calls:
                delay, self.answer_delay_ms = self.answer_delay_ms, 0
                await asyncio.sleep(delay / 1000)
                return
        await asyncio.sleep(self.answer_delay_ms / 1000)
