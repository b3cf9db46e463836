"""Wiring, in one place: settings in, a running gateway out.

Tests call `build_gateway(settings, clock=..., keyring=...)` with fakes; the command line
calls it with what the environment says. Nothing is read from the environment here.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from adapters.fhir.channel import CHANNEL as FHIR_CHANNEL
from adapters.fhir.channel import make_decoder as make_fhir_decoder
from adapters.hl7.channel import CHANNEL as HL7_CHANNEL
from adapters.hl7.channel import decode_stored as decode_hl7
from consent.keyring import KeyRing
from referral_gateway.config import ConfigError, Settings
from referral_gateway.domain.clock import Clock, system_clock
from referral_gateway.domain.errors import DomainError
from referral_gateway.domain.feed_silence import SilencePatterns, parse_silence_patterns
from referral_gateway.domain.referral import ReferralNews
from referral_gateway.domain.sites import SiteDirectory, parse_site_config
from referral_gateway.domain.valuesets import ValueSetLibrary, bundled_valuesets
from referral_gateway.services.alerts import Alerts
from referral_gateway.services.completion import ProcessingWatch
from referral_gateway.services.feed_watch import FeedWatch
from referral_gateway.services.intake import IntakeWriter
from referral_gateway.services.onward import OnwardReferrals, Sender
from referral_gateway.services.pipeline import Decoder, Pipeline, PipelineWorker
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage.attendances import AttendanceStore
from referral_gateway.storage.audit_store import AuditStore, anchor_for
from referral_gateway.storage.casework import assigned_to
from referral_gateway.storage.database import make_derived_engine, make_engine, migrate
from referral_gateway.storage.fhir_store import FhirResourceStore
from referral_gateway.storage.inbox import InboxStore
from referral_gateway.storage.keystore import check_keyring, migration_keyring, open_keyring
from referral_gateway.storage.notes import NoteChannel
from referral_gateway.wiring.alerts import build_alerts
from referral_gateway.wiring.fhir import FhirChannel, build_fhir_channel, load_fhir_sources
from referral_gateway.wiring.onward import build_onward

log = logging.getLogger(__name__)


class PipelineRunner(Protocol):
    """What runs the pipeline in the background: a thread (`PipelineWorker`) or, under
    `serve`, a process of its own (`PipelineProcess`)."""

    def start(self) -> object: ...

    def wake(self) -> None: ...

    def stop(self) -> None: ...


class PipelineProcessFactory(Protocol):
    """How `serve` runs the pipeline in a process of its own (its entry point,
    `entrypoints.pipeline_process.PipelineProcess`): handed `build_process_pipeline`, which
    the new process calls, so the process never imports this module back."""

    def __call__(
        self,
        settings: Settings,
        *,
        build: Callable[[Settings], Pipeline],
        on_processed: Callable[[Sequence[tuple[int, str]]], None],
        on_referral: Callable[[ReferralNews], None],
    ) -> PipelineRunner: ...


@dataclass
class Gateway:
    settings: Settings
    engine: Engine
    keyring: KeyRing
    inbox: InboxStore
    attendances: AttendanceStore
    sites: SiteDirectory
    valuesets: ValueSetLibrary
    pipeline: Pipeline | None  # None when the pipeline runs in a process of its own
    intake: IntakeWriter
    worker: PipelineRunner
    watch: ProcessingWatch
    clock: Clock
    fhir: FhirChannel
    audit: AuditStore
    sharing: Sharing
    feed_watch: FeedWatch
    onward: OnwardReferrals
    # hears the referral news (a listener), assignments and the feed-silence watch; sends on
    # its thread
    alerts: Alerts
    vapid_public_key: str  # what browsers subscribe to Web Push with
    # notes to and from the other instances on one PostgreSQL (the live queue); None on SQLite
    notes: NoteChannel | None = None
    # (referral id, what happened): the pipeline's news and the escalation job's
    referral_listeners: list[Callable[[ReferralNews], None]] = field(default_factory=list)
    # each processed batch's final message states, after `watch` has them (serve passes them
    # on to its MLLP listener process)
    processed_listeners: list[Callable[[Sequence[tuple[int, str]]], None]] = field(
        default_factory=list
    )
    _started: bool = False

    def start(self) -> Gateway:
        if not self._started:
            self.alerts.start()
            self.intake.start()
            self.fhir.start()
            self.worker.start()
            self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self.intake.stop()
            self.fhir.stop()
            self.worker.stop()
            self.alerts.stop()
            self._started = False
        if self.notes is not None:
            self.notes.stop()
        self.engine.dispose()
        if self.pipeline is not None:
            self.pipeline.engine.dispose()
        self.inbox.engine.dispose()

    def local_pipeline(self) -> Pipeline:
        """The pipeline in this process (commands that drain it themselves: replay,
        reprocess); a gateway built for `serve` has none."""
        if self.pipeline is None:
            raise RuntimeError("this gateway's pipeline runs in a process of its own")
        return self.pipeline

    def processed(self, states: Sequence[tuple[int, str]]) -> None:
        """The pipeline finished a batch: resolve the watch's waiters, then tell the
        listeners. Never raises."""
        self.watch.completed(states)
        for listener in list(self.processed_listeners):
            try:
                listener(states)
            except Exception as exc:  # a listener must never stop the pipeline
                log.warning("processed-state listener failed: %s", type(exc).__name__)

    def announce(self, news: ReferralNews) -> None:
        """Tell the listeners (the live queue) after a commit. Never raises."""
        for listener in list(self.referral_listeners):
            try:
                listener(news)
            except Exception as exc:  # a listener must never stop the pipeline
                log.warning("referral listener failed: %s", type(exc).__name__)


def _site_file(settings: Settings) -> dict[str, Any]:
    if not settings.config_file:
        return {}
    path = Path(settings.config_file)
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"RG_CONFIG_FILE points at {path}, which does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def load_sites(settings: Settings) -> SiteDirectory:
    return parse_site_config(_site_file(settings))


def load_silence_patterns(settings: Settings) -> SilencePatterns:
    """Each site's `[sites.X.feed_silence]` pattern, in the zone of RG_TIMEZONE."""
    try:
        return parse_silence_patterns(_site_file(settings), zone=ZoneInfo(settings.timezone))
    except DomainError as exc:
        raise ConfigError(str(exc)) from None


