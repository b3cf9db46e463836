"""Staff accounts: who works the queue, for which sites, and the rules of signing in.

Roles:
- `youth_worker` and `team_lead` are scoped to one or more sites (ODS codes) and work the
  queue of those sites; a team lead also assigns referrals and hears about escalations.
- `programme_lead` sees aggregates only, never a referral (scoped to sites for reports).
- `administrator` manages accounts and reads no referral.

Account changes (creation, role, sites, password, disabling) are each recorded in the audit
trail with who made them: a user id, or `cli:<OS user>` from the command line. An account
created or given a password by someone else must set its own password at its next sign-in:
until then it reaches only the change-password page, so whoever chose the password (an
administrator) cannot use it to read a site's referrals unnoticed. When an account gains
access to a site, or its password is reset by someone else, the site's team leads are told
(a `SiteNotice`, kept in the database for other channels to read later).

Signing in is throttled: too many failures for one username, or from one client address,
within a window refuse further attempts until the oldest failure leaves the window. A
session ends after a period without activity, and in any case after an absolute lifetime.

Pure rules: the clock and the stored history are passed in.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from consent.policy import Actor, Role

ROLE_LABELS = {
    Role.YOUTH_WORKER: "Youth worker",
    Role.TEAM_LEAD: "Team lead",
    Role.PROGRAMME_LEAD: "Programme lead",
    Role.ADMINISTRATOR: "Administrator",
}

CASEWORK_ROLES = frozenset({Role.YOUTH_WORKER, Role.TEAM_LEAD})

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
SITE_PATTERN = re.compile(r"^[A-Z0-9]{3,12}$")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class StaffUser:
    """A signed-in member of staff. Holds no secret: the password hash stays in storage."""

    id: str
    username: str
    role: Role
    sites: frozenset[str]
    display_name: str = ""
    active: bool = True
    must_change_password: bool = False  # until then only the change-password page answers

    @property
    def name(self) -> str:
        return self.display_name or self.username

    def covers(self, site: str) -> bool:
        return site in self.sites

    @property
    def works_queue(self) -> bool:
        return self.role in CASEWORK_ROLES

    @property
    def assigns(self) -> bool:
        return self.role is Role.TEAM_LEAD

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    def as_actor(self) -> Actor:
        """The user as the consent policy sees them."""
        return Actor(user_id=self.id, role=self.role, sites=self.sites)


def normalise_username(username: str) -> str:
    return username.strip().lower()


def normalise_site(site: str) -> str:
    return site.strip().upper()


@dataclass(frozen=True, slots=True)
class AccountProblems:
    """A proposed account that cannot be created as it stands: field -> what to do."""

    problems: Mapping[str, str]

    @property
    def message(self) -> str:
        return " ".join(self.problems.values())


@dataclass(frozen=True, slots=True)
class NewAccount:
    username: str
    role: Role
    sites: frozenset[str]
    display_name: str


def check_access(role: str, sites: Iterable[str]) -> tuple[Role, frozenset[str]] | AccountProblems:
    """A role and its sites, or what to correct."""
    problems: dict[str, str] = {}
    try:
        chosen: Role | None = Role(role)
    except ValueError:
        problems["role"] = "Choose a role: " + ", ".join(r.value for r in Role) + "."
        chosen = None
    site_set = frozenset(normalise_site(s) for s in sites if s.strip())
    bad = sorted(s for s in site_set if not SITE_PATTERN.match(s))
    if bad:
        problems["sites"] = "Site codes are ODS codes of 3 to 12 letters and digits."
    elif chosen is not None and chosen is not Role.ADMINISTRATOR and not site_set:
        problems["sites"] = f"A {ROLE_LABELS[chosen].lower()} needs at least one site."
    if problems or chosen is None:
        return AccountProblems(problems)
    return chosen, site_set


def check_display_name(display_name: str) -> str | None:
    """What is wrong with a staff member's display name, or None."""
    if len(display_name.strip()) > 80:
        return "Keep the display name under 80 characters."
    return None


