from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest

from consent.audit import (
    GENESIS_HASH,
    AuditAction,
    AuditEntry,
    ChainHead,
    chain_entry,
    verify_chain,
)
from consent.errors import InvalidInputError
from tests.consent.builders import T0

# (actor, action, subject, why): ids and fixed words only, as the real callers must pass
EVENTS = [
    ("yw-ash", AuditAction.CONSENT_CHANGE, "ref-0001", "consent given"),
    ("yw-ash", AuditAction.UNLOCK, "ref-0001", "consent_given"),
    ("yw-ash", AuditAction.VIEW_IDENTIFIABLE, "ref-0001", "detail_view:identity"),
    ("yw-birch", AuditAction.VIEW_REFUSED, "ref-0001", "detail_view:identity:not_assigned"),
    ("tl-cedar", AuditAction.EXPORT, "export-0007", "export:approach_card"),
    ("system:rotate", AuditAction.KEY_ROTATION, "key:k00c0ffee", "re-encrypted 42 values"),
]


def a_chain(n: int = len(EVENTS)) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for i, (actor, action, subject, why) in enumerate(EVENTS[:n]):
        prev = entries[-1] if entries else None
        at = T0 + timedelta(minutes=i)
        entries.append(
            chain_entry(prev, at=at, actor=actor, action=action, subject=subject, why=why)
        )
    return entries


def rehashed(entry: AuditEntry, **changes: object) -> AuditEntry:
    """`entry` changed and resealed, as someone with write access to the store could."""
    changed = replace(entry, **changes)  # type: ignore[arg-type]
    return replace(changed, hash=changed.expected_hash())


# -- building ------------------------------------------------------------------------------------


def test_a_fresh_chain_verifies_to_its_last_entry() -> None:
    chain = a_chain()

    check = verify_chain(chain)

    assert check.ok and check.first_broken_seq is None and check.problem is None
    assert check.head == ChainHead(len(EVENTS), chain[-1].hash)


def test_an_empty_chain_verifies() -> None:
    check = verify_chain([])

    assert check.ok and check.verified_through == 0


def test_entries_are_numbered_from_one_and_linked_to_the_one_before() -> None:
    chain = a_chain()

    assert [e.seq for e in chain] == list(range(1, len(EVENTS) + 1))
    assert chain[0].prev_hash == GENESIS_HASH
    assert all(later.prev_hash == earlier.hash for earlier, later in pairwise(chain))


def test_the_hash_is_sha256_of_the_canonical_json_of_fields_and_previous_hash() -> None:
    entry = chain_entry(
        None, at=T0, actor="yw-ash", action=AuditAction.UNLOCK, subject="ref-0001", why="w"
    )
    canonical = (
        '{"action":"unlock","actor":"yw-ash","at":"2025-03-14T22:30:00.000000+00:00",'
        f'"prev_hash":"{GENESIS_HASH}","seq":1,"subject":"ref-0001","why":"w"}}'
    )
    assert json.loads(canonical)  # the expected text is valid JSON

    assert entry.hash == hashlib.sha256(canonical.encode()).hexdigest()


def test_the_same_instant_in_another_timezone_seals_the_same_entry() -> None:
    bst = timezone(timedelta(hours=1))
    in_utc = chain_entry(None, at=T0, actor="a", action=AuditAction.UNLOCK, subject="s", why="w")
    in_bst = chain_entry(
        None, at=T0.astimezone(bst), actor="a", action=AuditAction.UNLOCK, subject="s", why="w"
    )

    assert in_bst == in_utc
    assert in_bst.at.tzinfo is UTC


def test_a_naive_time_is_a_programming_error() -> None:
    with pytest.raises(InvalidInputError):
        chain_entry(
            None,
            at=datetime(2025, 3, 14),
            actor="a",
            action=AuditAction.UNLOCK,
            subject="s",
            why="",
        )


def test_an_entry_without_actor_is_a_programming_error() -> None:
    with pytest.raises(InvalidInputError):
        chain_entry(None, at=T0, actor=" ", action=AuditAction.UNLOCK, subject="s", why="")


