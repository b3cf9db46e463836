"""What a refused form leaves for the page it redirects to (post/redirect/get).

A case-page form that fails is answered with a 303 back to the case page, never re-rendered
at its POST address. What was typed, and the problems with it, wait here: in this process's
memory only (never in a cookie, a URL or the database, since what was typed may be a name or
a safeguarding reason), under the session's hash and the page's address, for a few minutes,
and are handed out once. A second web process, a restart or an expired entry just means the
form comes back empty, with nothing lost that was saved.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

FLASH_TTL = timedelta(minutes=5)
MAX_ENTRIES = 2000  # a bound on memory whatever happens; the oldest go first


@dataclass(frozen=True)
class FormFlash:
    """A refused form: which one, what stopped it (by field), what was typed. Never logged."""

    form_name: str
    problems: Mapping[str, str]
    values: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"FormFlash({self.form_name!r}, fields={sorted(self.problems)})"


class FlashStore:
    """Refused forms waiting for their page's next GET, per session and page address."""

    def __init__(self, *, ttl: timedelta = FLASH_TTL, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[datetime, FormFlash]] = {}

    def keep(self, session: str, page: str, flash: FormFlash, *, now: datetime) -> None:
        with self._lock:
            self._prune(now)
            self._entries.pop((session, page), None)
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
            self._entries[(session, page)] = (now + self.ttl, flash)

    def take(self, session: str, page: str, *, now: datetime) -> FormFlash | None:
        """The refused form left for this session's page, once; None when there is none or
        it expired."""
        with self._lock:
            entry = self._entries.pop((session, page), None)
        if entry is None or entry[0] <= now:
            return None
        return entry[1]

    def __len__(self) -> int:
        return len(self._entries)

    def _prune(self, now: datetime) -> None:
        for key in [k for k, (until, _) in self._entries.items() if until <= now]:
            del self._entries[key]
