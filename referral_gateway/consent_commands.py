"""`referral-gateway keys ...` and `referral-gateway audit verify`.

    keys rotate     add a new active key, re-encrypt everything under it (gateway may run)
    keys reencrypt  finish an interrupted rotation, without adding a key
    keys status     which key encrypts how many values, per column
    keys retire ID  remove an old key that no longer encrypts anything
    audit verify    check the audit chain and its anchor; exit 1 at the first broken entry

A running gateway picks up a rotated key from the key ring file within a second (it watches
the file), so rotation needs no restart. These commands never create a key ring.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from referral_gateway.config import Settings
from referral_gateway.services.keys import Pace, reencrypt, retire_key, rotate_keys
from referral_gateway.storage.audit_store import AuditAnchorError, AuditStore, anchor_for
from referral_gateway.storage.database import make_engine, migrate
from referral_gateway.storage.keystore import (
    WatchedKeyRing,
    key_usage,
    migration_keyring,
    open_keyring,
)

SettingsFor = Callable[[argparse.Namespace], Settings]
Command = Callable[[argparse.Namespace], int]


def add_parsers(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    settings_args: Callable[[argparse.ArgumentParser], None],
) -> None:
    keys = sub.add_parser("keys", help="field encryption keys: rotate, status, retire")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    for name, text in (
        ("rotate", "add a new active key and re-encrypt everything under it"),
        ("reencrypt", "re-encrypt what an interrupted rotation left under old keys"),
    ):
        p = keys_sub.add_parser(name, help=text)
        settings_args(p)
        p.add_argument("--batch", type=int, default=200, help="rows per transaction")
        p.add_argument(
            "--settle",
            type=float,
            default=5.0,
            help="seconds to wait for running gateways before the last pass (default 5)",
        )
    status = keys_sub.add_parser("status", help="how many values each key encrypts")
    settings_args(status)
    retire = keys_sub.add_parser("retire", help="remove an old key nothing uses any more")
    settings_args(retire)
    retire.add_argument("key_id")

    audit = sub.add_parser("audit", help="the audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the hash chain and its anchor")
    settings_args(verify)
    verify.add_argument(
        "--no-anchor", action="store_true", help="ignore the anchor file (chain links only)"
    )


def commands(settings_for: SettingsFor) -> dict[str, Command]:
    return {
        "keys": lambda args: _keys(settings_for(args), args),
        "audit": lambda args: _audit(settings_for(args), args),
    }


def _open(settings: Settings) -> tuple[Engine, WatchedKeyRing]:
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate(engine, keyring=migration_keyring(settings.resolved_keyring_file))
        keyring = open_keyring(
            engine, settings.resolved_keyring_file, create=False, now=datetime.now(UTC)
        )
    except Exception:
        engine.dispose()
        raise
    return engine, keyring


def _clock() -> datetime:
    return datetime.now(UTC)


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    engine, keyring = _open(settings)
    audit = AuditStore(anchor_for(settings.data_dir))
    try:
        if args.keys_command in ("rotate", "reencrypt"):
            run = rotate_keys if args.keys_command == "rotate" else reencrypt
            report = run(
                engine,
                keyring,
                audit,
                clock=_clock,
                pace=Pace(batch_size=args.batch, settle_seconds=args.settle),
            )
            print(
                f"active key {report.new_key_id} (was {report.previous_key_id}): "
                f"{report.reencrypted} value(s) re-encrypted in {report.passes} pass(es)"
            )
            if not report.complete:
                print(
                    f"{report.remaining} value(s) are still under another key: is a gateway "
                    "running that does not reload the key ring? Run `referral-gateway keys "
                    "reencrypt` to finish."
                )
                return 1
            return 0
        if args.keys_command == "status":
            usage = key_usage(engine, sorted(keyring.keys))
            print(json.dumps({"active": keyring.active_key_id, "columns": usage}, indent=2))
            return 0
        retire_key(engine, keyring, audit, args.key_id, clock=_clock)
        print(f"key {args.key_id} retired")
        return 0
    finally:
        engine.dispose()


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate(engine, keyring=migration_keyring(settings.resolved_keyring_file))
        store = AuditStore(anchor_for(settings.data_dir))
        try:
            check = store.verify(engine, use_anchor=not args.no_anchor)
        except AuditAnchorError as exc:
            print(f"audit trail: {exc}")
            return 2
    finally:
        engine.dispose()
    if check.ok:
        head = check.head
        where = f"through entry {head.seq} ({head.hash})" if head else "(no entries yet)"
        print(f"audit trail intact {where}")
        return 0
    print(
        f"audit trail broken at entry {check.first_broken_seq}: {check.problem} "
        f"(entries 1 to {check.verified_through} verified)"
    )
    return 1
