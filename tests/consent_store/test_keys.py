"""The key ring at start-up (missing, wrong, pre-canary databases), a running gateway picking
up a rotated key from the file, and `keys rotate` re-encrypting everything while a writer
keeps writing."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time

import pytest
from sqlalchemy import select

from consent.keyring import KeyRing, KeyRingError
from referral_gateway.config import Settings
from referral_gateway.entrypoints.cli import main
from referral_gateway.services.keys import Pace, retire_key, rotate_keys
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage.attendances import AttendanceStore
from referral_gateway.storage.audit_store import AuditStore
from referral_gateway.storage.inbox import InboxStore
from referral_gateway.storage.keystore import (
    CANARY,
    ENCRYPTED_COLUMNS,
    WatchedKeyRing,
    check_keyring,
    key_usage,
    open_keyring,
)
from referral_gateway.wiring.gateway import build_gateway
from tests.conftest import FixedClock
from tests.consent_store.builders import (
    LEAD,
    SITE,
    T0,
    gillick,
    hl7_arrival,
    seed_referral,
)


class Ticker:
    """A monotonic clock for the key ring's reload throttle that moves only when told."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def key_material(path) -> list[str]:
    raw = json.loads(path.read_text())
    return [*raw["keys"].values(), raw["index_key"]]


# -- start-up -----------------------------------------------------------------------------


def test_a_new_database_gets_a_key_ring_file_and_a_canary(engine, tmp_path):
    path = tmp_path / "keyring.json"

    ring = open_keyring(engine, path, create=True, now=T0)

    assert path.exists() and oct(path.stat().st_mode & 0o777) == "0o600"
    with engine.connect() as conn:
        token = conn.execute(select(CANARY.c.token)).scalar_one()
    assert KeyRing.key_id_of(token) == ring.active_key_id


def test_a_wrong_key_ring_is_refused_at_start_up_saying_what_to_do(engine, tmp_path):
    path = tmp_path / "keyring.json"
    open_keyring(engine, path, create=True, now=T0)
    path.unlink()
    KeyRing.generate(path)  # someone else's ring, or a fresh one by mistake

    with pytest.raises(KeyRingError) as refused:
        open_keyring(engine, path, create=True, now=T0)

    message = str(refused.value)
    assert "does not match this database" in message
    assert "restore it from your backup" in message and "RG_KEYRING_FILE" in message
    assert not any(secret in message for secret in key_material(path))


def test_a_missing_key_ring_is_never_replaced_while_the_database_holds_data(engine, tmp_path):
    path = tmp_path / "keyring.json"
    ring = open_keyring(engine, path, create=True, now=T0)
    seed_referral(engine, ring)
    path.unlink()

    with pytest.raises(KeyRingError) as refused:
        open_keyring(engine, path, create=True, now=T0)

    assert "holds encrypted data but there is no key ring" in str(refused.value)
    assert not path.exists()


def test_an_empty_database_without_a_ring_starts_only_when_asked_to_create_one(engine, tmp_path):
    path = tmp_path / "keyring.json"
    with pytest.raises(KeyRingError, match="No key ring at"):
        open_keyring(engine, path, create=False, now=T0)
    assert open_keyring(engine, path, create=True, now=T0).path == path


def test_a_database_from_before_the_canary_is_checked_on_its_data_then_gets_one(engine, tmp_path):
    right = KeyRing.generate(tmp_path / "right.json")
    InboxStore(engine, right).store_batch([hl7_arrival()])  # written before canaries existed
    KeyRing.generate(tmp_path / "wrong.json")

    with pytest.raises(KeyRingError, match=r"does not decrypt inbound_message\.payload_enc"):
        open_keyring(engine, tmp_path / "wrong.json", create=False, now=T0)
    open_keyring(engine, tmp_path / "right.json", create=False, now=T0)

    with engine.connect() as conn:
        assert conn.execute(select(CANARY.c.key_id)).scalar_one() == right.active_key_id


def test_build_gateway_refuses_a_wrong_ring_and_a_missing_one(tmp_path, database_url):
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    gateway = build_gateway(settings, clock=FixedClock(T0))
    gateway.inbox.store_batch([hl7_arrival()])
    gateway.stop()
    ring_file = settings.resolved_keyring_file

    ring_file.unlink()
    with pytest.raises(KeyRingError, match="no key ring"):
        build_gateway(settings, clock=FixedClock(T0))  # create_keyring=True, still refused
    with pytest.raises(KeyRingError, match="no key ring"):
        build_gateway(settings, clock=FixedClock(T0), create_keyring=False)
    KeyRing.generate(ring_file)
    with pytest.raises(KeyRingError, match="does not match this database"):
        build_gateway(settings, clock=FixedClock(T0), create_keyring=False)


