"""Staff accounts wired from the web options: the gateway's pages and the standalone hub
sign people in with the same account model, password hashing, throttle and sessions."""

from __future__ import annotations

from argon2 import PasswordHasher
from sqlalchemy.engine import Engine

from referral_gateway.storage.accounts import AccountStore
from referral_gateway.storage.audit_store import AuditStore
from referral_gateway.web.options import WebOptions


def account_store(
    engine: Engine, options: WebOptions, audit: AuditStore, *, hasher: PasswordHasher | None = None
) -> AccountStore:
    """Staff accounts and sessions with the options' password hashing, sign-in throttle and
    session limits: the gateway's, and the standalone hub's (the same account model)."""
    return AccountStore(
        engine,
        hasher=hasher
        or PasswordHasher(
            time_cost=options.argon2_time_cost,
            memory_cost=options.argon2_memory_kib,
            parallelism=options.argon2_parallelism,
        ),
        throttle=options.throttle_policy,
        sessions=options.session_policy,
        audit=audit,
    )
