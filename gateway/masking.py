"""Masking of personal numbers and names in anything written to logs (DESIGN §7, §11).

:class:`MaskingFilter` on the log handlers masks every line the process writes, whatever logger wrote it.
"""

from __future__ import annotations

import logging
import re

_SSN = re.compile(r"(?<![0-9A-Za-z])(\d{4})\d{10}(\d{3}[\dXx])(?![0-9A-Za-z])")
_CODE = re.compile(r"(?<![0-9A-F])(\d{6})D156000005[0-9A-F]{12}([0-9A-F]{4})(?![0-9A-F])")
_CARD = re.compile(r"(?<![0-9A-Za-z])([0-9A-Z]{2})[0-9A-Z]{5}([0-9A-Z]{2})(?![0-9A-Za-z])")
_NAME = re.compile(r"""(["']?(?:holder_)?name["']?\s*[:=]\s*["']?)([^"',\s}]{1,64})""")
# What every number above contains (nine digits or capitals in a row), and a name's key: text with neither —
# most log lines — is passed on after this one search instead of the four substitutions.
_CANDIDATE = re.compile(r"[0-9A-Z]{9}|name")


def mask_text(text: str) -> str:
    """Mask every SSN, card identification code and card number found in free text, and the value of a
    ``name`` or ``holder_name`` field (all but its first character)."""
    if not _CANDIDATE.search(text):
        return text
    text = _SSN.sub(lambda m: m.group(1) + "*" * 10 + m.group(2), text)
    text = _CODE.sub(lambda m: m.group(1) + "*" * 22 + m.group(2), text)
    text = _CARD.sub(lambda m: m.group(1) + "*****" + m.group(2), text)
    return _NAME.sub(lambda m: m.group(1) + m.group(2)[0] + "*" * (len(m.group(2)) - 1), text)


class MaskingFilter(logging.Filter):
    """Masks a record's whole message (arguments included) before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask_text(record.getMessage()), None
        return True
