"""The live queue across instances: two real gateways (`serve`) on one PostgreSQL. A queue
page open on gateway B hears of a candidate that gateway A received and processed (B's own
pipeline is paused, so only A can have made the referral): the event goes from A's pages to
B's through PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import adt
from consent.policy import Role
from referral_gateway.domain.accounts import NewAccount
from referral_gateway.storage.accounts import AccountStore
from referral_gateway.storage.database import make_engine
from tests.operations.gateways import serve
from tests.operations.test_metrics import SITE, visit
from tests.spine.harness import msa
from tests.waiting import wait_for
from tests.web.builders import FAST_HASHER

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def pipeline_process_of(pid: int) -> int:
    """The pipeline process `serve` started (not its MLLP listener's, nor multiprocessing's
    resource tracker): the one that names itself `rg-pipeline`."""
    found = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    (pipeline,) = [c for c in found if Path(f"/proc/{c}/comm").read_text().strip() == "rg-pipeline"]
    return pipeline


def youth_worker_session(database_url: str) -> str:
    """A signed-in youth worker for SITE: the session token a browser keeps in its cookie."""
    engine = make_engine(database_url)
    try:
        store = AccountStore(engine, hasher=FAST_HASHER)
        now = datetime.now(UTC)
        user = store.add_user(
            NewAccount("ash", Role.YOUTH_WORKER, frozenset({SITE}), "Ash"),
            "a long enough secret",
            by="test",
            now=now,
            must_change_password=False,
        )
        return store.open_session(user, now=now).token
    finally:
        engine.dispose()


class QueuePage:
    """An open queue page's event stream, read on a thread: (event, data) pairs."""

    def __init__(self, url: str, session: str) -> None:
        self.heard: list[tuple[str, str]] = []
        self._client = httpx.Client(
            base_url=url, cookies={"rg_session": session}, timeout=httpx.Timeout(5, read=None)
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        name = data = ""
        try:
            with self._client.stream("GET", "/queue/events") as stream:
                for line in stream.iter_lines():
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        data = line[6:]
                    elif line == "" and name:
                        self.heard.append((name, data))
                        name = data = ""
        except httpx.HTTPError:
            return  # closed at the end of the test

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def two_gateways(postgres_url: str, tmp_path: Path) -> Iterator[tuple]:
    keyring = tmp_path / "keys" / "keyring.json"
    keyring.parent.mkdir()
    a = serve(tmp_path / "a", postgres_url, keyring_file=keyring)
    try:
        b = serve(tmp_path / "b", postgres_url, keyring_file=keyring)
    except BaseException:
        a.stop()
        raise
    yield a, b
    b.stop()
    a.stop()


def test_a_candidate_found_by_gateway_a_appears_live_on_a_queue_page_open_on_gateway_b(
    postgres_url, two_gateways
):
    a, b = two_gateways
    b_pipeline = pipeline_process_of(b.proc.pid)
    os.kill(b_pipeline, signal.SIGSTOP)  # idle now; only A's pipeline can make the referral
    page = QueuePage(b.url, youth_worker_session(postgres_url))
    try:
        wait_for(lambda: ("ready", "{}") in page.heard, timeout=15, what="B's stream to open")
        time.sleep(1.0)  # B listening for notes well before A has news
        message = adt("A04", visit(1, age=16, complaint="stabbed"), "X1", sent=datetime.now(UTC))
        with MllpClient("127.0.0.1", a.mllp_port) as client:
            assert msa(client.send(message))[0] == "AA"
        engine = make_engine(postgres_url)
        try:
            referral_id = wait_for(
                lambda: engine.connect().execute(text("select id from referral")).scalar(),
                what="A's pipeline to make the referral",
            )
        finally:
            engine.dispose()
        news = wait_for(
            lambda: [(n, d) for n, d in page.heard if n == "new"],
            timeout=10,
            what="the page on B to hear of A's referral",
        )
        assert len(news) == 1 and str(referral_id) in news[0][1]
        assert SITE in news[0][1]
    finally:
        os.kill(b_pipeline, signal.SIGCONT)
        page.close()
