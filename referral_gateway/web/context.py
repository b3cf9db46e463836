"""What the web routes share: stores, services, options, the live-event broadcaster and the
templates. One per app, at `app.state.web`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import jinja2
from sqlalchemy.engine import Engine

from referral_gateway.domain.clock import Clock
from referral_gateway.domain.sites import SiteDirectory
from referral_gateway.services.casework import Casework
from referral_gateway.services.onward import OnwardReferrals
from referral_gateway.storage.accounts import AccountStore
from referral_gateway.storage.alerts import AlertStore
from referral_gateway.storage.attendances import sites_seen
from referral_gateway.web.events import Broadcaster
from referral_gateway.web.kept_forms import KeptForms
from referral_gateway.web.options import WebOptions


@dataclass
class WebContext:
    engine: Engine
    clock: Clock
    options: WebOptions
    accounts: AccountStore
    casework: Casework
    events: Broadcaster
    templates: jinja2.Environment
    onward: OnwardReferrals | None = field(default=None)  # sending to outside services
    alert_store: AlertStore | None = None  # each worker's alert choices and devices
    vapid_public_key: str = ""  # what browsers subscribe to Web Push with
    sites: SiteDirectory = field(default_factory=SiteDirectory)  # the site configuration
    kept_forms: KeptForms = field(default_factory=KeptForms)  # posted after a session ended

    def known_sites(self) -> frozenset[str]:
        """The sites of the site configuration and those attendances came from."""
        with self.engine.connect() as conn:
            seen = sites_seen(conn)
        return seen | {rules.ods_code.upper() for rules in self.sites}

    def unknown_sites(self, sites: Iterable[str]) -> list[str]:
        """Those of `sites` the gateway does not know. Before it knows any (no site file and
        no attendance yet: a fresh install), every well-formed code is taken."""
        known = self.known_sites()
        return sorted(s for s in sites if s.upper() not in known) if known else []
