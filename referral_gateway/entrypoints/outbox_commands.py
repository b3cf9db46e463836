"""`referral-gateway outbox ...` and `referral-gateway services ...`: onward referrals.

referral-gateway services add --id wexcombe-youth --name "Wexcombe Youth Service" \\
    --code ZZW01 --offers "Mentoring" --channel fhir --endpoint https://svc.example/fhir \\
    --fields nhs_number,name,age                # prints the service's token once
referral-gateway services add ... --channel webhook --endpoint https://... --key-id k1
    # the webhook's shared secret (32+ characters) is read from standard input
referral-gateway services list
referral-gateway outbox list [--state dead] [--json]
referral-gateway outbox retry --id N | --all   # dead deliveries back to the queue, now
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from referral_gateway.config import ConfigError, Settings
from referral_gateway.entrypoints.commands import Command, SettingsArgs, SettingsFor


def add_parsers(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    settings_args: SettingsArgs,
) -> None:
    services = sub.add_parser("services", help="the directory of onward services")
    s_actions = services.add_subparsers(dest="services_action", required=True)
    add = s_actions.add_parser("add", help="add or replace a service")
    settings_args(add)
    add.add_argument("--id", required=True, help="a short slug, e.g. wexcombe-youth")
    add.add_argument("--name", required=True)
    add.add_argument("--code", required=True, help="ODS code or charity number")
    add.add_argument("--offers", required=True, help="what it offers, in a line")
    add.add_argument("--channel", required=True, choices=["fhir", "webhook", "manual"])
    add.add_argument("--endpoint", default=None, help="FHIR base URL or webhook URL")
    add.add_argument("--key-id", default=None, help="webhook signing key id")
    add.add_argument("--fields", default="", help="comma-separated fields it may receive")
    add.add_argument("--inactive", action="store_true", help="keep it out of the choices")
    listing = s_actions.add_parser("list", help="the services")
    settings_args(listing)

    outbox = sub.add_parser("outbox", help="onward-referral deliveries")
    o_actions = outbox.add_subparsers(dest="outbox_action", required=True)
    o_list = o_actions.add_parser("list", help="deliveries and their state")
    settings_args(o_list)
    o_list.add_argument("--state", choices=["pending", "sent", "dead", "stopped"])
    o_list.add_argument("--json", action="store_true")
    retry = o_actions.add_parser("retry", help="send dead deliveries again")
    settings_args(retry)
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, action="append")
    which.add_argument("--all", action="store_true")


def commands(settings_for: SettingsFor) -> dict[str, Command]:
    return {
        "services": lambda args: run_services(args, settings_for(args)),
        "outbox": lambda args: run_outbox(args, settings_for(args)),
    }


def run_services(args: argparse.Namespace, settings: Settings) -> int:
    from adapters.fhir.auth import service_site
    from referral_gateway.domain.onward import (
        Channel,
        OnwardError,
        Service,
        check_service,
        parse_fields,
    )
    from referral_gateway.storage.errors import ApiClientError
    from referral_gateway.storage.fhir_store import ApiClientStore
    from referral_gateway.storage.onward import ServiceDirectory
    from referral_gateway.storage.unit_of_work import unit_of_work
    from referral_gateway.wiring.database import open_database_and_keyring

    engine, keyring = open_database_and_keyring(settings)
    try:
        directory = ServiceDirectory(keyring)
        now = datetime.now(UTC)
        if args.services_action == "list":
            with engine.connect() as conn:
                for s in directory.all(conn):
                    fields = ",".join(sorted(f.value for f in s.fields)) or "-"
                    state = "active" if s.active else "inactive"
                    print(f"{s.id:24} {s.code:10} {s.channel.value:8} {state:8} {fields}  {s.name}")
            return 0
        try:
            service = check_service(
                Service(
                    id=args.id,
                    name=args.name,
                    code=args.code,
                    offers=args.offers,
                    channel=Channel(args.channel),
                    endpoint=args.endpoint,
                    fields=parse_fields(args.fields),
                    key_id=args.key_id,
                    active=not args.inactive,
                )
            )
        except OnwardError as exc:
            raise ConfigError(str(exc)) from None
        secret = None
        if service.channel is Channel.WEBHOOK:
            secret = sys.stdin.readline().strip()
            if len(secret.encode()) < 32:
                raise ConfigError("the webhook secret (standard input) needs 32+ characters")
        with engine.connect() as conn:
            existed = directory.get(conn, service.id) is not None
        with unit_of_work(engine) as uow:
            directory.save(uow.conn, service, secret=secret, now=now)
        print(f"{'replaced' if existed else 'added'} service {service.id!r}")
        if not existed and service.channel.sends:
            try:
                _, token = ApiClientStore(engine).create(
                    name=f"service {service.id}", site=service_site(service.id), now=now
                )
            except ApiClientError as exc:
                raise ConfigError(str(exc)) from None
            print("its token for PUT/PATCH /fhir/Task/{id} (shown only now):")
            print(token)
        return 0
    finally:
        engine.dispose()


def run_outbox(args: argparse.Namespace, settings: Settings) -> int:
    from referral_gateway.storage import onward as store
    from referral_gateway.storage.unit_of_work import unit_of_work
    from referral_gateway.wiring.database import open_database

    engine = open_database(settings)
    try:
        if args.outbox_action == "list":
            states = [store.OutboxState(args.state)] if args.state else None
            with engine.connect() as conn:
                rows = store.items(conn, states=states)
            if args.json:
                print(
                    json.dumps(
                        [
                            {
                                "id": i.id,
                                "task_id": i.task_id,
                                "service": i.service_id,
                                "kind": i.kind.value,
                                "state": i.state.value,
                                "attempts": i.attempts,
                                "next_attempt_at": i.next_attempt_at.isoformat(),
                                "last_error": i.last_error,
                            }
                            for i in rows
                        ],
                        indent=2,
                    )
                )
                return 0
            for i in rows:
                print(
                    f"{i.id:6} {i.state.value:8} {i.kind.value:8} {i.service_id:24} "
                    f"attempts {i.attempts:3}  {i.last_error or ''}"
                )
            return 0
        ids = None if args.all else list(args.id)
        with unit_of_work(engine) as uow:
            n = store.retry_dead(uow.conn, ids, now=datetime.now(UTC))
        print(f"{n} dead delivery(ies) queued again")
        return 0 if n or args.all else 1
    finally:
        engine.dispose()
