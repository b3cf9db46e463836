"""`referral-gateway tokens ...`: API tokens for sending systems.

referral-gateway tokens create --site RXX01 --name rxx-ed-epr   # prints the token once
referral-gateway tokens list
referral-gateway tokens revoke --name rxx-ed-epr
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, datetime

from referral_gateway.config import ConfigError, Settings

_ODS = re.compile(r"^[A-Z0-9]{3,12}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,99}$")


def add_token_commands(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    settings_args: Callable[[argparse.ArgumentParser], None],
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


def run_tokens(args: argparse.Namespace, settings: Settings) -> int:
    from referral_gateway.storage.database import make_engine, migrate
    from referral_gateway.storage.fhir_store import ApiClientError, ApiClientStore
    from referral_gateway.storage.keystore import migration_keyring

    engine = make_engine(settings.resolved_database_url)
    try:
        migrate(engine, keyring=migration_keyring(settings.resolved_keyring_file))
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
