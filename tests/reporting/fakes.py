"""Hand-written fakes for the push: a programme hub that answers like the real one."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from referral_gateway.domain.report_snapshot import ReportSnapshot, read_envelope
from referral_gateway.report_formats.signing import SigningKey, Verified, verify


class FakeHub:
    """Checks signatures and remembers report ids like the hub does. `script` lets a test
    make it answer with a status of its choosing for the next requests."""

    def __init__(self, key: SigningKey, clock: Callable) -> None:
        self.keys = {key.key_id: key}
        self.clock = clock
        self.received: list[ReportSnapshot] = []
        self.requests = 0
        self.script: list[int | Exception] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, Exception):
                raise step
            return httpx.Response(step, json={"outcome": "scripted"})
        body = request.read()
        verdict = verify(dict(request.headers), body, self.keys, now=self.clock())
        if not isinstance(verdict, Verified):
            return httpx.Response(401, json={"outcome": "refused", "reason": verdict.reason})
        snapshot = read_envelope(body)
        assert isinstance(snapshot, ReportSnapshot)
        if any(s.report_id == snapshot.report_id for s in self.received):
            return httpx.Response(409, json={"outcome": "replay"})
        self.received.append(snapshot)
        return httpx.Response(202, json={"outcome": "accepted"})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))
