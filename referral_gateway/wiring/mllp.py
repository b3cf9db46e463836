"""Where the HL7 v2 side is built from the settings: the senders, the intake (on a group-commit
writer, with the processing watch for application ACKs), the listener and its TLS.

`serve` (whose listener runs in a process of its own: `build_listener_process`), `replay` and
the tests that run a whole gateway all build it here, so the sender checks and the listener's
limits are the same everywhere.
"""

from __future__ import annotations

import ssl
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adapters.hl7.channel import Hl7Intake
from adapters.hl7.errors import SenderConfigError
from adapters.hl7.listener_thread import MllpListenerThread
from adapters.hl7.mllp import MllpLimits, MllpServer
from adapters.hl7.senders import SenderDirectory, parse_senders
from referral_gateway.config import ConfigError, Settings
from referral_gateway.domain.clock import system_clock
from referral_gateway.services.completion import ProcessingWatch
from referral_gateway.services.intake import IntakeWriter
from referral_gateway.storage.database import make_engine
from referral_gateway.storage.inbox import InboxStore
from referral_gateway.storage.keystore import open_keyring
from referral_gateway.wiring.gateway import Gateway


def load_senders(config_file: str | Path | None) -> SenderDirectory:
    """The `[sites.*.mllp]` tables of the site configuration file (none without a file)."""
    if not config_file:
        return SenderDirectory()
    try:
        data = tomllib.loads(Path(config_file).read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return SenderDirectory()  # the site configuration's own loader reports it
    try:
        return parse_senders(data)
    except SenderConfigError as exc:
        raise ConfigError(str(exc)) from None


def build_hl7_intake(settings: Settings, gateway: Gateway) -> Hl7Intake:
    return Hl7Intake(
        gateway.intake,
        gateway.clock,
        watch=gateway.watch,
        senders=load_senders(settings.config_file),
    )


def mllp_limits(settings: Settings) -> MllpLimits:
    return MllpLimits(
        max_connections=settings.mllp_max_connections,
        max_connections_per_address=settings.mllp_max_connections_per_address,
        idle_timeout_s=settings.mllp_idle_timeout,
        frame_timeout_s=settings.mllp_frame_timeout,
        max_frame_bytes=settings.mllp_max_frame_bytes,
    )


def mllp_tls(settings: Settings) -> ssl.SSLContext | None:
    """TLS for the MLLP port when a certificate is set; with `RG_MLLP_TLS_CLIENT_CA`,
    senders must present a client certificate signed by it (its subject can then name
    the sender: `tls_subjects`)."""
    if not settings.mllp_tls_cert:
        return None
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(settings.mllp_tls_cert, settings.mllp_tls_key or None)
    if settings.mllp_tls_client_ca:
        tls.load_verify_locations(settings.mllp_tls_client_ca)
        tls.verify_mode = ssl.CERT_REQUIRED
    return tls


def build_mllp_server(
    settings: Settings,
    hl7: Hl7Intake,
    *,
    host: str | None = None,
    port: int | None = None,
    limits: MllpLimits | None = None,
    on_replied: Callable[[float], None] | None = None,
) -> MllpServer:
    """The listener `serve` runs; tests may move it (`host`, `port`) or tighten `limits`."""
    return MllpServer(
        hl7,
        host=settings.mllp_host if host is None else host,
        port=settings.mllp_port if port is None else port,
        limits=mllp_limits(settings) if limits is None else limits,
        ssl_context=mllp_tls(settings),
        on_oversize=hl7.oversize_reply,
        on_replied=on_replied,
    )


@dataclass
class ListenerProcess:
    """What the MLLP listener's own process runs (`entrypoints.mllp_process`): the listener,
    the watch its application ACKs wait on (fed with the pipeline's states through the parent)
    and `close`, which stops the intake's writer and lets go of the database."""

    listener: MllpListenerThread
    watch: ProcessingWatch
    close: Callable[[], None]


def build_listener_process(
    settings: Settings,
    *,
    on_committed: Callable[[], None],
    on_replied: Callable[[float], None] | None = None,
) -> ListenerProcess:
    """The listener and an intake of its own, as its own process builds them: its own durable
    connection (no WAL checkpoints on it, as for serve's intake), the key ring file (never
    created here: serve made or checked it before starting this process) and the system
    clock. `on_committed` runs after each intake commit (serve wakes the pipeline)."""
    engine = make_engine(
        settings.resolved_database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        sqlite_checkpoints=False,
    )
    try:
        keyring = open_keyring(
            engine, settings.resolved_keyring_file, create=False, now=system_clock()
        )
        inbox = InboxStore(engine, keyring)
        writer = IntakeWriter(inbox.store_batch, on_committed=on_committed)
        writer.start()
    except Exception:
        engine.dispose()
        raise
    watch = ProcessingWatch(inbox.state_of)
    hl7 = Hl7Intake(writer, system_clock, watch=watch, senders=load_senders(settings.config_file))

    def close() -> None:
        writer.stop()
        engine.dispose()

    try:
        server = build_mllp_server(settings, hl7, on_replied=on_replied)
    except Exception:
        close()
        raise
    return ListenerProcess(MllpListenerThread(server, on_stop=hl7.close), watch, close)
