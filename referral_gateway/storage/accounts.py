"""Staff accounts, web sessions and sign-in attempts.

Passwords are stored only as Argon2id hashes (memory-hard). A session is a random token in
the user's cookie; the table keeps its SHA-256, so a copy of the database opens no session.
Each session carries its own CSRF token, checked on every form post.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Column, Index, Table, delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from consent.policy import Role
from referral_gateway.domain.accounts import (
    NewAccount,
    SessionPolicy,
    SessionState,
    StaffUser,
    ThrottleDecision,
    ThrottlePolicy,
    needs_touch,
    normalise_username,
    session_state,
    sign_in_throttle,
)
from referral_gateway.storage.types import UtcDateTime


class StaffUserRow(SQLModel, table=True):
    __tablename__ = "staff_user"

    id: str = Field(primary_key=True, max_length=36)
    username: str = Field(max_length=63, unique=True)
    display_name: str = Field(default="", max_length=80)
    password_hash: str = Field(max_length=256)
    role: str = Field(max_length=20)
    sites_json: str = "[]"
    active: bool = True
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    password_changed_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class WebSessionRow(SQLModel, table=True):
    __tablename__ = "web_session"

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="staff_user.id", max_length=36, index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


class SignInAttemptRow(SQLModel, table=True):
    __tablename__ = "sign_in_attempt"
    __table_args__ = (
        Index("ix_sign_in_attempt_username_at", "username", "at"),
        Index("ix_sign_in_attempt_address_at", "address", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=100)
    address: str = Field(max_length=64)
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    succeeded: bool


USERS: Table = StaffUserRow.__table__  # type: ignore[attr-defined]
SESSIONS: Table = WebSessionRow.__table__  # type: ignore[attr-defined]
ATTEMPTS: Table = SignInAttemptRow.__table__  # type: ignore[attr-defined]
_USER_COLUMNS = (
    USERS.c.id,
    USERS.c.username,
    USERS.c.role,
    USERS.c.sites_json,
    USERS.c.display_name,
    USERS.c.active,
)


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt: a user, or a refusal a person can act on."""

    user: StaffUser | None
    throttle: ThrottleDecision

    @property
    def message(self) -> str:
        if self.user is not None:
            return ""
        if not self.throttle.allowed:
            return self.throttle.message
        return "The username or password is not right. Check them and try again."


@dataclass(frozen=True)
class OpenSession:
    token: str  # goes in the cookie, never stored
    csrf_token: str


@dataclass(frozen=True)
class CurrentSession:
    user: StaffUser
    csrf_token: str
    id_hash: str


