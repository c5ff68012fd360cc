"""The call being served: its deadline, who asked, and what the hub did for it.

The API layer makes one :class:`Call` per RPC and passes it down explicitly; the federation reads its deadline
and writes the region it routed to and the attempts it made, which the access log and the metrics then read.
Work the hub does on its own (the outbox, probes, the self-check) makes a call with its own budget.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from gateway.participants import DEV, Participant


@dataclass
class Call:
    """One request being served.

    Attributes:
        deadline: monotonic time by which the caller wants the answer.
        method: the RPC's full method name ("" for the hub's own work).
        caller: the authenticated participant (the hub's own work acts as the dev participant).
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
    caller: Participant = DEV
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

    @property
    def participant(self) -> str:
        """The caller's participant id."""
        return self.caller.id

    def message_id(self, request_id: str) -> str:
        """The id a region knows the caller's request by: unique across participants, the same on every retry
        (the dev participant's request ids go as they are)."""
        if self.caller is DEV:
            return request_id
        return "p" + hashlib.sha256(f"{self.caller.id}\x1f{request_id}".encode()).hexdigest()[:32]

    def remaining(self) -> float:
        """Seconds left until the deadline (negative once it has passed)."""
        return self.deadline - time.monotonic()
