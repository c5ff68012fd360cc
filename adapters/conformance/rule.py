"""A conformance rule, the error a broken rule raises, and the small helpers its check is written with.

A check is an ``async`` function of a :class:`~adapters.conformance.target.Target`. It states what it expects
through :func:`answer`, :func:`refused`, :func:`same` and :func:`holds`; each raises :class:`Unmet` with what
was expected and what came instead, and the runner turns that into a :class:`RuleViolation` naming the rule::

    [SETTLE-REPLAY] settling the same bill twice under one message id must replay the first settlement:
    expected region_settlement_id 'r-S00000001', got 'r-S00000002'
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from adapters.conformance.target import Target

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)

_RULE_ID = re.compile(r"[A-Z][A-Z0-9]*(-[A-Z0-9]+)*")
_LONGEST_VALUE = 300

Check = Callable[["Target"], Awaitable[None]]


class Unmet(Exception):
    """Raised inside a check: the adapter did not do what the rule expects.

    Attributes:
        expected: what the rule expected, in words (``"status CardStatus.LOCKED"``).
        got: what came instead (``"CardStatus.NORMAL"``, ``"NotImplementedError: implement get_card"``).
    """

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"expected {expected}, got {got}")
        self.expected, self.got = expected, got


class RuleViolation(AssertionError):
    """An adapter broke a conformance rule; the message names the rule, what it expected and what it got.

    Attributes:
        rule_id: the rule's id, e.g. ``"SETTLE-REPLAY"``.
        expected: what the rule expected.
        got: what the adapter did instead.
        statement: the rule in one line.
    """

    def __init__(self, rule_id: str, expected: str, got: str, *, statement: str = "") -> None:
        rule = f"[{rule_id}] {statement}:" if statement else f"[{rule_id}]"
        super().__init__(f"{rule} expected {expected}, got {got}")
        self.rule_id, self.expected, self.got, self.statement = rule_id, expected, got, statement


@dataclass(frozen=True)
class Rule:
    """One thing every region adapter must do, checked against the region's sandbox.

    Attributes:
        id: upper-case words joined by dashes, e.g. ``"CARD-STATUS-MAPPING"``; ``str(rule)`` is the id, so
            ``pytest.mark.parametrize("rule", rules(), ids=str)`` names each test after its rule.
        statement: the rule in one line, as a partner reads it in a failure.
        check: raises :class:`Unmet` (or any error, reported as the rule failing) when the adapter breaks it.
    """

    id: str
    statement: str
    check: Check

    def __post_init__(self) -> None:
        if not _RULE_ID.fullmatch(self.id):
            raise ValueError(f"rule id {self.id!r} must be upper-case words joined by dashes")

    def __str__(self) -> str:
        return self.id

    def violation(self, unmet: Unmet) -> RuleViolation:
        """The :class:`RuleViolation` of this rule for what a check found."""
        return RuleViolation(self.id, unmet.expected, unmet.got, statement=self.statement)


def rule(rule_id: str, statement: str) -> Callable[[Check], Rule]:
    """Make a :class:`Rule` of the decorated check."""

    def make(check: Check) -> Rule:
        return Rule(rule_id, statement, check)

    return make


# --- what a check expects ---------------------------------------------------------------------------------


def show(value: object) -> str:
    """A value as a failure message shows it: enums by name, strings quoted, long values cut."""
    text = f"{type(value).__name__}.{value.name}" if isinstance(value, enum.Enum) else repr(value)
    return text if len(text) <= _LONGEST_VALUE else text[: _LONGEST_VALUE - 3] + "..."


def describe(exc: BaseException) -> str:
    """An error as a failure message shows it: ``"NotImplementedError: implement get_card"``."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def answer(doing: str, call: Awaitable[T]) -> T:
    """Await an adapter call that must succeed; an error is the rule failing.

    Args:
        doing: the call in words, e.g. ``"get_card of a LOCKED card"``.
        call: the adapter call.
    """
    try:
        return await call
    except Exception as exc:
        raise Unmet(f"{doing} to answer", describe(exc)) from exc


async def refused(error: type[E], doing: str, call: Awaitable[object]) -> E:
    """Await an adapter call that must raise ``error``; return the error raised.

    Args:
        error: the adapter error class the rule expects (a subclass is fine).
        doing: the call in words.
        call: the adapter call.
    """
    try:
        result = await call
    except error as exc:
        return exc
    except Exception as exc:
        raise Unmet(f"{doing} to raise {error.__name__}", describe(exc)) from exc
    raise Unmet(f"{doing} to raise {error.__name__}", f"an answer: {show(result)}")


def same(what: str, expected: object, got: object) -> None:
    """``expected == got``, or the rule fails showing both."""
    if expected != got:
        raise Unmet(f"{what} {show(expected)}", show(got))


def holds(condition: bool, expected: str, got: str) -> None:
    """``condition``, or the rule fails with ``expected`` and ``got`` as given."""
    if not condition:
        raise Unmet(expected, got)