def session_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AccountStore:
    def __init__(
        self,
        engine: Engine,
        *,
        hasher: PasswordHasher | None = None,
        throttle: ThrottlePolicy | None = None,
        sessions: SessionPolicy | None = None,
    ) -> None:
        self.engine = engine
        self.hasher = hasher or PasswordHasher()
        self.throttle_policy = throttle or ThrottlePolicy()
        self.session_policy = sessions or SessionPolicy()
        # verified when the username is unknown, so both paths cost the same time
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    # -- users -----------------------------------------------------------------------------
    def username_taken(self, username: str) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    select(USERS.c.id).where(USERS.c.username == normalise_username(username))
                ).first()
                is not None
            )

    def add_user(self, account: NewAccount, password: str, *, now: datetime) -> StaffUser:
        user_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(
                insert(USERS).values(
                    id=user_id,
                    username=account.username,
                    display_name=account.display_name,
                    password_hash=self.hasher.hash(password),
                    role=account.role.value,
                    sites_json=json.dumps(sorted(account.sites)),
                    active=True,
                    created_at=now,
                    password_changed_at=now,
                )
            )
        return StaffUser(
            user_id, account.username, account.role, account.sites, account.display_name
        )

    def set_password(self, user_id: str, password: str, *, now: datetime) -> None:
        """Set a new password and end the user's sessions."""
        with self.engine.begin() as conn:
            conn.execute(
                update(USERS)
                .where(USERS.c.id == user_id)
                .values(password_hash=self.hasher.hash(password), password_changed_at=now)
            )
            conn.execute(
                update(SESSIONS)
                .where(SESSIONS.c.user_id == user_id, SESSIONS.c.ended_at.is_(None))
                .values(ended_at=now)
            )

    def set_active(self, user_id: str, active: bool, *, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(USERS).where(USERS.c.id == user_id).values(active=active))
            if not active:
                conn.execute(
                    update(SESSIONS)
                    .where(SESSIONS.c.user_id == user_id, SESSIONS.c.ended_at.is_(None))
                    .values(ended_at=now)
                )

    def get(self, user_id: str) -> StaffUser | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(USERS).where(USERS.c.id == user_id)).first()
        return _user(row) if row else None

    def by_username(self, username: str) -> StaffUser | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(USERS).where(USERS.c.username == normalise_username(username))
            ).first()
        return _user(row) if row else None

    def all_users(self) -> list[StaffUser]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(USERS).order_by(USERS.c.username)).all()
        return [_user(r) for r in rows]

    def caseworkers_of(self, site: str) -> list[StaffUser]:
        """Active youth workers and team leads who cover `site`."""
        return [u for u in self.all_users() if u.active and u.works_queue and u.covers(site)]

    def names(self, user_ids: Sequence[str]) -> dict[str, str]:
        if not user_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(USERS.c.id, USERS.c.username, USERS.c.display_name).where(
                    USERS.c.id.in_(set(user_ids))
                )
            ).all()
        return {r.id: r.display_name or r.username for r in rows}

    # -- signing in ------------------------------------------------------------------------
    def authenticate(self, username: str, password: str, *, address: str, now: datetime) -> SignIn:
        name = normalise_username(username)[:100]
        address = address[:64]
        throttle = self._throttle(name, address, now)
        if not throttle.allowed:
            return SignIn(None, throttle)
        with self.engine.connect() as conn:
            row = conn.execute(select(USERS).where(USERS.c.username == name)).first()
        ok = self._verify(row.password_hash if row else self._dummy_hash, password)
        user = _user(row) if row is not None and ok and row.active else None
        with self.engine.begin() as conn:
            conn.execute(
                insert(ATTEMPTS).values(
                    username=name, address=address, at=now, succeeded=user is not None
                )
            )
            if (
                user is not None
                and row is not None
                and self.hasher.check_needs_rehash(row.password_hash)
            ):
                conn.execute(
                    update(USERS)
                    .where(USERS.c.id == user.id)
                    .values(password_hash=self.hasher.hash(password))
                )
        if user is None:
            # this failure may be the one that reaches the limit: say so now
            return SignIn(None, self._throttle(name, address, now))
        return SignIn(user, throttle)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def _throttle(self, username: str, address: str, now: datetime) -> ThrottleDecision:
        policy = self.throttle_policy
        since = now - policy.window
        with self.engine.connect() as conn:
            last_success = conn.execute(
                select(func.max(ATTEMPTS.c.at)).where(
                    ATTEMPTS.c.username == username,
                    ATTEMPTS.c.succeeded.is_(True),
                    ATTEMPTS.c.at >= since,
                )
            ).scalar()
            user_since = max(since, last_success) if last_success else since
            by_user = (
                conn.execute(
                    select(ATTEMPTS.c.at)
                    .where(
                        ATTEMPTS.c.username == username,
                        ATTEMPTS.c.succeeded.is_(False),
                        ATTEMPTS.c.at >= user_since,
                    )
                    .order_by(ATTEMPTS.c.at.desc())
                    .limit(policy.failures_per_username)
                )
                .scalars()
                .all()
            )
            by_address = (
                conn.execute(
                    select(ATTEMPTS.c.at)
                    .where(
                        ATTEMPTS.c.address == address,
                        ATTEMPTS.c.succeeded.is_(False),
                        ATTEMPTS.c.at >= since,
                    )
                    .order_by(ATTEMPTS.c.at.desc())
                    .limit(policy.failures_per_address)
                )
                .scalars()
                .all()
            )
        return sign_in_throttle(by_user, by_address, now=now, policy=policy)

    # -- sessions --------------------------------------------------------------------------
    def open_session(self, user: StaffUser, *, now: datetime) -> OpenSession:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                insert(SESSIONS).values(
                    id_hash=session_hash(token),
                    user_id=user.id,
                    csrf_token=csrf,
                    created_at=now,
                    last_seen_at=now,
                )
            )
        return OpenSession(token, csrf)

    def current(self, token: str, *, now: datetime, touch: bool = True) -> CurrentSession | None:
        """The session's user if the session is active (and the user still is); touching it
        keeps it from idling out."""
        if not token or len(token) > 128:
            return None
        id_hash = session_hash(token)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    SESSIONS.c.created_at.label("session_created_at"),
                    SESSIONS.c.last_seen_at,
                    SESSIONS.c.ended_at,
                    SESSIONS.c.csrf_token,
                    *_USER_COLUMNS,
                )
                .join(USERS, USERS.c.id == SESSIONS.c.user_id)
                .where(SESSIONS.c.id_hash == id_hash)
            ).first()
        if row is None:
            return None
        state = session_state(
            created_at=row.session_created_at,
            last_seen_at=row.last_seen_at,
            ended=row.ended_at is not None,
            now=now,
            policy=self.session_policy,
        )
        if state is not SessionState.ACTIVE or not row.active:
            return None
        if touch and needs_touch(row.last_seen_at, now=now, policy=self.session_policy):
            with self.engine.begin() as conn:
                conn.execute(
                    update(SESSIONS).where(SESSIONS.c.id_hash == id_hash).values(last_seen_at=now)
                )
        return CurrentSession(_user(row), row.csrf_token, id_hash)

    def end_session(self, token: str, *, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(SESSIONS)
                .where(SESSIONS.c.id_hash == session_hash(token), SESSIONS.c.ended_at.is_(None))
                .values(ended_at=now)
            )

    def prune(self, *, now: datetime) -> None:
        """Forget sign-in attempts and sessions nobody needs any more."""
        policy = self.session_policy
        with self.engine.begin() as conn:
            conn.execute(
                delete(ATTEMPTS).where(ATTEMPTS.c.at < now - 4 * self.throttle_policy.window)
            )
            conn.execute(delete(SESSIONS).where(SESSIONS.c.created_at < now - 2 * policy.lifetime))


def _user(row: object) -> StaffUser:
    m = row._mapping  # type: ignore[attr-defined]
    return StaffUser(
        id=m["id"],
        username=m["username"],
        role=Role(m["role"]),
        sites=frozenset(json.loads(m["sites_json"])),
        display_name=m["display_name"],
        active=bool(m["active"]),
    )
