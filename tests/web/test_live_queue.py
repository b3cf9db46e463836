"""Live updates over a real connection: the pipeline thread announces a new referral and an
open queue page hears of it within a second, only for its own sites, until the session ends."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from consent.policy import Role
from referral_gateway.services.casework import QueueEvent
from referral_gateway.web.events import Broadcaster
from tests.web.builders import SITE_A, SITE_B
from tests.web.conftest import Web
from tests.web.live import LiveServer


@pytest.fixture
def live(web: Web) -> Iterator[LiveServer]:
    server = LiveServer(web.app).start()
    yield server
    server.stop()


def events(lines: Iterator[str], until: float) -> Iterator[tuple[str, str]]:
    """(event name, data) pairs from an SSE line stream."""
    name = data = ""
    for line in lines:
        if time.monotonic() > until:
            return
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and name:
            yield name, data
            name = data = ""


def test_a_new_referral_reaches_an_open_queue_within_a_second_and_only_its_sites(
    web: Web, live: LiveServer
):
    web.account("ash", Role.YOUTH_WORKER, (SITE_A,))
    cookie = web.signed_in("ash").cookies.get("rg_session")
    with (
        httpx.Client(base_url=live.url, cookies={"rg_session": cookie}, timeout=5) as client,
        client.stream("GET", "/queue/events") as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-store"
        heard = events(stream.iter_lines(), until=time.monotonic() + 10)
        assert next(heard) == ("ready", "{}")
        elsewhere = web.ed.stab_wound(site=SITE_B)  # another site's: never sent here
        sent_at = time.monotonic()
        mine = web.ed.stab_wound(site=SITE_A)
        name, data = next(heard)
        assert time.monotonic() - sent_at < 1.0
        assert name == "new" and mine in data and elsewhere not in data


def test_the_stream_says_signed_out_when_the_session_idles_out(web: Web, live: LiveServer):
    web.account("ash", Role.YOUTH_WORKER, (SITE_A,))
    cookie = web.signed_in("ash").cookies.get("rg_session")
    with (
        httpx.Client(base_url=live.url, cookies={"rg_session": cookie}, timeout=5) as client,
        client.stream("GET", "/queue/events") as stream,
    ):
        heard = events(stream.iter_lines(), until=time.monotonic() + 10)
        assert next(heard)[0] == "ready"
        web.clock.advance(minutes=31)
        assert next(heard)[0] == "signed-out"


def test_no_stream_without_a_session(live: LiveServer):
    assert httpx.get(live.url + "/queue/events", timeout=5).status_code == 401


def test_events_published_from_another_thread_arrive_on_the_subscribers_loop():
    broadcaster = Broadcaster()
    received: list[QueueEvent | None] = []

    async def listen() -> None:
        sub = broadcaster.subscribe({SITE_A})
        ready.set()
        received.append(await sub.next(2))
        received.append(await sub.next(2))

    ready = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(listen()))
    thread.start()
    ready.wait(2)
    broadcaster.publish(QueueEvent("new", "r-b", SITE_B))  # not this subscriber's site
    broadcaster.publish(QueueEvent("new", "r-a", SITE_A))
    broadcaster.close_all()
    thread.join(5)
    assert received == [QueueEvent("new", "r-a", SITE_A), None]
