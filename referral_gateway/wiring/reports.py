"""Reports wired from settings: store, service, push, scheduler jobs, hub keys, routes.

`build_reports(settings, engine, clock)` makes the parts; `mount_reports(app, ...)` adds
the dashboard (and, with RG_HUB_KEYS_FILE, the hub) to the gateway's app; the serve command
starts `reports.jobs`. Nothing reads the environment here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from apscheduler.schedulers.base import BaseScheduler
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from referral_gateway.config import ConfigError, Settings
from referral_gateway.domain.clock import Clock
from referral_gateway.domain.errors import SiteConfigError
from referral_gateway.domain.programme_keys import programme_key_refs
from referral_gateway.report_formats.signing import SigningKey, SigningKeyError
from referral_gateway.services.errors import HubConfigError
from referral_gateway.services.hub import HubConfig, load_hub_config
from referral_gateway.services.report_jobs import ReportJobs
from referral_gateway.services.report_push import MonthlyPush, ReportSender
from referral_gateway.services.reporting import FactsRepository, ReportService
from referral_gateway.storage.job_runs import JobRuns
from referral_gateway.storage.report_facts import SqlFacts
from referral_gateway.storage.reports import ReportStore


@dataclass
class Reports:
    store: ReportStore
    service: ReportService
    push: MonthlyPush
    jobs: ReportJobs
    hub: HubConfig | None  # with RG_HUB_KEYS_FILE: the sites' keys and those expected


def push_sender(settings: Settings, clock: Clock) -> ReportSender | None:
    """The sender for RG_PROGRAMME_ENDPOINT, or None when no endpoint is set. Each site's
    month is signed with its `[sites.X.programme]` key, else the default key
    (RG_PROGRAMME_KEY_ID and RG_PROGRAMME_SECRET). A half-set configuration is an error, not
    a silent "not pushed"."""
    if not settings.programme_endpoint:
        if settings.programme_key_id or settings.programme_secret:
            raise ConfigError("RG_PROGRAMME_ENDPOINT is needed with RG_PROGRAMME_KEY_ID")
        return None
    if not settings.programme_endpoint.startswith(("https://", "http://")):
        raise ConfigError("RG_PROGRAMME_ENDPOINT must be an http(s) URL")
    site_keys = programme_site_keys(settings.config_file)
    default: SigningKey | None = None
    if settings.programme_key_id or settings.programme_secret or not site_keys:
        if not settings.programme_key_id or not settings.programme_secret:
            raise ConfigError(
                "RG_PROGRAMME_KEY_ID and RG_PROGRAMME_SECRET are needed to sign the push "
                "(or a [sites.X.programme] key per site in the site file)"
            )
        try:
            default = SigningKey(
                settings.programme_key_id, settings.programme_secret.encode("utf-8")
            )
        except SigningKeyError as exc:
            raise ConfigError(f"RG_PROGRAMME_SECRET: {exc}") from None
    return ReportSender(settings.programme_endpoint, default, site_keys=site_keys, clock=clock)


def programme_site_keys(config_file: str) -> dict[str, SigningKey]:
    """Each site's signing key from `[sites.X.programme]` (the secret read from its
    `key_file`, relative to the site file's folder). Errors name the site and the file,
    never the secret."""
    if not config_file:
        return {}
    path = Path(config_file)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}  # the site configuration's own loader reports an unreadable file
    try:
        refs = programme_key_refs(data)
    except SiteConfigError as exc:
        raise ConfigError(str(exc)) from None
    keys: dict[str, SigningKey] = {}
    for site, ref in refs.items():
        key_file = path.parent / ref.key_file
        try:
            secret = key_file.read_text("utf-8").strip()
        except OSError:
            raise ConfigError(f"sites.{site}.programme.key_file: cannot read {key_file}") from None
        try:
            keys[site] = SigningKey(ref.key_id, secret.encode("utf-8"))
        except SigningKeyError as exc:
            raise ConfigError(f"sites.{site}.programme.key_file {key_file}: {exc}") from None
    return keys


def hub_config(settings: Settings) -> HubConfig | None:
    if not settings.hub_keys_file:
        return None
    try:
        return load_hub_config(Path(settings.hub_keys_file))
    except HubConfigError as exc:
        raise ConfigError(f"RG_HUB_KEYS_FILE: {exc}") from None


def report_service(engine: Engine) -> ReportService:
    """The reports read from the database (the `report` command's; `build_reports` takes
    another facts repository in tests)."""
    return ReportService(SqlFacts(engine))


def build_reports(
    settings: Settings,
    engine: Engine,
    clock: Clock,
    *,
    facts: FactsRepository | None = None,
    scheduler: BaseScheduler | None = None,
) -> Reports:
    store = ReportStore(engine)
    service = ReportService(facts or SqlFacts(engine))
    push = MonthlyPush(
        store,
        lambda site, month: service.published(site, month),
        service.sites,
        push_sender(settings, clock),
        clock=clock,
    )
    runs = JobRuns(engine)
    return Reports(
        store, service, push, ReportJobs(push, scheduler, runs=runs), hub_config(settings)
    )


def mount_reports(
    app: FastAPI, reports: Reports, clock: Clock, *, ops_token: str | None = None
) -> None:
    """The dashboard at /reports (and the hub at /hub with RG_HUB_KEYS_FILE) on the gateway's
    app, read by its signed-in staff (`install_web` provides the sessions); the ops token, when
    set, also reads the CSV and JSON downloads."""
    from referral_gateway.web.hub import build_hub_router
    from referral_gateway.web.reports import build_reports_router, download_reader, page_reader

    app.include_router(
        build_reports_router(
            reports.service, reports.store, clock, push=reports.push, ops_token=ops_token
        )
    )
    if reports.hub is not None:
        app.include_router(
            build_hub_router(
                reports.store,
                reports.hub.keys,
                page_reader,
                clock,
                download_dependency=download_reader(ops_token),
                expected_sites=reports.hub.expected_sites,
            )
        )


def build_hub_alone(settings: Settings, clock: Clock) -> tuple[FastAPI, Engine]:
    """The programme hub served on its own (`referral-gateway hub`): the sites' keys (required),
    the database, the gateway's accounts and sign-in (accounts made with `referral-gateway
    users add` on the hub's database), and the hub app, whose downloads the ops token may
    also read. The caller disposes of the engine."""
    from referral_gateway.storage.audit_store import AuditStore, anchor_for
    from referral_gateway.web.context import SignInContext
    from referral_gateway.web.hub import build_hub_app
    from referral_gateway.web.options import WebOptions
    from referral_gateway.web.render import make_templates
    from referral_gateway.wiring.accounts import account_store
    from referral_gateway.wiring.database import open_database

    hub = hub_config(settings)
    if hub is None:
        raise ConfigError("the hub needs RG_HUB_KEYS_FILE (or --hub-keys-file)")
    engine = open_database(settings)
    options = WebOptions.from_settings(settings)
    ctx = SignInContext(
        engine=engine,
        clock=clock,
        options=options,
        accounts=account_store(engine, options, AuditStore(anchor_for(settings.data_dir))),
        templates=make_templates(options.zone),
        landing="/hub",
    )
    app = build_hub_app(
        ReportStore(engine),
        hub.keys,
        ctx,
        ops_token=settings.ops_token or None,
        expected_sites=hub.expected_sites,
    )
    return app, engine
