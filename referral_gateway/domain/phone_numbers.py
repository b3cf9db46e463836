"""Phone numbers a phone can dial when tapped (`tel:` links on the case page)."""

from __future__ import annotations

import re

_NOT_DIALLED = re.compile(r"[\s\-().]")


def dial_string(raw: str | None) -> str | None:
    """What a `tel:` link dials for `raw` ("07700 900123" -> "07700900123", "+44 (0)7700
    900123" -> "+447700900123"), or None when `raw` is not a phone number at all."""
    if not raw:
        return None
    compact = _NOT_DIALLED.sub("", raw.strip())
    if compact.startswith("+44") and compact[3:4] == "0":
        compact = "+44" + compact[4:]
    digits = compact.removeprefix("+")
    if not digits.isascii() or not digits.isdigit() or not 3 <= len(digits) <= 15:
        return None
    return compact
