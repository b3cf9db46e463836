"""The FHIR channel's parts, built once and handed to the gateway's wiring.

channel = build_fhir_channel(engine, keyring, clock, sources=load_fhir_sources(path))
app.include_router(channel.router())         # the web app
channel.writer.on_committed = worker.wake    # wake the pipeline after each commit
channel.start(); ...; channel.stop()         # writer thread and the poll scheduler
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from sqlalchemy.engine import Engine

from adapters.fhir.auth import TokenAuthenticator
from adapters.fhir.errors import SourceConfigError
from adapters.fhir.poller import FhirPoller
from adapters.fhir.routes import fhir_router
from adapters.fhir.sources import FhirSource, parse_fhir_sources
from adapters.fhir.subscriptions import RETRY_EVERY_SECONDS, SubscriptionReceiver
from adapters.fhir.writer import FhirWriter
from consent.keyring import KeyRing
from referral_gateway.storage.fhir_store import ApiClientStore, FhirResourceStore, PollStateStore

log = logging.getLogger(__name__)


@dataclass
class FhirChannel:
    store: FhirResourceStore
    writer: FhirWriter
    clients: ApiClientStore
    authenticate: TokenAuthenticator
    sources: tuple[FhirSource, ...]
    receiver: SubscriptionReceiver
    poller: FhirPoller
    clock: Callable[[], datetime]
    _scheduler: Any = field(default=None, repr=False)
    _started: bool = False

    def router(self) -> APIRouter:
        return fhir_router(
            writer=self.writer,
            authenticate=self.authenticate,
            clock=self.clock,
            notifications=self.receiver,
        )

    def start(self, *, poll: bool = True) -> FhirChannel:
        if not self._started:
            self.writer.start()
            self._started = True
            if poll:
                self._scheduler = schedule_polling(self)
        return self

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self._started:
            self.writer.stop()
            self._started = False


def build_fhir_channel(
    engine: Engine,
    keyring: KeyRing,
    clock: Callable[[], datetime],
    *,
    sources: tuple[FhirSource, ...] = (),
    on_committed: Callable[[], None] | None = None,
) -> FhirChannel:
    store = FhirResourceStore(engine, keyring)
    writer = FhirWriter(store, clock, on_committed=on_committed)
    clients = ApiClientStore(engine)
    return FhirChannel(
        store=store,
        writer=writer,
        clients=clients,
        authenticate=TokenAuthenticator(clients),
        sources=sources,
        receiver=SubscriptionReceiver(writer, store, sources, clock),
        poller=FhirPoller(writer, PollStateStore(engine)),
        clock=clock,
    )


def load_fhir_sources(config_file: str | Path | None) -> tuple[FhirSource, ...]:
    """The `[fhir.sources.*]` of the site configuration file (none without a file)."""
    if not config_file:
        return ()
    try:
        data = tomllib.loads(Path(config_file).read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return ()  # the site configuration's own loader reports an unreadable file
    try:
        return parse_fhir_sources(data)
    except SourceConfigError as exc:
        from referral_gateway.config import ConfigError

        raise ConfigError(str(exc)) from None


def schedule_polling(channel: FhirChannel) -> Any:
    """An APScheduler background scheduler with one interval job per polled source (at its
    interval, or at the safety net's pace for a source that sends notifications), first run
    straight away, and the retry of notified resources the sources did not serve yet; None
    when there is no source."""
    if not channel.sources:
        return None
    from apscheduler.schedulers.background import BackgroundScheduler

    from referral_gateway.storage.job_runs import JobRuns, interval_slot

    runs = JobRuns(channel.store.engine)
    scheduler = BackgroundScheduler(timezone="UTC")
    for source in channel.sources:
        if source.poll_every is None:
            continue
        name, poll, every = (
            f"fhir.poll.{source.name}",
            _poll_job(channel, source),
            source.poll_every,
        )

        def once(name: str = name, poll: Callable[[], None] = poll, every: float = every) -> None:
            # several instances on PostgreSQL: each source polled once per interval across them
            try:
                runs.run_once(name, interval_slot(runs.now(), max(1, int(every))), poll)
            except Exception as exc:
                log.error("polling could not run: %s", type(exc).__name__)

        scheduler.add_job(
            once,
            "interval",
            seconds=every,
            id=f"fhir-poll-{source.name}",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),  # the scheduler's own time, not the clock's
        )

    def retry_missed() -> None:
        try:
            runs.run_once(
                "fhir.focus-retry",
                interval_slot(runs.now(), int(RETRY_EVERY_SECONDS)),
                lambda: channel.receiver.retry_missed(channel.clock()),
            )
        except Exception as exc:
            log.error("the focus retry could not run: %s", type(exc).__name__)

    scheduler.add_job(
        retry_missed,
        "interval",
        seconds=RETRY_EVERY_SECONDS,
        id="fhir-focus-retry",
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    return scheduler


def _poll_job(channel: FhirChannel, source: FhirSource) -> Callable[[], None]:
    def run() -> None:
        result = channel.poller.poll_source(source, channel.clock())
        if result.ran and result.ok:
            log.info(
                "polled %s: %d page(s), %d encounter(s), %d new version(s)",
                source.name,
                result.pages,
                result.encounters,
                result.stored,
            )

    return run
