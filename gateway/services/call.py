"""The call being served: its deadline, who asked, and what the hub did for it.

The API layer makes one :class:`Call` per RPC and passes it down explicitly; the federation reads its deadline
and writes the region it routed to and the attempts it made, which the access log and the metrics then read.
Work the hub does on its own (the outbox, probes, the self-check) makes a call with its own budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

DEV_PARTICIPANT = "dev"


@dataclass
class Call:
    """One request being served.

    Attributes:
        deadline: monotonic time by which the caller wants the answer.
        method: the RPC's full method name ("" for the hub's own work).
        participant: the authenticated caller.
        request_id: the request's id (the caller's, or one made for it).
        region: the region the call was routed to ("" when none).
        venue_region: the region of the venue or treatment place ("" when none).
        attempts: calls sent to regions, retries included.
        caller_hint: who the client says it is (logged as a hint only, never trusted).
        code: the gRPC status code the call ended with, once known.
        error: the reason and message of the error it ended with, if any.
    """

    deadline: float = field(default_factory=lambda: time.monotonic() + 5.0)
    method: str = ""
    participant: str = DEV_PARTICIPANT
    request_id: str = ""
    region: str = ""
    venue_region: str = ""
    attempts: int = 0
    caller_hint: str = ""
    code: str = ""
    error: str = ""

    @classmethod
    def within(cls, seconds: float, method: str = "") -> Call:
        """A call that must be done within ``seconds`` from now."""
        return cls(deadline=time.monotonic() + seconds, method=method)

    def remaining(self) -> float:
        """Seconds left until the deadline (negative once it has passed)."""
        return self.deadline - time.monotonic()