def test_the_command_line_reports_a_wrong_ring_clearly_and_exits_2(tmp_path, database_url, capsys):
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    build_gateway(settings, clock=FixedClock(T0)).stop()
    settings.resolved_keyring_file.unlink()
    KeyRing.generate(settings.resolved_keyring_file)

    code = main(
        ["keys", "status", "--data-dir", str(settings.data_dir), "--database-url", database_url]
    )

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("key ring error:") and "does not match this database" in err


# -- a running gateway follows the key ring file -------------------------------------------


def test_a_watched_ring_encrypts_with_a_key_another_process_added_once_it_looks_again(tmp_path):
    path = tmp_path / "keyring.json"
    KeyRing.generate(path)
    ticker = Ticker()
    running = WatchedKeyRing.open(path, interval=1.0, clock=ticker)
    old = running.active_key_id

    rotator = KeyRing.load(path)
    new = rotator.add_active_key()
    soon = running.encrypt(b"x", context="t")
    ticker.t += 1.5
    later = running.encrypt(b"x", context="t")

    assert KeyRing.key_id_of(soon) == old  # within the interval: not looked yet
    assert KeyRing.key_id_of(later) == new
    assert running.decrypt(soon, context="t") == b"x"


def test_a_watched_ring_reloads_at_once_for_a_ciphertext_under_a_key_it_lacks(tmp_path):
    path = tmp_path / "keyring.json"
    KeyRing.generate(path)
    running = WatchedKeyRing.open(path, interval=3600, clock=Ticker())
    rotator = KeyRing.load(path)
    rotator.add_active_key()

    token = rotator.encrypt(b"written by the other process", context="t")

    assert running.decrypt(token, context="t") == b"written by the other process"


def test_a_different_ring_dropped_in_place_is_refused_and_the_keys_in_memory_kept(tmp_path, caplog):
    path = tmp_path / "keyring.json"
    KeyRing.generate(path)
    ticker = Ticker()
    running = WatchedKeyRing.open(path, interval=1.0, clock=ticker)
    old = running.active_key_id
    path.unlink()
    KeyRing.generate(path)
    ticker.t += 2

    with caplog.at_level(logging.ERROR):
        token = running.encrypt(b"x", context="t")

    assert KeyRing.key_id_of(token) == old
    assert "different ring" in caplog.text


# -- rotation ---------------------------------------------------------------------------------


def all_values_decrypt(engine, ring: KeyRing) -> int:
    n = 0
    with engine.connect() as conn:
        for column in ENCRYPTED_COLUMNS:
            for (token,) in conn.execute(
                select(column.token_column).where(column.token_column.is_not(None))
            ):
                ring.decrypt(token, context=column.context)
                n += 1
    return n


def test_rotation_under_load_leaves_nothing_on_the_old_key(engine, tmp_path):
    path = tmp_path / "keyring.json"
    KeyRing.generate(path)
    gateway_ring = WatchedKeyRing.open(path, interval=0.02)  # the running gateway's ring
    check_keyring(engine, gateway_ring, now=T0)
    seeded = [seed_referral(engine, gateway_ring, visit_number=f"S{i}") for i in range(4)]
    sharing = Sharing(engine, gateway_ring, AuditStore())
    for s in seeded[:2]:
        sharing.record_consent_outcome(LEAD, s.referral_id, gillick(s.referral_id, by=LEAD), now=T0)

    stop, written, failures = threading.Event(), [], []

    def gateway_writing() -> None:
        inbox, store = InboxStore(engine, gateway_ring), AttendanceStore(gateway_ring)
        i = 0
        try:
            while not stop.is_set():
                inbox.store_batch([hl7_arrival(f"LOAD{i}", visit_number=f"L{i}")])
                with engine.begin() as conn:  # an A08 re-saving an attendance under rotation
                    key = (SITE, f"S{i % 4}")
                    stored = store.snapshot(conn, {key}).found[key]
                    values = store.row_values(
                        visit_key=f"S{i % 4}",
                        attendance=stored.attendance,
                        age_at_arrival=16,
                        detection_rule="coded_assault",
                        detection={},
                        nhs_number_valid=True,
                        message_id=0,
                        now=T0,
                    )
                    store.save(conn, values, existing_id=stored.id)
                written.append(i)
                i += 1
                time.sleep(0.005)
        except BaseException as exc:
            failures.append(exc)

    writer = threading.Thread(target=gateway_writing)
    writer.start()
    while len(written) < 3 and writer.is_alive():
        time.sleep(0.01)
    rotator_ring = WatchedKeyRing.open(path)  # `keys rotate`, another process
    old = rotator_ring.active_key_id
    before = len(written)
    report = rotate_keys(
        engine,
        rotator_ring,
        AuditStore(),
        clock=FixedClock(T0),
        pace=Pace(batch_size=5, settle_seconds=0.3),
    )
    during = len(written) - before
    time.sleep(0.1)  # the writer goes on after rotation, on the new key
    stop.set()
    writer.join(30)

    assert failures == [] and during > 0
    assert report.complete and report.reencrypted > 0 and report.new_key_id != old
    retire_key(engine, rotator_ring, AuditStore(), old, clock=FixedClock(T0))  # refuses if used
    only_new = KeyRing.load(path)
    assert set(only_new.keys) == {report.new_key_id}
    assert all_values_decrypt(engine, only_new) > 0
    usage = key_usage(engine, [old])
    assert all(counts[old] == 0 and counts["unknown"] >= 0 for counts in usage.values())


