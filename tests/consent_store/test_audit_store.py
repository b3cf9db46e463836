"""The audit trail in the database: appends serialised into one chain, tampering found at the
exact entry, truncation caught by the anchor file, and `referral-gateway audit verify`."""

from __future__ import annotations

import itertools
import json
import threading

import pytest
from sqlalchemy import text

from consent.audit import AuditAction, ChainHead, entry_hash
from referral_gateway.entrypoints.cli import main
from referral_gateway.storage.audit_store import AuditAnchor, AuditStore
from referral_gateway.storage.unit_of_work import unit_of_work
from tests.consent_store.builders import T0, minutes


def append(engine, audit: AuditStore, n: int, *, actor: str = "yw-ash") -> None:
    for i in range(n):
        with unit_of_work(engine) as uow:
            audit.append(
                uow,
                at=T0 + minutes(i),
                actor=actor,
                action=AuditAction.VIEW_IDENTIFIABLE,
                subject=f"ref-{i:04d}",
                why="detail_view:consent_given:identity",
            )


def sql(engine, statement: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def test_entries_form_one_chain_and_the_anchor_follows_its_head(engine, audit, anchor):
    append(engine, audit, 5)

    check = audit.verify(engine)

    assert check.ok and check.verified_through == 5
    assert anchor.read() == check.head
    with engine.connect() as conn:
        entries = audit.entries(conn)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert all(e.prev_hash == p.hash for p, e in itertools.pairwise(entries))


def test_an_entry_edited_with_sql_is_found_at_that_entry(engine, audit):
    append(engine, audit, 5)
    sql(engine, "UPDATE audit_entry SET actor = 'tl-cedar' WHERE seq = 3")

    check = audit.verify(engine)

    assert not check.ok and check.first_broken_seq == 3
    assert check.verified_through == 2


def test_an_entry_edited_and_resealed_breaks_the_link_from_the_next(engine, audit):
    append(engine, audit, 5)
    with engine.connect() as conn:
        third = audit.entries(conn, after_seq=2, limit=1)[0]
    forged = entry_hash(
        seq=3,
        at=third.at,
        actor=third.actor,
        action=third.action,
        subject=third.subject,
        why="detail_view:consent_given:contact",
        prev_hash=third.prev_hash,
    )
    sql(
        engine,
        "UPDATE audit_entry SET why = 'detail_view:consent_given:contact', hash = :h WHERE seq = 3",
        h=forged,
    )

    check = audit.verify(engine)

    assert not check.ok and check.first_broken_seq == 4


def test_a_deleted_entry_is_reported_where_it_is_missing(engine, audit):
    append(engine, audit, 5)
    sql(engine, "DELETE FROM audit_entry WHERE seq = 3")

    check = audit.verify(engine)

    assert not check.ok and check.first_broken_seq == 3
    assert "missing" in check.problem


def test_cutting_off_the_last_entries_is_caught_by_the_anchor(engine, audit):
    append(engine, audit, 5)
    sql(engine, "DELETE FROM audit_entry WHERE seq >= 4")

    with_anchor = audit.verify(engine)
    links_only = audit.verify(engine, use_anchor=False)

    assert not with_anchor.ok and with_anchor.first_broken_seq == 4
    assert links_only.ok  # the links alone cannot tell: that is what the anchor is for


def test_emptying_the_table_is_caught_by_the_anchor(engine, audit):
    append(engine, audit, 3)
    sql(engine, "DELETE FROM audit_entry")

    check = audit.verify(engine)

    assert not check.ok and check.first_broken_seq == 1


def test_an_append_rolled_back_leaves_no_entry_and_does_not_move_the_anchor(engine, audit, anchor):
    append(engine, audit, 2)
    head = anchor.read()

    with pytest.raises(RuntimeError), unit_of_work(engine) as uow:
        audit.append(
            uow, at=T0, actor="yw-ash", action=AuditAction.EXPORT, subject="ref-x", why="export"
        )
        raise RuntimeError("the export failed")

    assert anchor.read() == head
    with engine.connect() as conn:
        assert audit.count(conn) == 2


def test_the_anchor_only_moves_forwards(anchor):
    anchor.advance(ChainHead(7, "b" * 64))
    anchor.advance(ChainHead(5, "a" * 64))  # a slower committer, late
    assert anchor.read() == ChainHead(7, "b" * 64)


def test_appends_from_many_threads_make_one_unbroken_chain(engine, audit):
    errors: list[BaseException] = []

    def worker(actor: str) -> None:
        try:
            append(engine, audit, 8, actor=actor)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"yw-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    check = audit.verify(engine)
    assert errors == []
    assert check.ok and check.verified_through == 32


# -- the command line -----------------------------------------------------------------------


def cli_args(tmp_path, database_url: str) -> list[str]:
    return ["--data-dir", str(tmp_path / "data"), "--database-url", database_url]


def test_audit_verify_says_intact_and_exits_zero(engine, database_url, tmp_path, capsys):
    append(engine, AuditStore(AuditAnchor(tmp_path / "data" / "audit-head.json")), 3)

    code = main(["audit", "verify", *cli_args(tmp_path, database_url)])

    assert code == 0
    assert "intact through entry 3" in capsys.readouterr().out


def test_audit_verify_names_the_first_broken_entry_and_exits_one(
    engine, database_url, tmp_path, capsys
):
    append(engine, AuditStore(AuditAnchor(tmp_path / "data" / "audit-head.json")), 4)
    sql(engine, "UPDATE audit_entry SET why = 'nothing to see' WHERE seq = 2")

    code = main(["audit", "verify", *cli_args(tmp_path, database_url)])

    out = capsys.readouterr().out
    assert code == 1
    assert "broken at entry 2" in out and "entries 1 to 1 verified" in out


def test_a_damaged_anchor_file_is_reported_not_ignored(engine, database_url, tmp_path, capsys):
    path = tmp_path / "data" / "audit-head.json"
    append(engine, AuditStore(AuditAnchor(path)), 1)
    path.write_text(json.dumps({"seq": "many"}))

    code = main(["audit", "verify", *cli_args(tmp_path, database_url)])

    assert code == 2 and "damaged" in capsys.readouterr().out
