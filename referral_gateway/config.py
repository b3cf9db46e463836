"""Settings: defaults, overridden by `RG_*` environment variables, overridden by flags.

Nothing reads the environment at import time: `Settings.from_env()` is called once by the
command line, and tests build `Settings(...)` directly.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""  # empty: SQLite file under data_dir
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    mllp_host: str = "127.0.0.1"
    mllp_port: int = 2575
    mllp_max_connections: int = 64
    mllp_max_connections_per_address: int = 16  # one remote address's share of the slots
    mllp_idle_timeout: float = 300.0  # seconds without a complete frame before closing
    mllp_frame_timeout: float = 60.0  # seconds from a frame's start block to its end block
    mllp_max_frame_bytes: int = 4 * 1024 * 1024
    mllp_tls_cert: str = ""
    mllp_tls_key: str = ""
    mllp_tls_client_ca: str = ""  # PEM of the CA senders' client certificates must chain to
    keyring_file: str = ""  # empty: <data_dir>/keyring.json
    config_file: str = ""  # site configuration (TOML)
    sqlite_synchronous: str = "FULL"
    processing_batch: int = 25
    processing_gather_ms: int = 20  # after a wake-up, let this long's messages gather first
    pipeline_process: bool = True  # `serve` runs the pipeline in a second process (two cores)
    ops_token: str = field(default="", repr=False)  # bearer token for /api/ops/* (empty: off)
    retention_identifiable_days: int = 7  # declined, not approached, withdrawn, stale, voided
    retention_raw_message_days: int = 30  # raw payloads, counted from receipt once processed
    retention_adult_years: int = 8  # consented, 18+ when support ended
    retention_interval_minutes: int = 60  # how often the retention jobs run
    programme_endpoint: str = ""  # URL the monthly report is pushed to (empty: not pushed)
    programme_key_id: str = ""  # key id the programme hub knows this site's secret by
    programme_secret: str = field(default="", repr=False)  # shared HMAC secret, >= 32 chars
    hub_keys_file: str = ""  # TOML of site keys: set to also run as the programme hub
    # the youth workers' pages (`web.options.WebOptions.from_settings`) and their jobs
    cookie_secure: bool = False  # Secure cookies and HSTS (also Secure on any https request)
    # addresses or networks of reverse proxies whose X-Forwarded-For/-Proto are believed
    # (comma-separated); empty: none, every request is from its socket's peer
    trusted_proxies: str = ""
    session_idle_minutes: int = 30
    session_lifetime_hours: int = 12
    escalate_after_minutes: int = 20  # unclaimed this long: escalated to the team lead
    escalation_interval_seconds: int = 30  # how often the escalation job looks
    timezone: str = "Europe/London"  # how times are shown on the pages
    feed_silence_interval_seconds: int = 60  # how often the feed-silence watch looks
    job_takeover_seconds: int = 60  # how often an instance looks for a job a dead one left
    log_format: str = "text"  # "text" or "json" (one JSON object a line)
    # onward referrals (services.onward): the outbox worker
    outbox_interval_seconds: float = 5.0  # how often the worker looks for due deliveries
    outbox_backoff_seconds: float = 5.0  # the first retry's wait; it doubles, capped at 1 h
    outbox_max_attempts: int = 10  # then the delivery is dead-lettered
    # alerts beyond the open tab (`wiring.alerts`): Web Push, e-mail, the team-chat webhook
    public_url: str = ""  # base of the links in alerts (empty: http://<http_host>:<http_port>)
    alert_batch_seconds: float = 30.0  # arrivals within this window become one alert (0: off)
    alert_retry_attempts: int = 6  # attempts per delivery before it is given up
    alert_retry_first_seconds: float = 5.0  # first wait before a retry; doubles, at most 10 min
    alert_webhook_url: str = ""  # team-chat webhook (JSON POST); per site: [sites.X.alerts]
    alert_webhook_secret: str = field(default="", repr=False)  # HMAC-SHA256 signs the body
    vapid_subject: str = ""  # contact in the VAPID claims (mailto: or https:)
    smtp_host: str = ""  # SMTP relay for alert e-mail (empty: no e-mail)
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_from: str = ""  # the From address of alert e-mail
    smtp_starttls: bool = True  # STARTTLS before credentials (turn off only on loopback)
    smtp_ca_file: str = ""  # PEM of a private CA the relay's certificate chains to

    def __post_init__(self) -> None:
        for name in (
            "session_idle_minutes",
            "session_lifetime_hours",
            "escalate_after_minutes",
            "escalation_interval_seconds",
            "job_takeover_seconds",
            "feed_silence_interval_seconds",
            "outbox_max_attempts",
            "alert_retry_attempts",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"RG_{name.upper()} must be at least 1")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"RG_LOG_FORMAT must be text or json, got {self.log_format!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"RG_TIMEZONE {self.timezone!r} is not a known time zone") from None
        self.trusted_proxy_networks  # noqa: B018  (refuses a malformed list now)

    @property
    def trusted_proxy_networks(self) -> tuple[str, ...]:
        """RG_TRUSTED_PROXIES as networks (`127.0.0.1` -> `127.0.0.1/32`)."""
        networks = []
        for item in self.trusted_proxies.replace(",", " ").split():
            try:
                networks.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise ConfigError(
                    f"RG_TRUSTED_PROXIES: {item!r} is not an IP address or network"
                ) from None
        return tuple(networks)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gateway.db').resolve()}"

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    @property
    def resolved_vapid_file(self) -> Path:
        """The VAPID key pair, beside the key ring."""
        return self.resolved_keyring_file.parent / "vapid_private.pem"

    @property
    def resolved_keyring_file(self) -> Path:
        return Path(self.keyring_file) if self.keyring_file else self.data_dir / "keyring.json"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = "RG_" + f.name.upper()
            if key in env:
                values[f.name] = _coerce(f.name, env[key], f.type)
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> Settings:
        given = {k: v for k, v in overrides.items() if v is not None}
        coerced = {}
        types = {f.name: f.type for f in fields(self)}
        for name, value in given.items():
            if name not in types:
                raise ConfigError(f"Unknown setting {name!r}")
            coerced[name] = _coerce(name, value, types[name]) if isinstance(value, str) else value
        return replace(self, **coerced)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _coerce(name: str, raw: str, type_name: object) -> Any:
    kind = str(type_name)
    if kind == "bool":
        word = raw.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ConfigError(f"RG_{name.upper()} must be true or false, got {raw!r}")
        return word in _TRUE
    try:
        if kind == "int":
            return int(raw.strip())
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError:
        noun = {"int": "a whole number", "float": "a number"}.get(kind, kind)
        raise ConfigError(f"RG_{name.upper()} must be {noun}, got {raw!r}") from None
    return raw
