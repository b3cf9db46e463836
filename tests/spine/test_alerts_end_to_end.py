"""Alerts from the outside: an ADT message over a real MLLP socket becomes a Web Push that a
push endpoint served here decrypts (RFC 8291) with the subscription's keys, an e-mail that a
real SMTP relay in another process receives (STARTTLS, credentials), and a signed team-chat
webhook POST; none carries an identifier from the message."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import UTC, date, datetime

import http_ece
import pytest
from argon2 import PasswordHasher

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import Person, Visit, adt
from consent.policy import Role
from referral_gateway.domain.accounts import NewAccount
from referral_gateway.domain.alerts import AlertChannel, DeliveryStatus
from referral_gateway.storage.accounts import AccountStore
from referral_gateway.storage.alerts import AlertStore
from referral_gateway.storage.views import referral_summaries
from tests.spine.alert_endpoints import BrowserKeys, RecordingServer, SmtpSink
from tests.spine.harness import msa, start_gateway
from tests.waiting import wait_until

ARRIVAL = datetime(2026, 3, 14, 22, 30, tzinfo=UTC)
PUBLIC_URL = "https://gateway.example.test"
SECRET = "a-webhook-secret-of-enough-length-0123456789"
PERSON = Person(
    mrn="MRN0004242",
    nhs_number="9990000026",
    family="Testington",
    given="Samwise",
    birth_date=date(2010, 1, 2),
    sex="M",
)
VISIT = Visit(
    person=PERSON,
    visit_number="V7654321",
    site="RXX01",
    arrival=ARRIVAL,
    area="MAJORS",
    bay="B3",
    complaint="stabbed in the arm",
)
# everything in the message that identifies the young person, as it may be written
IDENTIFIERS = [
    "9990000026",
    "999 000 0026",
    "Testington",
    "Samwise",
    "20100102",
    "2010-01-02",
    "02/01/2010",
    "ZZ1 1ZZ",
    "Example Street",
    "07700 900000",
    "07700900000",
    "V7654321",
    "MRN0004242",
]


def assert_no_identifier(what: str, content: bytes) -> None:
    text = content.decode("utf-8", "replace")
    for identifier in IDENTIFIERS:
        assert identifier.lower() not in text.lower(), f"{what} holds {identifier!r}"


def add_worker(engine, store: AlertStore, *, channels: set[AlertChannel], email: str = "") -> str:
    accounts = AccountStore(engine, hasher=PasswordHasher(time_cost=1, memory_cost=1024))
    user = accounts.add_user(
        NewAccount("yw.alerts", Role.YOUTH_WORKER, frozenset({"RXX01"}), "Alex Worker"),
        "a long enough password",
        by="system:test-setup",
        now=datetime.now(UTC),
        must_change_password=False,
    )
    store.save_preference(
        user.id, on_shift=True, channels=frozenset(channels), email=email, now=datetime.now(UTC)
    )
    return user.id


def send_arrival(port: int, control_id: str = "CTRL0001") -> tuple[str, str]:
    with MllpClient("127.0.0.1", port) as client:
        return msa(client.send(adt("A04", VISIT, control_id, sent=ARRIVAL)))


@pytest.fixture
def endpoints(tmp_path):
    push = RecordingServer().start()
    webhook = RecordingServer(fail_first=1).start()  # the chat room fails once: retried
    smtp = SmtpSink.start(tmp_path, "relay-user", "relay-password-123")
    yield push, webhook, smtp
    push.stop()
    webhook.stop()
    smtp.stop()


def test_an_adt_arrival_reaches_push_email_and_chat_with_no_identifier(
    tmp_path, database_url, endpoints
):
    push, webhook, smtp = endpoints
    running = start_gateway(
        tmp_path / "gw",
        database_url,
        public_url=PUBLIC_URL,
        alert_batch_seconds=0.0,
        alert_retry_first_seconds=0.2,
        alert_webhook_url=webhook.url + "/room",
        alert_webhook_secret=SECRET,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_username="relay-user",
        smtp_password="relay-password-123",
        smtp_from="alerts@gateway.example.test",
        smtp_ca_file=str(smtp.cert),
    )
    try:
        gateway = running.gateway
        store = AlertStore(gateway.engine)
        user_id = add_worker(
            gateway.engine,
            store,
            channels={AlertChannel.PUSH, AlertChannel.EMAIL},
            email="alex.worker@example.test",
        )
        keys = BrowserKeys.make()
        store.add_push_subscription(
            user_id,
            endpoint=push.url + "/push/device-1",
            p256dh=keys.p256dh,
            auth=keys.auth,
            now=datetime.now(UTC),
        )

        assert send_arrival(running.port) == ("AA", "CTRL0001")

        assert wait_until(lambda: push.received and webhook.received), "no push or webhook"
        mail = smtp.wait_for(1)
        assert len(mail) == 1

        # (a) Web Push: VAPID-signed, and the payload decrypts with the subscription's keys
        pushed = push.received[0]
        assert pushed.path == "/push/device-1"
        assert pushed.headers["content-encoding"] == "aes128gcm"
        assert f"k={gateway.vapid_public_key}" in pushed.headers["authorization"]
        plain = http_ece.decrypt(
            pushed.body,
            private_key=keys.private_key,
            auth_secret=keys.auth_secret,
            version="aes128gcm",
        )
        payload = json.loads(plain)
        referral_id = payload["url"].rsplit("/", 1)[-1]
        assert payload["url"] == f"{PUBLIC_URL}/referrals/{referral_id}"
        assert payload["body"] == "RXX01: 1 new assault candidate on the queue"
        assert (payload["site"], payload["kind"], payload["count"]) == (
            "RXX01",
            "new_candidate",
            1,
        )
        assert_no_identifier("the push", plain)

        # (b) e-mail: to the worker's address, the same words and link
        message = mail[0]
        assert b"X-Sink-Rcpt: alex.worker@example.test" in message
        assert b"RXX01: 1 new assault candidate on the queue" in message
        assert f"{PUBLIC_URL}/referrals/{referral_id}".encode() in message
        assert_no_identifier("the e-mail", message)

        # (c) webhook: signed over its timestamp and the exact body, same alert
        posted = webhook.received[0]
        stamp = posted.headers["x-gateway-timestamp"]
        assert abs(int(stamp) - time.time()) < 300
        signed = stamp.encode() + b"." + posted.body
        expected = "v1=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(posted.headers["x-gateway-signature"], expected)
        assert json.loads(posted.body)["body"] == "RXX01: 1 new assault candidate on the queue"
        assert_no_identifier("the webhook", posted.body)

        # each delivery is recorded; the chat room's first failure was retried
        assert wait_until(lambda: all(d.status is DeliveryStatus.SENT for d in store.deliveries()))
        by_channel = {d.channel: d for d in store.deliveries()}
        assert set(by_channel) == {AlertChannel.PUSH, AlertChannel.EMAIL, AlertChannel.CHAT}
        chat = by_channel[AlertChannel.CHAT]
        assert (chat.attempts, chat.last_error) == (2, "webhook HTTP 503")
        assert webhook.answered == [503, 201]
        assert by_channel[AlertChannel.PUSH].attempts == 1
    finally:
        running.stop()


def test_a_room_that_keeps_failing_is_retried_with_backoff_then_given_up(tmp_path, sqlite_url):
    webhook = RecordingServer(fail_first=100).start()
    running = start_gateway(
        tmp_path,
        sqlite_url,
        alert_batch_seconds=0.0,
        alert_retry_first_seconds=0.1,
        alert_retry_attempts=3,
        alert_webhook_url=webhook.url,
    )
    try:
        store = AlertStore(running.gateway.engine)
        assert send_arrival(running.port)[0] == "AA"
        assert wait_until(
            lambda: [d.status for d in store.deliveries()] == [DeliveryStatus.GAVE_UP]
        )
        (delivery,) = store.deliveries()
        assert (delivery.attempts, delivery.last_error) == (3, "webhook HTTP 503")
        assert delivery.next_attempt_at is None
        assert webhook.answered == [503, 503, 503]
    finally:
        running.stop()
        webhook.stop()


def test_a_room_that_never_answers_slows_neither_the_ack_nor_the_pipeline(tmp_path, sqlite_url):
    """A webhook that accepts the connection and never replies: every ACK still comes back
    at once and every candidate is on the queue at once, because the pipeline only hands the
    news to the alerts thread."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                continue

    threading.Thread(target=hold, daemon=True).start()
    port = silent.getsockname()[1]
    running = start_gateway(
        tmp_path, sqlite_url, alert_batch_seconds=0.0, alert_webhook_url=f"http://127.0.0.1:{port}"
    )
    try:
        waits = []
        for n in range(5):
            started = time.perf_counter()
            with MllpClient("127.0.0.1", running.port) as client:
                visit = Visit(**{**VISIT.__dict__, "visit_number": f"V{n:07d}"})
                code, _ = msa(client.send(adt("A04", visit, f"SLOW{n}", sent=ARRIVAL)))
            waits.append(time.perf_counter() - started)
            assert code == "AA"
        assert running.wait_until(
            lambda: len(referral_summaries(running.gateway.engine)) == 5, timeout=3.0
        ), "the pipeline waited for the alerts"
        assert wait_until(lambda: len(held) >= 1), "the alert never tried the room"
        assert max(waits) < 1.0, waits
    finally:
        stop.set()
        running.stop()
        silent.close()
        for conn in held:
            conn.close()
