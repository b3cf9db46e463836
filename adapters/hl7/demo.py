"""`referral-gateway demo`: a synthetic ED feed into a running gateway over MLLP."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import SyntheticEd


def run_demo_feed(
    host: str,
    port: int,
    *,
    count: int = 200,
    rate: float = 5.0,
    seed: int | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Send `count` attendances' messages (0 = for ever) at about `rate` messages a second,
    and tally the ACK codes."""
    ed = SyntheticEd(seed=seed)
    acks: Counter[str] = Counter()
    gap = 1.0 / rate if rate > 0 else 0.0
    sent = 0
    for _ in range(30):  # the gateway may still be starting
        try:
            client = MllpClient(host, port)
            break
        except OSError:
            time.sleep(0.5)
    else:
        raise ConnectionError(f"no MLLP listener at {host}:{port}")
    with client:
        stream = ed.stream(count) if count else _forever(ed)
        for message in stream:
            if stop is not None and stop.is_set():
                break
            reply = client.send(message)
            acks[_ack_code(reply)] += 1
            sent += 1
            if gap:
                if stop is not None:
                    stop.wait(gap)
                else:
                    time.sleep(gap)
    return {"messages": sent, "acks": dict(acks)}


def _forever(ed: SyntheticEd) -> Any:
    while True:
        yield from ed.stream(50)


def _ack_code(reply: str) -> str:
    for segment in reply.split("\r"):
        if segment.startswith("MSA"):
            parts = segment.split(segment[3] if len(segment) > 3 else "|")
            return parts[1] if len(parts) > 1 else "?"
    return "?"
