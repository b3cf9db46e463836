"""Settings of the youth workers' web pages.

`WebOptions()` is what production wants; tests pass smaller numbers. `from_env` reads the
`RG_*` variables below once, from the command line's `serve`; nothing reads the environment at
import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from referral_gateway.config import ConfigError
from referral_gateway.domain.accounts import SessionPolicy, ThrottlePolicy

_ENV = {
    "cookie_secure": "RG_COOKIE_SECURE",
    "session_idle_minutes": "RG_SESSION_IDLE_MINUTES",
    "session_lifetime_hours": "RG_SESSION_LIFETIME_HOURS",
    "escalate_after_minutes": "RG_ESCALATE_AFTER_MINUTES",
    "timezone": "RG_TIMEZONE",
}


@dataclass(frozen=True)
class WebOptions:
    cookie_secure: bool = False  # also Secure whenever the request came over https
    session_idle_minutes: int = 30
    session_lifetime_hours: int = 12
    escalate_after_minutes: int = 20  # unclaimed this long: escalated to the team lead
    escalation_check_seconds: float = 30.0
    timezone: str = "Europe/London"  # how times are shown
    page_size: int = 50
    heartbeat_seconds: float = 15.0  # live updates: keep-alive and session re-check
    sign_in_failures_per_username: int = 5
    sign_in_failures_per_address: int = 20
    sign_in_window_minutes: int = 15
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"RG_TIMEZONE {self.timezone!r} is not a known time zone") from None
        for name in ("session_idle_minutes", "session_lifetime_hours", "page_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def escalate_after(self) -> timedelta:
        return timedelta(minutes=self.escalate_after_minutes)

    @property
    def session_policy(self) -> SessionPolicy:
        return SessionPolicy(
            idle=timedelta(minutes=self.session_idle_minutes),
            lifetime=timedelta(hours=self.session_lifetime_hours),
        )

    @property
    def throttle_policy(self) -> ThrottlePolicy:
        return ThrottlePolicy(
            failures_per_username=self.sign_in_failures_per_username,
            failures_per_address=self.sign_in_failures_per_address,
            window=timedelta(minutes=self.sign_in_window_minutes),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebOptions:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        kinds = {f.name: f.type for f in fields(cls)}
        for name, key in _ENV.items():
            if key not in env:
                continue
            raw = env[key].strip()
            kind = str(kinds[name])
            if kind == "bool":
                values[name] = raw.lower() in {"1", "true", "yes", "on"}
            elif kind == "int":
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise ConfigError(f"{key} must be a whole number, got {raw!r}") from None
            else:
                values[name] = raw
        return replace(cls(), **values)
