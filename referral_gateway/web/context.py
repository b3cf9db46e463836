"""What the web routes share: stores, services, options, the live-event broadcaster and the
templates. One per app, at `app.state.web`."""

from __future__ import annotations

from dataclasses import dataclass, field

import jinja2
from sqlalchemy.engine import Engine

from referral_gateway.domain.clock import Clock
from referral_gateway.services.casework import Casework
from referral_gateway.services.onward import OnwardReferrals
from referral_gateway.storage.accounts import AccountStore
from referral_gateway.storage.alerts import AlertStore
from referral_gateway.web.events import Broadcaster
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
