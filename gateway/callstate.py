"""Per-call state shared by the interceptors and the layers below them, through a context variable.

The deadline interceptor sets the deadline, routing records the region and attempts, and the access log
reads them back; the servicers never handle any of it.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field


@dataclass
class CallState:
    """What is known about the RPC being served."""

    method: str
    request_id: str = ""
    caller: str = ""
    deadline: float = field(default_factory=lambda: time.monotonic() + 5.0)  # monotonic seconds
    region: str = ""
    venue_region: str = ""
    attempts: int = 0
    code: str = ""
    error: str = ""

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


_current: contextvars.ContextVar[CallState | None] = contextvars.ContextVar("yikatong_call", default=None)


def current() -> CallState:
    """The state of the current RPC; outside an RPC (self-check, tests) a fresh default one."""
    state = _current.get()
    if state is None:
        state = CallState(method="")
        _current.set(state)
    return state


def begin(state: CallState) -> contextvars.Token[CallState | None]:
    return _current.set(state)


def end(token: contextvars.Token[CallState | None]) -> None:
    _current.reset(token)