def test_rotation_fixes_stale_key_id_columns_and_is_audited(engine, tmp_path):
    path = tmp_path / "keyring.json"
    ring = open_keyring(engine, path, create=True, now=T0)
    seed_referral(engine, ring)
    audit = AuditStore()

    report = rotate_keys(engine, ring, audit, clock=FixedClock(T0), pace=Pace(settle_seconds=0))

    with engine.connect() as conn:
        for column in ENCRYPTED_COLUMNS:
            if column.key_id is None:  # a column whose ciphertexts alone name their key
                tokens = conn.execute(
                    select(column.token_column).where(column.token_column.is_not(None))
                ).scalars()
                assert all(KeyRing.key_id_of(tok) == report.new_key_id for tok in tokens)
                continue
            rows = conn.execute(
                select(column.token_column, column.table.c[column.key_id]).where(
                    column.token_column.is_not(None)
                )
            ).all()
            assert all(KeyRing.key_id_of(tok) == kid == report.new_key_id for tok, kid in rows)
        trail = [(e.action.value, e.why.split(":")[0]) for e in audit.entries(conn)]
    assert trail == [("key_rotation", "new_active_key"), ("key_rotation", "reencrypted")]


def test_retiring_a_key_still_in_use_is_refused(engine, tmp_path):
    path = tmp_path / "keyring.json"
    ring = open_keyring(engine, path, create=True, now=T0)
    seed_referral(engine, ring)
    old = ring.active_key_id
    ring.add_active_key()  # a new key, nothing re-encrypted yet

    with pytest.raises(KeyRingError, match="still encrypts"):
        retire_key(engine, ring, AuditStore(), old, clock=FixedClock(T0))
    assert old in KeyRing.load(path).keys


def test_keys_rotate_status_and_retire_from_the_command_line(tmp_path, database_url, capsys):
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    gateway = build_gateway(settings, clock=FixedClock(T0))
    gateway.inbox.store_batch([hl7_arrival()])
    old = gateway.keyring.active_key_id
    gateway.stop()
    where = ["--data-dir", str(settings.data_dir), "--database-url", database_url]

    rotated = main(["keys", "rotate", "--settle", "0", *where])
    out = capsys.readouterr().out
    status = main(["keys", "status", *where])
    usage = json.loads(capsys.readouterr().out)
    retired = main(["keys", "retire", old, *where])
    verified = main(["audit", "verify", *where])

    assert (rotated, status, retired, verified) == (0, 0, 0, 0)
    assert f"(was {old})" in out
    active = usage["active"]
    assert usage["columns"]["inbound_message.payload_enc"] == {old: 0, active: 1, "unknown": 0}
    assert old not in KeyRing.load(settings.resolved_keyring_file).keys


def test_no_key_material_is_printed_by_key_status(tmp_path, database_url, capsys):
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    build_gateway(settings, clock=FixedClock(T0)).stop()
    main(["keys", "status", "--data-dir", str(settings.data_dir), "--database-url", database_url])
    out = capsys.readouterr().out
    secrets = key_material(settings.resolved_keyring_file)
    assert not any(s in out for s in secrets)
    assert not any(base64.b64decode(s).hex() in out for s in secrets)


def test_a_watched_ring_behind_the_database_refuses_to_encrypt_until_it_has_the_newest_key(
    tmp_path,
):
    shared, stale = tmp_path / "shared.json", tmp_path / "stale.json"
    KeyRing.generate(shared)
    stale.write_bytes(shared.read_bytes())
    ticker = Ticker()
    running = WatchedKeyRing.open(stale, interval=1.0, clock=ticker)
    rotator = KeyRing.load(shared)
    newest = {"key": rotator.active_key_id}
    running.follow_database(lambda: newest["key"])
    assert running.encrypt(b"x", context="t")

    newest["key"] = rotator.add_active_key()  # the database moved on; this copy did not
    ticker.t += 1.5
    with pytest.raises(KeyRingError, match="older than the database"):
        running.encrypt(b"x", context="t")
    with pytest.raises(KeyRingError):  # every write looks again while it is behind
        running.encrypt(b"x", context="t")

    stale.write_bytes(shared.read_bytes())
    token = running.encrypt(b"x", context="t")
    assert KeyRing.key_id_of(token) == newest["key"]
