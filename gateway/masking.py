"""Masking of personal numbers in anything written to logs (DESIGN §7)."""

from __future__ import annotations

import re

_SSN = re.compile(r"(?<![0-9A-Za-z])(\d{4})\d{10}(\d{3}[\dXx])(?![0-9A-Za-z])")
_CODE = re.compile(r"(?<![0-9A-F])(\d{6})D156000005[0-9A-F]{12}([0-9A-F]{4})(?![0-9A-F])")
_CARD = re.compile(r"(?<![0-9A-Za-z])([0-9A-Z]{2})[0-9A-Z]{5}([0-9A-Z]{2})(?![0-9A-Za-z])")


def mask_text(text: str) -> str:
    """Mask every SSN, card identification code and card number found in free text."""
    text = _SSN.sub(lambda m: m.group(1) + "*" * 10 + m.group(2), text)
    text = _CODE.sub(lambda m: m.group(1) + "*" * 22 + m.group(2), text)
    return _CARD.sub(lambda m: m.group(1) + "*****" + m.group(2), text)
