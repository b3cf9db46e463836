"""Forms posted after their session ended, kept in memory (never on disk, in a URL or a log)
until their owner signs in again and is offered them back.

A form is kept only when the browser says it was sent from one of this site's own pages, and
only for the person whose session it was (an idled-out session; a signed-out one keeps
nothing); it is offered once, to that person, within `keep_for`. The browser holds only a
random key to it, in an HttpOnly, SameSite=Strict cookie.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

KEEP_FOR = timedelta(minutes=30)
MOST = 1000  # forms held at once; the oldest go first


@dataclass(frozen=True)
class KeptForm:
    owner: str  # the staff user id whose session had ended
    action: str  # the local path the form was posted to
    fields: tuple[tuple[str, str], ...]  # without its stale CSRF token
    kept_at: datetime


class KeptForms:
    def __init__(self, *, keep_for: timedelta = KEEP_FOR, most: int = MOST) -> None:
        self.keep_for = keep_for
        self.most = most
        self._forms: dict[str, KeptForm] = {}
        self._lock = threading.Lock()

    def keep(self, form: KeptForm) -> str:
        """Hold `form`; the key to it."""
        key = secrets.token_urlsafe(24)
        with self._lock:
            self._forget_old(form.kept_at)
            while len(self._forms) >= self.most:
                del self._forms[next(iter(self._forms))]
            self._forms[key] = form
        return key

    def waiting(self, key: str, owner: str, *, now: datetime) -> bool:
        """A form is kept under `key` for `owner`."""
        with self._lock:
            self._forget_old(now)
            form = self._forms.get(key)
        return form is not None and form.owner == owner

    def take(self, key: str, owner: str, *, now: datetime) -> KeptForm | None:
        """The form kept under `key` for `owner`, handed over once."""
        with self._lock:
            self._forget_old(now)
            form = self._forms.get(key)
            if form is None or form.owner != owner:
                return None
            del self._forms[key]
        return form

    def _forget_old(self, now: datetime) -> None:
        for key in [k for k, f in self._forms.items() if now - f.kept_at >= self.keep_for]:
            del self._forms[key]
