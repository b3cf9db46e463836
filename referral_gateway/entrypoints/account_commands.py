"""`referral-gateway users ...`: staff accounts from the command line.

Every change is audited with the actor `cli:<OS user>`. An account created, or given a
password, here must set its own password at its first sign-in on the web pages.

Passwords are never arguments (they would sit in shell history and `ps`): they are asked for
twice at a terminal, or read as the first line of standard input when it is not a terminal
(`printf '%s\\n' "$PW" | referral-gateway users add ...`).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TextIO

from referral_gateway.config import Settings
from referral_gateway.entrypoints.commands import Command, SettingsArgs, SettingsFor

ROLES = ("youth_worker", "team_lead", "programme_lead", "administrator")


def add_parsers(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    settings_args: SettingsArgs,
) -> None:
    users = sub.add_parser("users", help="staff accounts for the web pages")
    commands = users.add_subparsers(dest="users_command", required=True)

    add = commands.add_parser("add", help="create an account (password from a prompt or stdin)")
    settings_args(add)
    add.add_argument("--username", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument(
        "--site",
        action="append",
        default=[],
        dest="sites",
        help="ODS code of a site the user works for (repeatable; not for administrators)",
    )
    add.add_argument("--display-name", default="", help="the name colleagues see on claims")

    access = commands.add_parser("set-access", help="change an account's role and sites")
    settings_args(access)
    access.add_argument("--username", required=True)
    access.add_argument("--role", required=True, choices=ROLES)
    access.add_argument(
        "--site", action="append", default=[], dest="sites", help="ODS code (repeatable)"
    )

    listing = commands.add_parser("list", help="list accounts")
    settings_args(listing)

    for name, text in (
        ("disable", "disable an account and end its sessions"),
        ("enable", "enable a disabled account"),
        ("set-password", "set a new password (prompt or stdin); ends sessions"),
    ):
        p = commands.add_parser(name, help=text)
        settings_args(p)
        p.add_argument("--username", required=True)


def commands(settings_for: SettingsFor) -> dict[str, Command]:
    return {"users": lambda args: run_users(args, settings_for(args))}


def read_password(stdin: TextIO | None = None, *, confirm: bool = True) -> str:
    stream = stdin or sys.stdin
    if not stream.isatty():
        line = stream.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Password again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        import os

        return f"uid{os.getuid()}"


def run_users(args: argparse.Namespace, settings: Settings, *, stdin: TextIO | None = None) -> int:
    from referral_gateway.domain.accounts import (
        AccountProblems,
        check_access,
        check_new_account,
        check_password,
        cli_actor,
    )
    from referral_gateway.storage.accounts import AccountStore
    from referral_gateway.storage.audit_store import AuditStore, anchor_for
    from referral_gateway.storage.types import utcnow
    from referral_gateway.wiring.database import open_database

    engine = open_database(settings)
    by = cli_actor(os_user())
    try:
        store = AccountStore(engine, audit=AuditStore(anchor_for(settings.data_dir)))
        command = args.users_command
        if command == "list":
            for u in store.all_users():
                state = "active" if u.active else "disabled"
                if u.must_change_password:
                    state += ", must set own password"
                print(f"{u.username:24} {u.role.value:15} {','.join(sorted(u.sites)):20} {state}")
            return 0
        if command == "add":
            try:
                password = read_password(stdin)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            result = check_new_account(
                args.username,
                args.role,
                args.sites,
                password,
                display_name=args.display_name,
                taken=store.username_taken(args.username),
            )
            if isinstance(result, AccountProblems):
                for field, problem in result.problems.items():
                    print(f"error: {field}: {problem}", file=sys.stderr)
                return 2
            created = store.add_user(result, password, by=by, now=utcnow())
            where = ", ".join(sorted(created.sites)) or "no site"
            print(
                f"created {created.username} ({created.role.value}) for {where}; they must "
                "set their own password at their first sign-in"
            )
            return 0
        user = store.by_username(args.username)
        if user is None:
            print(f"error: no account {args.username!r}", file=sys.stderr)
            return 2
        if command in ("disable", "enable"):
            store.set_active(user.id, command == "enable", by=by, now=utcnow())
            print(f"{command}d {user.username}")
            return 0
        if command == "set-access":
            access = check_access(args.role, args.sites)
            if isinstance(access, AccountProblems):
                for field, problem in access.problems.items():
                    print(f"error: {field}: {problem}", file=sys.stderr)
                return 2
            store.set_access(user.id, *access, by=by, now=utcnow())
            print(f"{user.username} is now {access[0].value} for {', '.join(sorted(access[1]))}")
            return 0
        try:
            new_password = read_password(stdin)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        weakness = check_password(new_password, username=user.username)
        if weakness:
            print(f"error: password: {weakness}", file=sys.stderr)
            return 2
        store.set_password(user.id, new_password, by=by, now=utcnow())
        print(
            f"password set for {user.username}; their sessions have ended and they must set "
            "their own at their next sign-in"
        )
        return 0
    finally:
        engine.dispose()


DEMO_ACCOUNTS = (
    ("demo-worker", "youth_worker", "Demo youth worker"),
    ("demo-lead", "team_lead", "Demo team lead"),
    ("demo-programme", "programme_lead", "Demo programme lead"),
)


def ensure_demo_accounts(settings: Settings, *, site: str = "RXX01") -> list[tuple[str, str]]:
    """Accounts for trying the demo: made once with random passwords kept (mode 0600) in
    `<data dir>/demo-accounts.txt`; later runs read them back. Never used outside `--demo`.
    Their creation is audited (actor `system:demo`); they may sign in with the printed
    passwords without changing them, as the demo holds only synthetic data."""
    import os
    import secrets

    from referral_gateway.domain.accounts import AccountProblems, check_new_account
    from referral_gateway.storage.accounts import AccountStore
    from referral_gateway.storage.audit_store import AuditStore, anchor_for
    from referral_gateway.storage.types import utcnow
    from referral_gateway.wiring.database import open_database

    path = settings.data_dir / "demo-accounts.txt"
    known: dict[str, str] = {}
    if path.exists():
        for line in path.read_text("utf-8").splitlines():
            name, _, password = line.partition(" ")
            known[name] = password
    engine = open_database(settings)
    try:
        store = AccountStore(engine, audit=AuditStore(anchor_for(settings.data_dir)))
        for username, role, display in DEMO_ACCOUNTS:
            if store.username_taken(username):
                continue
            password = secrets.token_urlsafe(12)
            account = check_new_account(username, role, [site], password, display_name=display)
            if isinstance(account, AccountProblems):
                raise RuntimeError(f"demo account {username} refused: {account.problems}")
            store.add_user(
                account, password, by="system:demo", now=utcnow(), must_change_password=False
            )
            known[username] = password
    finally:
        engine.dispose()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.writelines(f"{name} {password}\n" for name, password in known.items())
    return sorted(known.items())
