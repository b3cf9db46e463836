"""`referral-gateway tokens ...`: API tokens for sending systems.

referral-gateway tokens create --site RXX01 --name rxx-ed-epr   # prints the token once
referral-gateway tokens list
referral-gateway tokens revoke --name rxx-ed-epr
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime

from referral_gateway.config import ConfigError, Settings
from referral_gateway.entrypoints.commands import Command, SettingsArgs, SettingsFor

_ODS = re.compile(r"^[A-Z0-9]{3,12}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,99}$")


def add_parsers(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    settings_args: SettingsArgs,
) -> None:
    tokens = sub.add_parser("tokens", help="API tokens for FHIR sending systems")
    actions = tokens.add_subparsers(dest="tokens_action", required=True)
    create = actions.add_parser("create", help="a new token, printed once")
    settings_args(create)
    create.add_argument("--site", required=True, help="ODS code of the site, e.g. RXX01")
    create.add_argument("--name", required=True, help="the sending system, e.g. rxx-ed-epr")
    listing = actions.add_parser("list", help="clients, their sites and whether revoked")
    settings_args(listing)
    revoke = actions.add_parser("revoke", help="revoke a client's token")
    settings_args(revoke)
    revoke.add_argument("--name", required=True)


def commands(settings_for: SettingsFor) -> dict[str, Command]:
    return {"tokens": lambda args: run_tokens(args, settings_for(args))}


def run_tokens(args: argparse.Namespace, settings: Settings) -> int:
    from referral_gateway.storage.errors import ApiClientError
    from referral_gateway.storage.fhir_store import ApiClientStore
    from referral_gateway.wiring.database import open_database

    engine = open_database(settings)
    try:
        clients = ApiClientStore(engine)
        now = datetime.now(UTC)
        if args.tokens_action == "create":
            site = args.site.strip().upper()
            if not _ODS.match(site):
                raise ConfigError(f"--site: {args.site!r} is not an ODS code such as RXX01")
            if not _NAME.match(args.name):
                raise ConfigError("--name: letters, digits, spaces and . _ : - (up to 100)")
            try:
                client, token = clients.create(name=args.name, site=site, now=now)
            except ApiClientError as exc:
                raise ConfigError(str(exc)) from None
            print(f"created API client {client.name!r} for site {client.site}")
            print("token (shown only now; put it in the sending system's configuration):")
            print(token)
            return 0
        if args.tokens_action == "list":
            for c in clients.all():
                state = f"revoked {c.revoked_at:%Y-%m-%d}" if c.revoked_at else "active"
                print(f"{c.name:40} {c.site:10} created {c.created_at:%Y-%m-%d}  {state}")
            return 0
        if clients.revoke(args.name, now):
            print(f"revoked {args.name!r}")
            return 0
        print(f"no active client named {args.name!r}")
        return 1
    finally:
        engine.dispose()
