"""Fixtures for onward referrals: the consent service with its withdrawal hook, a directory
entry per channel, and a real receiving service in another process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from referral_gateway.config import Settings
from referral_gateway.domain.clock import system_clock
from referral_gateway.services.onward import OnwardReferrals
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage.audit_store import AuditAnchor, AuditStore
from referral_gateway.wiring.onward import build_onward, onward_sender
from tests.consent_store.builders import Assignments

RECEIVER = Path(__file__).with_name("receiver.py")
WEBHOOK_SECRET = "a-webhook-secret-of-at-least-thirty-two-bytes"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Receiver:
    """A receiving service in a process of its own (tests/onward/receiver.py)."""

    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, fail_first: int = 0) -> Receiver:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(RECEIVER),
                "--port",
                str(self.port),
                "--log",
                str(self.log),
                "--fail-first",
                str(fail_first),
                "--secret",
                WEBHOOK_SECRET,
            ],
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == b"ready"
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def entries(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def taken(self, result: str = "new") -> list[dict[str, Any]]:
        return [e for e in self.entries() if e["result"] == result]


@pytest.fixture
def receiver(tmp_path) -> Iterator[Receiver]:
    r = Receiver(tmp_path / "received.jsonl")
    yield r
    r.kill()


@pytest.fixture
def audit(tmp_path) -> AuditStore:
    return AuditStore(AuditAnchor(tmp_path / "data" / "audit-head.json"))


@pytest.fixture
def assignments() -> Assignments:
    return Assignments()


@pytest.fixture
def sharing(engine, keyring, audit, assignments) -> Sharing:
    return Sharing(engine, keyring, audit, assignments=assignments)


@pytest.fixture
def onward(engine, keyring, sharing, clock) -> OnwardReferrals:
    settings = Settings(outbox_backoff_seconds=5, outbox_max_attempts=4)
    # the outbox runs on the test's clock; signatures carry the real time the receiver checks
    return build_onward(
        settings,
        engine,
        keyring,
        sharing,
        clock,
        announce=lambda news: None,
        sender=onward_sender(system_clock),
    )
