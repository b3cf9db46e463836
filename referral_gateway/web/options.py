"""Settings of the youth workers' web pages.

`WebOptions.from_settings(settings)` is what `serve` uses: the operator's part (cookies,
sessions, escalation time, time zone) comes from `referral_gateway.config.Settings`, read once
from the `RG_*` environment like every other setting; the rest are fixed here. Tests build
`WebOptions(...)` with smaller numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from referral_gateway.config import ConfigError, Settings
from referral_gateway.domain.accounts import SessionPolicy, ThrottlePolicy


@dataclass(frozen=True)
class WebOptions:
    cookie_secure: bool = False  # also Secure whenever the request came over https
    session_idle_minutes: int = 30
    session_lifetime_hours: int = 12
    session_warning_seconds: int = 180  # the page warns this long before the idle timeout
    escalate_after_minutes: int = 20  # shown as escalated; the job in `jobs` marks them
    timezone: str = "Europe/London"  # how times are shown
    prune_seconds: float = 300.0  # forgetting old sign-in attempts and sessions
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
        for name in (
            "session_idle_minutes",
            "session_lifetime_hours",
            "escalate_after_minutes",
            "page_size",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")

    @classmethod
    def from_settings(cls, settings: Settings, **fixed: Any) -> WebOptions:
        """The pages' options from the gateway's settings; `fixed` sets the others."""
        return cls(
            cookie_secure=settings.cookie_secure,
            session_idle_minutes=settings.session_idle_minutes,
            session_lifetime_hours=settings.session_lifetime_hours,
            escalate_after_minutes=settings.escalate_after_minutes,
            timezone=settings.timezone,
            **fixed,
        )

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
