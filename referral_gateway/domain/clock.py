"""Time as the gateway reads it: a `Clock` gives the current moment, timezone-aware. Every
part that needs the time takes one, so tests hand in a fixed or stepping clock and nothing
reads the system time behind their back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)