def unknown_site_problem(unknown: Iterable[str], known: Iterable[str]) -> str:
    """The message refusing site codes the gateway does not know."""
    codes = ", ".join(sorted(unknown))
    return (
        f"The gateway does not know the site {codes}: use a site in the site configuration or "
        f"one the feeds have sent from ({', '.join(sorted(known))})."
    )


def check_new_account(
    username: str,
    role: str,
    sites: Iterable[str],
    password: str,
    *,
    display_name: str = "",
    taken: bool = False,
) -> NewAccount | AccountProblems:
    """A valid account proposal, or what to correct. `taken`: the username exists."""
    problems: dict[str, str] = {}
    name = normalise_username(username)
    if not USERNAME_PATTERN.match(name):
        problems["username"] = (
            "Use 2 to 63 letters, digits, dots, dashes or underscores, starting with a "
            "letter or digit."
        )
    elif taken:
        problems["username"] = "That username is taken; choose another."
    access = check_access(role, sites)
    if isinstance(access, AccountProblems):
        problems.update(access.problems)
        chosen, site_set = None, frozenset[str]()
    else:
        chosen, site_set = access
    password_problem = check_password(password, username=name)
    if password_problem:
        problems["password"] = password_problem
    name_problem = check_display_name(display_name)
    if name_problem:
        problems["display_name"] = name_problem
    if problems or chosen is None:
        return AccountProblems(problems)
    return NewAccount(name, chosen, site_set, display_name.strip())


def check_password(password: str, *, username: str) -> str | None:
    """What is wrong with a new password, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use a password of at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use a password of at most {MAX_PASSWORD_LENGTH} characters."
    if username and username in password.lower():
        return "The password must not contain the username."
    if len(set(password)) < 5:
        return "The password repeats too few characters; choose a less guessable one."
    return None


# -- account changes -------------------------------------------------------------------------


class AccountChange(enum.StrEnum):
    """What happened to an account: the first word of its audit entry's `why`."""

    CREATED = "created"
    ROLE_CHANGED = "role_changed"
    SITES_CHANGED = "sites_changed"
    NAME_CHANGED = "name_changed"  # the display name: the entry holds no name
    # (S105: names of events, not passwords)
    PASSWORD_RESET = "password_reset"  # noqa: S105  (by someone else: change at next sign-in)
    PASSWORD_CHANGED = "password_changed"  # noqa: S105  (set by the account itself)
    DISABLED = "disabled"
    ENABLED = "enabled"


class NoticeKind(enum.StrEnum):
    ACCESS_GAINED = "access_gained"  # an account can now do more at the site than before
    PASSWORD_RESET = "password_reset"  # noqa: S105  (someone else set an account's password)


# how far each role reaches into a site's work (administrators: none)
_REACH = {Role.ADMINISTRATOR: 0, Role.PROGRAMME_LEAD: 1, Role.YOUTH_WORKER: 2, Role.TEAM_LEAD: 3}


def cli_actor(os_user: str) -> str:
    """The audit actor of a change made with `referral-gateway users ...`."""
    return f"cli:{os_user or 'unknown'}"


def account_subject(user_id: str) -> str:
    """The audit subject of an account's changes."""
    return f"account:{user_id}"


def sites_gained(before: StaffUser | None, after: StaffUser) -> frozenset[str]:
    """The sites where `after` can do something that `before` (None: no account) could not:
    all its sites when it is new, enabled again or given a role of wider reach; otherwise
    the sites added."""
    if not after.active or _REACH[after.role] == 0:
        return frozenset()
    if before is None or not before.active or _REACH[after.role] > _REACH[before.role]:
        return after.sites
    return after.sites - before.sites


