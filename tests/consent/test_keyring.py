from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from consent.errors import ConsentError
from consent.keyring import KeyRing, KeyRingError

CONTEXT = "attendance.identity"
SECRET = "Test-Patient, Invented"  # synthetic: what an identity column might hold
NHS_NUMBER = "9990000018"  # 999 test range


def key_material(ring: KeyRing) -> list[str]:
    """Every way a key could leak into a message: raw base64 and hex of each key."""
    out = []
    for key in [*ring.keys.values(), ring.index_key]:
        out += [base64.b64encode(key).decode(), key.hex()]
    return out


def assert_no_key_material(message: str, *rings: KeyRing) -> None:
    for ring in rings:
        for material in key_material(ring):
            assert material not in message


# -- encryption ----------------------------------------------------------------------------------


def test_text_survives_a_round_trip() -> None:
    ring = KeyRing.generate()

    token = ring.encrypt_text(SECRET, context=CONTEXT)

    assert SECRET.encode() not in token
    assert ring.decrypt_text(token, context=CONTEXT) == SECRET


def test_the_same_text_encrypts_differently_each_time() -> None:
    ring = KeyRing.generate()

    assert ring.encrypt_text(SECRET, context=CONTEXT) != ring.encrypt_text(SECRET, context=CONTEXT)


def test_a_ciphertext_moved_to_another_column_does_not_decrypt() -> None:
    ring = KeyRing.generate()
    token = ring.encrypt_text(SECRET, context="attendance.identity")

    with pytest.raises(KeyRingError) as caught:
        ring.decrypt_text(token, context="attendance.contact")

    assert "altered" in str(caught.value)


def test_an_altered_ciphertext_does_not_decrypt() -> None:
    ring = KeyRing.generate()
    token = bytearray(ring.encrypt_text(SECRET, context=CONTEXT))
    token[-1] ^= 0x01

    with pytest.raises(KeyRingError):
        ring.decrypt_text(bytes(token), context=CONTEXT)


def test_another_key_ring_fails_loudly_saying_which_key_is_missing() -> None:
    ours, theirs = KeyRing.generate(), KeyRing.generate()
    token = ours.encrypt_text(SECRET, context=CONTEXT)

    with pytest.raises(KeyRingError) as caught:
        theirs.decrypt_text(token, context=CONTEXT)

    message = str(caught.value)
    assert ours.active_key_id in message
    assert "Restore the key ring" in message
    assert_no_key_material(message, ours, theirs)
    assert SECRET not in message


def test_a_key_ring_with_the_same_key_id_but_another_key_fails_loudly() -> None:
    ours = KeyRing.generate()
    impostor = KeyRing.generate()
    impostor.keys = {ours.active_key_id: impostor.keys[impostor.active_key_id]}
    impostor.active_key_id = ours.active_key_id
    token = ours.encrypt_text(SECRET, context=CONTEXT)

    with pytest.raises(KeyRingError) as caught:
        impostor.decrypt_text(token, context=CONTEXT)

    message = str(caught.value)
    assert "does not match this database" in message
    assert_no_key_material(message, ours, impostor)


@pytest.mark.parametrize(
    "token",
    [b"", b"plain text", b"rg1", b"rg1\x05kabcd", b"rg1\x02\xff\xfe" + bytes(40)],
    ids=["empty", "not ours", "magic only", "truncated", "garbled key id"],
)
def test_a_value_that_is_not_our_ciphertext_is_refused_plainly(token: bytes) -> None:
    ring = KeyRing.generate()

    with pytest.raises(KeyRingError, match="not a ciphertext made by this gateway"):
        ring.decrypt(token, context=CONTEXT)


def test_key_ring_errors_belong_to_the_consent_error_tree() -> None:
    assert issubclass(KeyRingError, ConsentError)


def test_repr_names_key_ids_only() -> None:
    ring = KeyRing.generate()

    assert_no_key_material(repr(ring), ring)
    assert ring.active_key_id in repr(ring)


# -- the file ------------------------------------------------------------------------------------