def build_pipeline(
    settings: Settings,
    engine: Engine,
    keyring: KeyRing,
    clock: Clock,
    *,
    on_referral: Callable[[ReferralNews], None] | None = None,
    on_processed: Callable[[Sequence[tuple[int, str]]], None] | None = None,
) -> Pipeline:
    """The pipeline on `engine`: in the gateway's thread or in its own process."""
    decoders: dict[str, Decoder] = {
        HL7_CHANNEL: decode_hl7,
        FHIR_CHANNEL: make_fhir_decoder(FhirResourceStore(engine, keyring)),
    }
    return Pipeline(
        engine,
        InboxStore(engine, keyring),
        AttendanceStore(keyring),
        decoders,
        load_sites(settings),
        bundled_valuesets(),
        clock,
        batch_size=settings.processing_batch,
        on_referral=on_referral,
        on_processed=on_processed,
    )


def build_process_pipeline(settings: Settings) -> Pipeline:
    """The pipeline as a process of its own builds it: its own engine (no flush per commit),
    the key ring file (never created here) and the system clock."""
    engine = make_derived_engine(settings.resolved_database_url)
    keyring = open_keyring(engine, settings.resolved_keyring_file, create=False, now=system_clock())
    return build_pipeline(settings, engine, keyring, system_clock)


