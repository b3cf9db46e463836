"""Staff accounts, web sessions and sign-in attempts.

Every change to an account is written in the same transaction as its audit entry (and any
notices to the site's team leads), so no change escapes the trail. Passwords are stored
only as Argon2id hashes (memory-hard). A session is a random token in
the user's cookie; the table keeps its SHA-256, so a copy of the database opens no session.
Each session carries its own CSRF token, checked on every form post.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Column, Index, Table, delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from consent.audit import AuditAction
from consent.policy import Role
from referral_gateway.domain.accounts import (
    AccountChange,
    NewAccount,
    NoticeKind,
    SessionPolicy,
    SessionState,
    StaffUser,
    ThrottleDecision,
    ThrottlePolicy,
    account_subject,
    actor_label,
    change_reason,
    needs_touch,
    normalise_username,
    notice_text,
    session_state,
    sign_in_throttle,
    sites_gained,
)
from referral_gateway.storage.audit_store import AuditStore
from referral_gateway.storage.site_notices import SiteNotice, add_notices, notices_for_sites
from referral_gateway.storage.types import UtcDateTime
from referral_gateway.storage.unit_of_work import UnitOfWork, unit_of_work


class StaffUserRow(SQLModel, table=True):
    __tablename__ = "staff_user"

    id: str = Field(primary_key=True, max_length=36)
    username: str = Field(max_length=63, unique=True)
    display_name: str = Field(default="", max_length=80)
    password_hash: str = Field(max_length=256)
    role: str = Field(max_length=20)
    sites_json: str = "[]"
    active: bool = True
    must_change_password: bool = False
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
    USERS.c.must_change_password,
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
class NoticeView:
    notice: SiteNotice
    text: str


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
        audit: AuditStore | None = None,
    ) -> None:
        self.engine = engine
        self.hasher = hasher or PasswordHasher()
        self.throttle_policy = throttle or ThrottlePolicy()
        self.session_policy = sessions or SessionPolicy()
        self.audit = audit or AuditStore()
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

    def add_user(
        self,
        account: NewAccount,
        password: str,
        *,
        by: str,
        now: datetime,
        must_change_password: bool = True,
    ) -> StaffUser:
        """Create an account. `by`: who creates it (a user id, `cli:<OS user>`, or
        `system:<job>`). Its password was chosen by someone else, so by default it must be
        changed at the first sign-in."""
        user = StaffUser(
            str(uuid.uuid4()),
            account.username,
            account.role,
            account.sites,
            account.display_name,
            must_change_password=must_change_password,
        )
        with unit_of_work(self.engine) as uow:
            uow.conn.execute(
                insert(USERS).values(
                    id=user.id,
                    username=user.username,
                    display_name=user.display_name,
                    password_hash=self.hasher.hash(password),
                    role=user.role.value,
                    sites_json=json.dumps(sorted(user.sites)),
                    active=True,
                    must_change_password=must_change_password,
                    created_at=now,
                    password_changed_at=now,
                )
            )
            self._record(uow, AccountChange.CREATED, None, user, by=by, now=now)
        return user

    def set_password(
        self, user_id: str, password: str, *, by: str, now: datetime, keep_session: str = ""
    ) -> None:
        """Set a new password and end the user's sessions (but `keep_session`, an id hash).
        Set by the user (`by` is their id) it is theirs; set by anyone else it is a reset,
        and must be changed at the next sign-in."""
        own = by == user_id
        with unit_of_work(self.engine) as uow:
            before = self._locked(uow, user_id)
            uow.conn.execute(
                update(USERS)
                .where(USERS.c.id == user_id)
                .values(
                    password_hash=self.hasher.hash(password),
                    password_changed_at=now,
                    must_change_password=not own,
                )
            )
            uow.conn.execute(
                update(SESSIONS)
                .where(
                    SESSIONS.c.user_id == user_id,
                    SESSIONS.c.ended_at.is_(None),
                    SESSIONS.c.id_hash != keep_session,
                )
                .values(ended_at=now)
            )
            after = replace(before, must_change_password=not own)
            change = AccountChange.PASSWORD_CHANGED if own else AccountChange.PASSWORD_RESET
            self._record(uow, change, before, after, by=by, now=now)

    def set_active(self, user_id: str, active: bool, *, by: str, now: datetime) -> None:
        with unit_of_work(self.engine) as uow:
            before = self._locked(uow, user_id)
            if before.active == active:
                return
            uow.conn.execute(update(USERS).where(USERS.c.id == user_id).values(active=active))
            if not active:
                uow.conn.execute(
                    update(SESSIONS)
                    .where(SESSIONS.c.user_id == user_id, SESSIONS.c.ended_at.is_(None))
                    .values(ended_at=now)
                )
            change = AccountChange.ENABLED if active else AccountChange.DISABLED
            self._record(uow, change, before, replace(before, active=active), by=by, now=now)

    def set_access(
        self,
        user_id: str,
        role: Role,
        sites: frozenset[str],
        *,
        by: str,
        now: datetime,
        display_name: str | None = None,
    ) -> None:
        """Change an account's role and sites (checked with `check_access`) and, when given,
        its display name (`check_display_name`); each change that happens is its own audit
        entry."""
        with unit_of_work(self.engine) as uow:
            before = self._locked(uow, user_id)
            values: dict[str, object] = {
                "role": role.value,
                "sites_json": json.dumps(sorted(sites)),
            }
            if display_name is not None:
                values["display_name"] = display_name.strip()
            uow.conn.execute(update(USERS).where(USERS.c.id == user_id).values(**values))
            current = before
            if display_name is not None and display_name.strip() != before.display_name:
                changed = replace(current, display_name=display_name.strip())
                self._record(uow, AccountChange.NAME_CHANGED, current, changed, by=by, now=now)
                current = changed
            if role is not before.role:
                changed = replace(current, role=role)
                self._record(uow, AccountChange.ROLE_CHANGED, current, changed, by=by, now=now)
                current = changed
            if sites != before.sites:
                changed = replace(current, sites=sites)
                self._record(uow, AccountChange.SITES_CHANGED, current, changed, by=by, now=now)

    def _locked(self, uow: UnitOfWork, user_id: str) -> StaffUser:
        """The account as it is, inside a unit of work (locked on PostgreSQL)."""
        stmt = select(USERS).where(USERS.c.id == user_id)
        if uow.dialect == "postgresql":
            stmt = stmt.with_for_update()
        row = uow.conn.execute(stmt).first()
        if row is None:
            raise LookupError("no such account")
        return _user(row)

    def _record(
        self,
        uow: UnitOfWork,
        change: AccountChange,
        before: StaffUser | None,
        after: StaffUser,
        *,
        by: str,
        now: datetime,
    ) -> None:
        """The audit entry of one change, and the notices to the team leads of each site
        the account gains (or whose account was reset by someone else)."""
        self.audit.append(
            uow,
            at=now,
            actor=by,
            action=AuditAction.ACCOUNT_CHANGE,
            subject=account_subject(after.id),
            why=change_reason(change, before, after),
        )
        if change is AccountChange.PASSWORD_RESET:
            kind, sites = NoticeKind.PASSWORD_RESET, sites_gained(None, after)
        else:
            kind, sites = NoticeKind.ACCESS_GAINED, sites_gained(before, after)
        add_notices(
            uow.conn,
            sites=sites,
            kind=kind,
            account_id=after.id,
            role=after.role.value,
            actor=by,
            now=now,
        )

    def notices_for(self, user: StaffUser, *, limit: int = 20) -> list[NoticeView]:
        """The notices of the user's sites they have not marked as read, newest first."""
        with self.engine.connect() as conn:
            found = notices_for_sites(conn, user.sites, unread_by=user.id, limit=limit)
        names = self.names([n.account_id for n in found] + [n.actor for n in found])
        return [
            NoticeView(
                n,
                notice_text(
                    n.kind,
                    site=n.site,
                    account=names.get(n.account_id, "an account"),
                    role=n.role,
                    actor=actor_label(n.actor, names),
                ),
            )
            for n in found
        ]

    def verify_password(self, user_id: str, password: str) -> bool:
        with self.engine.connect() as conn:
            stored = conn.execute(
                select(USERS.c.password_hash).where(USERS.c.id == user_id)
            ).scalar()
        return self._verify(stored or self._dummy_hash, password) and stored is not None

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

    def current(
        self, token: str, *, now: datetime, touch: bool = True, pending_ok: bool = False
    ) -> CurrentSession | None:
        """The session's user if the session is active (and the user still is); touching it
        keeps it from idling out. A user who must still change their password has no session
        here unless `pending_ok` (only the change-password page asks for that)."""
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
        if row.must_change_password and not pending_ok:
            return None
        if touch and needs_touch(row.last_seen_at, now=now, policy=self.session_policy):
            with self.engine.begin() as conn:
                conn.execute(
                    update(SESSIONS).where(SESSIONS.c.id_hash == id_hash).values(last_seen_at=now)
                )
        return CurrentSession(_user(row), row.csrf_token, id_hash)

    def keep_alive(self, token: str, *, now: datetime) -> CurrentSession | None:
        """The person asked to stay signed in: the active session's idle time starts again
        now (whatever `touch_every` says). None when it has already ended."""
        session = self.current(token, now=now, touch=False, pending_ok=True)
        if session is not None:
            with self.engine.begin() as conn:
                conn.execute(
                    update(SESSIONS)
                    .where(SESSIONS.c.id_hash == session.id_hash)
                    .values(last_seen_at=now)
                )
        return session

    def session_owner(self, token: str) -> str | None:
        """Whose session this token opened, active or idled out, unless it was signed out:
        what a form posted after its session ended is kept for."""
        if not token or len(token) > 128:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(SESSIONS.c.user_id).where(
                    SESSIONS.c.id_hash == session_hash(token), SESSIONS.c.ended_at.is_(None)
                )
            ).first()
        return str(row.user_id) if row is not None else None

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
        must_change_password=bool(m["must_change_password"]),
    )
