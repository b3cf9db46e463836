"""The web app, built from a built gateway: `build_app(gateway, ...)` mounts the FHIR routes,
the operations JSON, the reports (and hub) and the youth workers' pages (`install_web`, which
builds their accounts, casework and live events). Tests build it with fakes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from adapters.fhir.status import source_status
from adapters.fhir.task_routes import task_router
from consent.keyring import KeyRing
from referral_gateway.domain.referral import ReferralNews
from referral_gateway.domain.sites import SiteDirectory
from referral_gateway.observability.metrics import Metrics, build_metrics
from referral_gateway.services.casework import Casework
from referral_gateway.services.onward import OnwardReferrals
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage.alerts import AlertStore
from referral_gateway.storage.form_flash import FormFlashStore
from referral_gateway.storage.notes import NoteChannel
from referral_gateway.web.context import WebContext
from referral_gateway.web.events import Broadcaster, decode_queue_event, encode_queue_event
from referral_gateway.web.flash import FlashStore
from referral_gateway.web.kept_forms import KeptForms
from referral_gateway.web.monitoring import monitoring_router
from referral_gateway.web.ops import ops_router
from referral_gateway.web.options import WebOptions
from referral_gateway.web.render import make_templates
from referral_gateway.web.ui import mount_pages
from referral_gateway.wiring.accounts import account_store
from referral_gateway.wiring.gateway import Gateway
from referral_gateway.wiring.reports import Reports, mount_reports


def build_app(
    gateway: Gateway,
    *,
    ops_token: str | None = None,
    web: WebOptions | None = None,
    reports: Reports | None = None,
    metrics: Metrics | None = None,
    listeners: Mapping[str, Callable[[], bool]] | None = None,
    share_live_events: bool = False,
) -> FastAPI:
    """`metrics`: the registry `/metrics` serves (`serve` builds it first, for the MLLP
    listener's ACK latency); `listeners`: what `/health/ready` waits for besides the
    database (`serve`: the MLLP listener's "serving"); `share_live_events` (`serve`): on
    PostgreSQL, the live queue's events go to and come from the other instances."""
    app = FastAPI(
        title="Referral gateway",
        summary="ED feeds to youth-worker referrals, gated by consent",
        version="0.1.0",
    )
    app.state.gateway = gateway
    # the onward services' Task routes before the ED's generic /fhir/{type}/{id}
    app.include_router(
        task_router(
            tasks=gateway.onward, authenticate=gateway.fhir.authenticate, clock=gateway.clock
        )
    )
    app.include_router(gateway.fhir.router())
    fhir = gateway.fhir

    def fhir_sources() -> list[dict[str, Any]]:
        states = source_status(fhir.sources, fhir.poller.states, fhir.receiver.retry_delays)
        return [s.as_dict() for s in states]

    app.include_router(ops_router(gateway.engine, ops_token, fhir_sources=fhir_sources))
    app.include_router(
        monitoring_router(
            gateway.engine,
            metrics or build_metrics(gateway.engine, gateway.clock),
            ops_token=ops_token,
            listeners=listeners or {},
        )
    )

    if reports is not None:  # dashboard at /reports; hub at /hub when RG_HUB_KEYS_FILE is set
        mount_reports(app, reports, gateway.clock, ops_token=ops_token)

    # unexpected errors: `web.server_errors.UnexpectedErrors`, added by `install_web`

    install_web(
        app,
        engine=gateway.engine,
        keyring=gateway.keyring,
        clock=gateway.clock,
        listeners=gateway.referral_listeners,
        sharing=gateway.sharing,
        options=web or WebOptions.from_settings(gateway.settings),
        onward=gateway.onward,
        alert_store=AlertStore(gateway.engine),
        vapid_public_key=gateway.vapid_public_key,
        on_assigned=gateway.alerts.on_assigned,
        sites=gateway.sites,
        notes=gateway.notes if share_live_events else None,
    )
    return app


def install_web(
    app: FastAPI,
    *,
    engine: Engine,
    keyring: KeyRing,
    clock: Callable[[], datetime],
    listeners: list[Callable[[ReferralNews], None]],
    sharing: Sharing,
    options: WebOptions | None = None,
    hasher: PasswordHasher | None = None,
    onward: OnwardReferrals | None = None,
    alert_store: AlertStore | None = None,
    vapid_public_key: str = "",
    on_assigned: Callable[[str, str, str], None] | None = None,
    sites: SiteDirectory | None = None,
    notes: NoteChannel | None = None,
) -> WebContext:
    """Build the youth workers' pages' parts (accounts, casework, live events) and mount the
    pages and the live queue on `app`. `sharing` is the gateway's consent and reveal service
    (with the casework's assignment lookup, `storage.casework.assigned_to`)."""
    options = options or WebOptions()
    events = Broadcaster()
    if notes is not None:  # several instances: a page on any of them hears every event
        events.share = lambda event: notes.send(encode_queue_event(event))
        notes.listen(lambda note: events.deliver(decode_queue_event(note)))
    # account changes join the consent trail (and its anchor)
    accounts = account_store(engine, options, sharing.audit, hasher=hasher)
    casework = Casework(
        engine,
        keyring,
        clock,
        accounts=accounts,
        sharing=sharing,
        publish=events.publish,
        local_zone=options.zone,
        on_assigned=on_assigned,
    )
    flashes = FormFlashStore(engine, keyring)  # refused forms and forms kept past a session
    ctx = WebContext(
        engine=engine,
        clock=clock,
        options=options,
        accounts=accounts,
        casework=casework,
        events=events,
        templates=make_templates(options.zone),
        flash=FlashStore(flashes),
        kept_forms=KeptForms(flashes),
        onward=onward,
        alert_store=alert_store,
        vapid_public_key=vapid_public_key,
        sites=sites or SiteDirectory(),
    )
    mount_pages(app, ctx, listeners)
    return ctx