def build_gateway(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    keyring: KeyRing | None = None,
    engine: Engine | None = None,
    create_keyring: bool = True,
    pipeline_process: PipelineProcessFactory | None = None,
    onward_sender: Sender | None = None,
) -> Gateway:
    """Everything but the listeners: storage (migrated), key ring, intake, pipeline.

    With `pipeline_process` (what `serve` hands in) the pipeline runs in a process of its
    own, built there by `build_process_pipeline` from the same settings, the key ring file
    and the system clock; without it, on a thread of this process."""
    injected = keyring is not None or engine is not None or clock is not system_clock
    if pipeline_process is not None and injected:
        raise ValueError("a pipeline process builds its own engine, key ring and clock")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    pipeline_engine: Engine | None
    if engine is None:
        engine = make_engine(
            settings.resolved_database_url, sqlite_synchronous=settings.sqlite_synchronous
        )
        # the pipeline's effects can be recomputed from the durable inbox: no flush per commit;
        # its connection also does the WAL checkpoints, so the acknowledging one never waits
        # (a pipeline process makes its own)
        pipeline_engine = (
            None
            if pipeline_process is not None
            else make_derived_engine(settings.resolved_database_url)
        )
        intake_engine: Engine | None = make_engine(
            settings.resolved_database_url,
            sqlite_synchronous=settings.sqlite_synchronous,
            sqlite_checkpoints=False,
        )
    else:
        pipeline_engine, intake_engine = engine, None
    migrate(engine, keyring=keyring or migration_keyring(settings.resolved_keyring_file))
    # a missing ring is never replaced while the database holds ciphertexts; a wrong ring
    # fails on the canary (KeyRingError, saying what to do)
    try:
        if keyring is None:
            keyring = open_keyring(
                engine, settings.resolved_keyring_file, create=create_keyring, now=clock()
            )
        else:
            check_keyring(engine, keyring, now=clock())
    except Exception:
        engine.dispose()
        if pipeline_engine is not None:
            pipeline_engine.dispose()
        if intake_engine is not None:
            intake_engine.dispose()
        raise
    audit = AuditStore(anchor_for(settings.data_dir))
    inbox = InboxStore(intake_engine or engine, keyring)
    fhir = build_fhir_channel(  # FHIR writes acknowledge too: the durable intake connection
        intake_engine or engine, keyring, clock, sources=load_fhir_sources(settings.config_file)
    )
    holder: dict[str, Gateway] = {}
    watch = ProcessingWatch(inbox.state_of)

    def announce(news: ReferralNews) -> None:
        holder["gw"].announce(news)

    def processed(states: Sequence[tuple[int, str]]) -> None:
        holder["gw"].processed(states)

    pipeline: Pipeline | None = None
    worker: PipelineRunner
    if pipeline_process is not None:
        worker = pipeline_process(
            settings,
            build=build_process_pipeline,
            on_processed=processed,
            on_referral=announce,
        )
        sites, valuesets = load_sites(settings), bundled_valuesets()
        attendances = AttendanceStore(keyring)
    else:
        assert pipeline_engine is not None
        pipeline = build_pipeline(
            settings,
            pipeline_engine,
            keyring,
            clock,
            on_referral=announce,
            on_processed=processed,
        )
        worker = PipelineWorker(pipeline, gather=settings.processing_gather_ms / 1000)
        sites, valuesets, attendances = pipeline.sites, pipeline.valuesets, pipeline.attendances
    alerts, vapid_public_key = build_alerts(settings, engine, clock)
    intake = IntakeWriter(inbox.store_batch, on_committed=worker.wake)
    sharing = Sharing(engine, keyring, audit, assignments=assigned_to)
    onward = build_onward(
        settings, engine, keyring, sharing, clock, announce=announce, sender=onward_sender
    )
    fhir.writer.on_committed = worker.wake
    gateway = Gateway(
        settings=settings,
        engine=engine,
        keyring=keyring,
        inbox=inbox,
        attendances=attendances,
        sites=sites,
        valuesets=valuesets,
        pipeline=pipeline,
        intake=intake,
        worker=worker,
        watch=watch,
        clock=clock,
        fhir=fhir,
        audit=audit,
        sharing=sharing,
        # the feed-silence alarm goes out through the alert channels (raised and cleared)
        feed_watch=FeedWatch(
            engine, load_silence_patterns(settings), clock, listeners=[alerts.on_feed_change]
        ),
        onward=onward,
        alerts=alerts,
        vapid_public_key=vapid_public_key,
        notes=NoteChannel(engine, "rg_queue_events")
        if engine.dialect.name == "postgresql"
        else None,
    )
    gateway.referral_listeners.append(alerts.on_referral)
    holder["gw"] = gateway
    return gateway