# -- tampering -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"actor": "yw-birch"},
        {"action": AuditAction.VIEW_REFUSED},
        {"subject": "ref-0002"},
        {"why": "something else"},
        {"at": T0 + timedelta(days=1)},
    ],
    ids=["actor", "action", "subject", "why", "at"],
)
def test_an_edited_entry_is_caught_at_that_entry(change: dict[str, object]) -> None:
    chain = a_chain()
    chain[2] = replace(chain[2], **change)  # type: ignore[arg-type]

    check = verify_chain(chain)

    assert not check.ok
    assert check.first_broken_seq == 3
    assert check.problem == "Entry 3 was changed after it was written."
    assert check.head == ChainHead(2, chain[1].hash)


def test_an_edited_and_resealed_entry_is_caught_at_the_entry_after_it() -> None:
    chain = a_chain()
    chain[2] = rehashed(chain[2], actor="yw-birch")

    check = verify_chain(chain)

    assert (check.ok, check.first_broken_seq) == (False, 4)
    assert check.problem is not None and "does not follow" in check.problem


def test_a_deleted_entry_is_caught_where_it_is_missing() -> None:
    chain = a_chain()
    del chain[3]

    check = verify_chain(chain)

    assert (check.ok, check.first_broken_seq) == (False, 4)
    assert check.problem == "Entry 4 is missing: entry 5 comes next (deleted or moved)."


def test_a_deleted_first_entry_is_caught() -> None:
    check = verify_chain(a_chain()[1:])

    assert (check.ok, check.first_broken_seq, check.verified_through) == (False, 1, 0)


def test_a_deleted_entry_with_the_rest_renumbered_is_caught_at_the_gap() -> None:
    chain = a_chain()
    renumbered = chain[:3] + [replace(e, seq=e.seq - 1) for e in chain[4:]]

    check = verify_chain(renumbered)

    assert (check.ok, check.first_broken_seq) == (False, 4)


def test_reordered_entries_are_caught_at_the_first_one_out_of_place() -> None:
    chain = a_chain()
    chain[1], chain[2] = chain[2], chain[1]

    check = verify_chain(chain)

    assert (check.ok, check.first_broken_seq) == (False, 2)
    assert check.problem == "Entry 2 is missing: entry 3 comes next (deleted or moved)."


def test_reordered_entries_with_swapped_numbers_are_caught_at_the_first_one_out_of_place() -> None:
    chain = a_chain()
    chain[1], chain[2] = replace(chain[2], seq=2), replace(chain[1], seq=3)

    check = verify_chain(chain)

    assert (check.ok, check.first_broken_seq) == (False, 2)


def test_a_repeated_entry_is_caught() -> None:
    chain = a_chain()
    chain.insert(3, chain[2])

    check = verify_chain(chain)

    assert (check.ok, check.first_broken_seq) == (False, 4)
    assert check.problem == "Entry 3 appears where entry 4 should be (repeated or moved)."


def test_a_tampered_last_entry_is_caught() -> None:
    chain = a_chain()
    chain[-1] = replace(chain[-1], why="nothing to see")

    check = verify_chain(chain)

    assert (check.ok, check.first_broken_seq) == (False, len(chain))


def test_a_resealed_last_entry_is_caught_against_the_head_kept_elsewhere() -> None:
    chain = a_chain()
    head = verify_chain(chain).head
    chain[-1] = rehashed(chain[-1], subject="ref-0002")
    assert verify_chain(chain).ok  # the chain alone cannot tell

    check = verify_chain(chain, head=head)

    assert (check.ok, check.first_broken_seq) == (False, len(chain))


def test_a_cut_off_end_is_caught_against_the_head_kept_elsewhere() -> None:
    chain = a_chain()
    head = verify_chain(chain).head

    check = verify_chain(chain[:-2], head=head)

    assert (check.ok, check.first_broken_seq) == (False, len(chain) - 1)
    assert check.problem is not None and "cut off" in check.problem


def test_a_chain_that_grew_past_the_kept_head_still_verifies() -> None:
    chain = a_chain()
    head = verify_chain(chain[:3]).head

    assert verify_chain(chain, head=head).ok


def test_verifying_from_a_checkpoint_checks_only_the_entries_after_it() -> None:
    chain = a_chain()

    assert verify_chain(chain[3:], after=chain[2]).ok
    tampered = chain[3:]
    tampered[0] = replace(tampered[0], why="edited")
    assert verify_chain(tampered, after=chain[2]).first_broken_seq == 4
