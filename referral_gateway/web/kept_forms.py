"""Forms posted after their session ended, kept until their owner signs in again and is
offered them back.

A form is kept only when the browser says it was sent from one of this site's own pages, and
only for the person whose session it was (an idled-out session; a signed-out one keeps
nothing); it is offered once, to that person, within `keep_for`. The browser holds only a
random key to it, in an HttpOnly, SameSite=Strict cookie.

They wait where the case page's refused forms wait (`storage.form_flash`, one store): in the
database, encrypted with the key ring, under a hash of that key and the page "/kept-form",
never on disk in the clear, in a URL or a log. So with several gateways behind a load
balancer, the instance that answers the sign-in offers the form another instance kept.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from referral_gateway.storage.form_flash import FormFlashStore

KEEP_FOR = timedelta(minutes=30)
PAGE = "/kept-form"  # the page it is offered on: its rows' page in the form_flash store


@dataclass(frozen=True)
class KeptForm:
    owner: str  # the staff user id whose session had ended
    action: str  # the local path the form was posted to
    fields: tuple[tuple[str, str], ...]  # without its stale CSRF token
    kept_at: datetime

    def __repr__(self) -> str:  # what was typed is never logged
        return f"KeptForm(action={self.action!r}, fields={len(self.fields)})"


class KeptForms:
    """Forms kept for their owners, in the refused forms' store."""

    def __init__(self, rows: FormFlashStore, *, keep_for: timedelta = KEEP_FOR) -> None:
        self.rows = rows
        self.keep_for = keep_for

    def keep(self, form: KeptForm) -> str:
        """Hold `form`; the key to it."""
        key = secrets.token_urlsafe(24)
        payload = json.dumps(
            {
                "owner": form.owner,
                "action": form.action,
                "fields": form.fields,
                "kept_at": form.kept_at.isoformat(),
            }
        )
        self.rows.keep(
            _hashed(key), PAGE, payload, now=form.kept_at, until=form.kept_at + self.keep_for
        )
        return key

    def waiting(self, key: str, owner: str, *, now: datetime) -> bool:
        """A form is kept under `key` for `owner`."""
        if not key:
            return False
        form = _read(self.rows.peek(_hashed(key), PAGE, now=now))
        return form is not None and form.owner == owner

    def take(self, key: str, owner: str, *, now: datetime) -> KeptForm | None:
        """The form kept under `key` for `owner`, handed over once."""
        if not key or not self.waiting(key, owner, now=now):
            return None
        form = _read(self.rows.take(_hashed(key), PAGE, now=now))
        return form if form is not None and form.owner == owner else None


def _hashed(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _read(payload: str | None) -> KeptForm | None:
    if payload is None:
        return None
    data = json.loads(payload)
    fields = tuple((str(name), str(value)) for name, value in data["fields"])
    return KeptForm(data["owner"], data["action"], fields, datetime.fromisoformat(data["kept_at"]))
