"""What a refused form leaves for the page it redirects to (post/redirect/get).

A case-page form that fails is answered with a 303 back to the case page, never re-rendered
at its POST address. What was typed, and the problems with it, wait in the database
(`storage.form_flash`: encrypted with the key ring, so any of several gateways behind a load
balancer can answer the GET), never in a cookie or a URL, under the session's hash and the
page's address, for a few minutes, and are handed out once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from referral_gateway.storage.form_flash import FormFlashStore

FLASH_TTL = timedelta(minutes=5)


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

    def __init__(self, rows: FormFlashStore, *, ttl: timedelta = FLASH_TTL) -> None:
        self.rows = rows
        self.ttl = ttl

    def keep(self, session: str, page: str, flash: FormFlash, *, now: datetime) -> None:
        payload = json.dumps(
            {"form": flash.form_name, "problems": flash.problems, "values": flash.values}
        )
        self.rows.keep(session, page, payload, now=now, until=now + self.ttl)

    def take(self, session: str, page: str, *, now: datetime) -> FormFlash | None:
        """The refused form left for this session's page, once; None when there is none or
        it expired."""
        payload = self.rows.take(session, page, now=now)
        if payload is None:
            return None
        data = json.loads(payload)
        return FormFlash(data["form"], dict(data["problems"]), dict(data["values"]))

    def __len__(self) -> int:
        return self.rows.count()
