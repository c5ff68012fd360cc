"""Fault knobs of a sandbox, changeable at run time: down, added latency, error rate."""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Faults:
    """What a sandbox does wrong on purpose.

    Attributes:
        down: every protocol call is refused as if the system were down.
        latency_ms: added before each protocol call is processed.
        error_rate: fraction (0–1) of protocol calls answered "system busy" without being processed.
    """

    down: bool = False
    latency_ms: int = 0
    error_rate: float = 0.0
    _rng: random.Random = field(default_factory=lambda: random.Random(7), repr=False, compare=False)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a JSON change set; ``{"clear": true}`` resets every knob. Bad values raise ValueError."""
        if changes.get("clear"):
            self.down, self.latency_ms, self.error_rate = False, 0, 0.0
        if "down" in changes:
            if not isinstance(changes["down"], bool):
                raise ValueError("down must be true or false")
            self.down = changes["down"]
        if "latency_ms" in changes:
            latency = changes["latency_ms"]
            if not isinstance(latency, int) or isinstance(latency, bool) or latency < 0:
                raise ValueError("latency_ms must be a whole number ≥ 0")
            self.latency_ms = latency
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
