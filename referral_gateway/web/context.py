"""What the web routes share, one per app at `app.state.web`.

`SignInContext` is what signing in needs (accounts, sessions, options, templates): the
standalone programme hub has only that. `WebContext`, the gateway's, adds the casework,
live events and the rest of the youth workers' pages."""

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
from referral_gateway.web.flash import FlashStore
from referral_gateway.web.kept_forms import KeptForms
from referral_gateway.web.options import WebOptions


@dataclass(kw_only=True)
class SignInContext:
    engine: Engine
    clock: Clock
    options: WebOptions
    accounts: AccountStore
    templates: jinja2.Environment
    # the one page every role lands on after signing in (the standalone hub: /hub), with no
    # navigation to pages the app does not serve; empty: each role's own home
    landing: str = ""
    # forms posted after a session ended; None: none kept (the standalone hub has no key ring)
    kept_forms: KeptForms | None = None


@dataclass(kw_only=True)
class WebContext(SignInContext):
    casework: Casework
    events: Broadcaster
    flash: FlashStore  # refused forms, for the page's next GET
    onward: OnwardReferrals | None = field(default=None)  # sending to outside services
    alert_store: AlertStore | None = None  # each worker's alert choices and devices
    vapid_public_key: str = ""  # what browsers subscribe to Web Push with
    sites: SiteDirectory = field(default_factory=SiteDirectory)  # the site configuration

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