def test_the_key_ring_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keyring.json"

    KeyRing.generate(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_leftover_temporary_file_does_not_loosen_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    leftover = path.with_suffix(".tmp")
    leftover.write_text("{}")
    leftover.chmod(0o644)

    KeyRing.generate(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_saved_ring_loads_and_decrypts_what_it_encrypted(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    token = KeyRing.generate(path).encrypt_text(SECRET, context=CONTEXT)

    assert KeyRing.load(path).decrypt_text(token, context=CONTEXT) == SECRET


def test_a_missing_key_ring_file_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"

    with pytest.raises(KeyRingError) as caught:
        KeyRing.load(path)

    message = str(caught.value)
    assert str(path) in message
    assert "backup" in message and "RG_KEYRING_FILE" in message


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"active": "k1"}),
        json.dumps({"active": "k1", "keys": {"k1": "c2hvcnQ="}, "index_key": "c2hvcnQ="}),
        json.dumps({"active": "k2", "keys": {}, "index_key": ""}),
        json.dumps({"active": "k1", "keys": ["k1"], "index_key": ""}),
    ],
    ids=["not json", "no keys", "short key", "active key absent", "keys not a map"],
)
def test_a_damaged_key_ring_file_says_to_restore_it(tmp_path: Path, body: str) -> None:
    path = tmp_path / "keyring.json"
    path.write_text(body)

    with pytest.raises(KeyRingError, match="Restore it from your backup"):
        KeyRing.load(path)


def test_load_or_create_creates_once_and_then_loads(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    first = KeyRing.load_or_create(path)

    again = KeyRing.load_or_create(path)

    assert again.keys == first.keys and again.index_key == first.index_key


# -- rotation ------------------------------------------------------------------------------------


def test_rotation_keeps_old_ciphertexts_readable(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    ring = KeyRing.generate(path)
    old_key = ring.active_key_id
    old = ring.encrypt_text(SECRET, context=CONTEXT)

    new_key = ring.add_active_key()
    new = ring.encrypt_text(SECRET, context=CONTEXT)
    reloaded = KeyRing.load(path)

    assert new_key != old_key
    assert (ring.key_id_of(old), ring.key_id_of(new)) == (old_key, new_key)
    assert reloaded.active_key_id == new_key
    assert reloaded.decrypt_text(old, context=CONTEXT) == SECRET
    assert reloaded.decrypt_text(new, context=CONTEXT) == SECRET


def test_only_ciphertexts_of_an_old_key_need_reencryption() -> None:
    ring = KeyRing.generate()
    old = ring.encrypt_text(SECRET, context=CONTEXT)
    ring.add_active_key()
    new = ring.encrypt_text(SECRET, context=CONTEXT)

    assert ring.needs_reencryption(old)
    assert not ring.needs_reencryption(new)


def test_reencryption_moves_a_ciphertext_to_the_active_key() -> None:
    ring = KeyRing.generate()
    old = ring.encrypt_text(SECRET, context=CONTEXT)
    ring.add_active_key()

    moved = ring.reencrypt(old, context=CONTEXT)

    assert ring.key_id_of(moved) == ring.active_key_id
    assert ring.decrypt_text(moved, context=CONTEXT) == SECRET
    assert ring.reencrypt(moved, context=CONTEXT) is moved  # already current: untouched


def test_a_retired_key_no_longer_decrypts_and_says_so(tmp_path: Path) -> None:
    ring = KeyRing.generate(tmp_path / "keyring.json")
    old_key = ring.active_key_id
    old = ring.encrypt_text(SECRET, context=CONTEXT)
    ring.add_active_key()
    moved = ring.reencrypt(old, context=CONTEXT)

    ring.retire_key(old_key)
    reloaded = KeyRing.load(tmp_path / "keyring.json")

    assert old_key not in reloaded.keys
    assert reloaded.decrypt_text(moved, context=CONTEXT) == SECRET
    with pytest.raises(KeyRingError, match=old_key):
        reloaded.decrypt_text(old, context=CONTEXT)


def test_the_active_key_cannot_be_retired() -> None:
    ring = KeyRing.generate()

    with pytest.raises(KeyRingError, match="active key"):
        ring.retire_key(ring.active_key_id)


def test_blind_index_is_stable_across_rotation_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    ring = KeyRing.generate(path)
    before = ring.blind_index(NHS_NUMBER, purpose="nhs_number")

    ring.add_active_key()

    assert ring.blind_index(NHS_NUMBER, purpose="nhs_number") == before
    assert KeyRing.load(path).blind_index(NHS_NUMBER, purpose="nhs_number") == before


def test_blind_index_differs_by_purpose_and_by_ring_and_hides_the_value() -> None:
    ring = KeyRing.generate()
    index = ring.blind_index(NHS_NUMBER, purpose="nhs_number")

    assert index != ring.blind_index(NHS_NUMBER, purpose="local_id")
    assert index != KeyRing.generate().blind_index(NHS_NUMBER, purpose="nhs_number")
    assert NHS_NUMBER not in index