def change_reason(change: AccountChange, before: StaffUser | None, after: StaffUser) -> str:
    """The audit entry's `why`: fixed words, role values and ODS codes only."""
    if change is AccountChange.CREATED:
        sites = ",".join(sorted(after.sites)) or "-"
        first = "must_change_password" if after.must_change_password else "own_password"
        return f"created role={after.role.value} sites={sites} {first}"
    if change is AccountChange.ROLE_CHANGED and before is not None:
        return f"role_changed {before.role.value}->{after.role.value}"
    if change is AccountChange.SITES_CHANGED and before is not None:
        was = ",".join(sorted(before.sites)) or "-"
        now = ",".join(sorted(after.sites)) or "-"
        return f"sites_changed {was}->{now}"
    if change is AccountChange.PASSWORD_RESET:
        return "password_reset must_change_password"
    return change.value


def actor_label(actor: str, names: Mapping[str, str]) -> str:
    """Who made a change, for people: a user's name, or where else it came from."""
    if actor in names:
        return names[actor]
    if actor.startswith("cli:"):
        return f"the command line (user {actor[4:]})"
    if actor.startswith("system:"):
        return f"the gateway ({actor[7:]})"
    return "an account that no longer exists"


def notice_text(kind: NoticeKind, *, site: str, account: str, role: str, actor: str) -> str:
    """A notice as a sentence for the site's team leads."""
    label = ROLE_LABELS[Role(role)].lower()
    if kind is NoticeKind.PASSWORD_RESET:
        return (
            f"The password of {account} ({label}, {site}) was set by {actor}. They must choose "
            "their own at their next sign-in; if that was not them, tell an administrator."
        )
    return (
        f"{account} can now work at {site} as a {label}, by a change made by {actor}. If you "
        "did not expect this, tell an administrator."
    )


# -- sign-in throttling ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    failures_per_username: int = 5
    failures_per_address: int = 20
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class ThrottleDecision:
    allowed: bool
    retry_after: timedelta = timedelta(0)

    @property
    def message(self) -> str:
        if self.allowed:
            return ""
        minutes = max(1, -(-int(self.retry_after.total_seconds()) // 60))
        return (
            "Too many failed sign-ins. Wait "
            f"{minutes} minute{'s' if minutes != 1 else ''} and try again, or ask your "
            "team lead to check your account."
        )


def sign_in_throttle(
    username_failures: Sequence[datetime],
    address_failures: Sequence[datetime],
    *,
    now: datetime,
    policy: ThrottlePolicy,
) -> ThrottleDecision:
    """May another sign-in be tried, given the failures on record (any order, any age)?"""
    waits: list[timedelta] = []
    for failures, limit in (
        (username_failures, policy.failures_per_username),
        (address_failures, policy.failures_per_address),
    ):
        recent = sorted(t for t in failures if now - t < policy.window)
        if len(recent) >= limit:
            # allowed again when enough of the recent failures have aged out of the window
            oldest_that_matters = recent[len(recent) - limit]
            waits.append(oldest_that_matters + policy.window - now)
    if not waits:
        return ThrottleDecision(True)
    return ThrottleDecision(False, max(waits))


# -- sessions ----------------------------------------------------------------------------------


class SessionState(enum.StrEnum):
    ACTIVE = "active"
    IDLE_EXPIRED = "idle_expired"
    EXPIRED = "expired"  # past its absolute lifetime
    ENDED = "ended"  # signed out


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    lifetime: timedelta = timedelta(hours=12)
    touch_every: timedelta = timedelta(seconds=60)


def session_state(
    *,
    created_at: datetime,
    last_seen_at: datetime,
    ended: bool,
    now: datetime,
    policy: SessionPolicy,
) -> SessionState:
    if ended:
        return SessionState.ENDED
    if now - created_at >= policy.lifetime:
        return SessionState.EXPIRED
    if now - last_seen_at >= policy.idle:
        return SessionState.IDLE_EXPIRED
    return SessionState.ACTIVE


def needs_touch(last_seen_at: datetime, *, now: datetime, policy: SessionPolicy) -> bool:
    """Whether to write the new last-seen time (not on every request)."""
    return now - last_seen_at >= policy.touch_every
