from datetime import UTC, datetime

from sqlalchemy import text

from referral_gateway.storage.inbox import Arrival, InboxStore
from referral_gateway.storage.views import error_store, feed_counts

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def an_arrival(
    key: str = "CTRL1",
    *,
    sender: str = "EDIS^RXX01",
    payload: bytes = b"MSH|...",
    state: str = "pending",
) -> Arrival:
    return Arrival(
        channel="hl7v2",
        sender=sender,
        message_key=key,
        message_type="ADT^A01",
        site="RXX01",
        payload=payload,
        received_at=NOW,
        state=state,
    )


def test_a_stored_message_comes_back_pending_with_its_payload(engine, keyring):
    inbox = InboxStore(engine, keyring)
    [stored] = inbox.store_batch([an_arrival(payload=b"MSH|^~\\&|hello")])
    [pending] = inbox.fetch_pending(10)
    assert not stored.duplicate
    assert pending.id == stored.message_id
    assert pending.payload == b"MSH|^~\\&|hello"


def test_a_repeat_of_sender_and_control_id_is_a_duplicate_of_the_first(engine, keyring):
    inbox = InboxStore(engine, keyring)
    first, again, other_sender = inbox.store_batch(
        [an_arrival("C1"), an_arrival("C1"), an_arrival("C1", sender="PAS^RYY02")]
    )
    [later] = inbox.store_batch([an_arrival("C1")])
    assert (first.duplicate, again.duplicate, other_sender.duplicate) == (False, True, False)
    assert again.message_id == first.message_id == later.message_id
    assert later.duplicate
    assert len(inbox.fetch_pending(10)) == 2


def test_counts_record_received_and_duplicates_per_sender_per_day(engine, keyring):
    inbox = InboxStore(engine, keyring)
    inbox.store_batch([an_arrival("A"), an_arrival("A"), an_arrival("B")])
    [row] = feed_counts(engine)
    assert (row["received"], row["duplicate"], row["day"]) == (2, 1, "2026-05-01")


def test_payloads_are_encrypted_at_rest(engine, keyring):
    InboxStore(engine, keyring).store_batch([an_arrival(payload=b"PID|1||9990001234^^^NHS")])
    with engine.connect() as conn:
        raw = conn.execute(text("select payload_enc from inbound_message")).scalar_one()
    assert b"9990001234" not in bytes(raw)


def test_unreadable_messages_wait_in_the_error_store_and_can_be_requeued(engine, keyring):
    inbox = InboxStore(engine, keyring)
    inbox.store_batch([an_arrival("bad", state="error")])
    assert [e["id"] for e in error_store(engine)] and inbox.fetch_pending(10) == []
    assert inbox.requeue_errors() == 1
    assert len(inbox.fetch_pending(10)) == 1


def test_messages_never_show_their_payload_in_a_repr(engine, keyring):
    inbox = InboxStore(engine, keyring)
    arrival = an_arrival(payload=b"PID|1||9990001234^^^NHS||Testington^Sam")
    inbox.store_batch([arrival])
    [pending] = inbox.fetch_pending(1)
    for shown in (repr(arrival), repr(pending), str(pending)):
        assert "9990001234" not in shown and "Testington" not in shown
