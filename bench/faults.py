"""Fault injection: a mixed MLLP and FHIR stream into a real `referral-gateway serve` process
while something breaks, then a count of what the senders were told against what the store holds.

Scenarios (each a fresh data directory and database):

- `sigkill`: `serve` (and, one time in three, only its pipeline process) is SIGKILLed at
  random moments and `serve` is restarted on the same ports (SQLite, `synchronous=FULL`);
- `postgres`: the gateway's own PostgreSQL cluster (initdb in a temporary folder, a free
  port; never the shared server) is stopped (`-m immediate`: connections cut, no checkpoint)
  at random moments and started again a few seconds later;
- `disk-full`: the data directory (SQLite, its WAL, the key ring) is a small tmpfs mount
  filled to the last byte at random moments and emptied again; without permission to mount
  (not root), `serve` runs under RLIMIT_FSIZE instead, so its files cannot grow, and is
  restarted without the limit to end the fault;
- `cut`: senders close their connection mid-frame (part of a message sent) or right after a
  whole frame, before reading its ACK, and send the message again on a new connection.

The senders behave as interface engines do: one message at a time per connection, the reply
read before the next; whatever was not acknowledged (AE, no answer, a cut connection, a 503)
is sent again until it is. At the end, with the faults over and the pipeline drained:

- sent: messages (distinct) and send attempts;
- acknowledged: MLLP AA / FHIR 200, each checked to carry the control id just sent;
- lost: acknowledged but not in the inbox as processed or filtered (must be 0);
- processed twice: inbox rows processed more than once, or an attendance with two referrals
  (must be 0);
- acknowledged while the database was down: an AA or a FHIR 200 for a message sent after the
  database stopped and answered before it started again (must be 0; AE and 503 are right);
- other answers, by code: a 500 is a defect (the database down is a 503).

Run: python bench/faults.py [--seconds 60] [--scenario sigkill postgres disk-full cut]
     (the test suite runs the same scenarios for a few seconds each: tests/spine/test_faults.py)
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import queue
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.hl7.synthetic import SyntheticEd  # noqa: E402
from bench.bench_fhir import attendance_bundle, create_token  # noqa: E402
from bench.private_postgres import PrivatePostgres  # noqa: E402
from bench.serve_process import ServeProcess, start_serve  # noqa: E402

SCENARIOS = ("sigkill", "postgres", "disk-full", "cut")
START, END = b"\x0b", b"\x1c\r"


# -- the stream --------------------------------------------------------------------------
@dataclass
class Item:
    channel: str  # "hl7v2" | "fhir"
    payload: bytes  # ER7 message, or a transaction Bundle
    key: str  # MSH-10, or the Bundle's serial number
    acked: bool = False
    rejected: str = ""  # an answer that sending again will not change (AR, 4xx)
    stored_as: tuple[str, ...] = ()  # inbox message keys: MSH-10, or the FHIR answer's locations


@dataclass
class Reply:
    channel: str
    sent_at: float
    answered_at: float
    code: str  # AA, AE, AR, CA..., an HTTP status, or "cut" / "no answer"


@dataclass
class Tally:
    replies: list[Reply] = field(default_factory=list)
    wrong_control_id: int = 0
    cuts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, reply: Reply) -> None:
        with self.lock:
            self.replies.append(reply)


def hl7_items(count: int, seed: int) -> list[Item]:
    ed = SyntheticEd(
        seed=seed, site="RYY02", start=datetime(2026, 6, 1, 9, tzinfo=UTC), assault_share=0.3
    )
    items = []
    for message in list(ed.stream(count))[:count]:
        control_id = message.split("\r", 1)[0].split("|")[9]
        items.append(Item("hl7v2", message.encode(), control_id, stored_as=(control_id,)))
    return items


def fhir_items(count: int, offset: int) -> list[Item]:
    """Transaction Bundles whose every entry is a conditional create on an identifier, so a
    Bundle sent again after a lost answer matches what the first one stored."""
    items = []
    for n in range(offset, offset + count):
        bundle = json.loads(attendance_bundle(n))
        encounter, condition = bundle["entry"][1], bundle["entry"][2]
        visit = encounter["resource"]["identifier"][0]
        encounter["request"]["ifNoneExist"] = f"identifier={visit['system']}|{visit['value']}"
        condition["resource"]["identifier"] = [
            {"system": "https://rxx.example.nhs.uk/Id/diagnosis", "value": f"DX-{n:08d}"}
        ]
        condition["request"]["ifNoneExist"] = (
            f"identifier=https://rxx.example.nhs.uk/Id/diagnosis|DX-{n:08d}"
        )
        items.append(Item("fhir", json.dumps(bundle).encode(), f"bundle-{n}"))
    return items


def msa(reply: bytes) -> tuple[str, str]:
    for segment in reply.decode("utf-8", "replace").replace("\n", "\r").split("\r"):
        if segment.startswith("MSA"):
            fields = segment.split(segment[3] if len(segment) > 3 else "|")
            return fields[1], fields[2] if len(fields) > 2 else ""
    return "", ""


class Stream:
    """Senders (threads) that work through the items until each is acknowledged or refused
    for good, pacing new messages at the given rates."""

    def __init__(
        self,
        target: Callable[[], ServeProcess],
        fhir_token: str,
        items: list[Item],
        *,
        hl7_connections: int = 4,
        fhir_clients: int = 4,
        rate: float = 100.0,
        cut_share: float = 0.0,
        seed: int = 1,
    ) -> None:
        self.target, self.token, self.items = target, fhir_token, items
        self.tally = Tally()
        self.cut_share = cut_share
        self.rng = random.Random(seed)
        self.queues: dict[str, queue.Queue[Item]] = {"hl7v2": queue.Queue(), "fhir": queue.Queue()}
        for item in items:
            self.queues[item.channel].put(item)
        self.gap = 1.0 / rate if rate else 0.0
        self.next_due = time.monotonic()
        self.pace = threading.Lock()
        self.threads = [
            threading.Thread(target=self._hl7_sender, args=(i,), daemon=True)
            for i in range(hl7_connections)
        ] + [threading.Thread(target=self._fhir_sender, daemon=True) for _ in range(fhir_clients)]
        self.stopping = threading.Event()

    # -- running
    def start(self) -> Stream:
        for t in self.threads:
            t.start()
        return self

    def wait(self, timeout: float, progress: Callable[[str], None] | None = None) -> bool:
        """Until every item is settled (acknowledged or refused for good)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.settled() == len(self.items):
                break
            if progress:
                progress(self.status())
            time.sleep(0.5)
        self.stopping.set()
        for t in self.threads:
            t.join(15)
        return self.settled() == len(self.items)

    def settled(self) -> int:
        return sum(1 for i in self.items if i.acked or i.rejected)

    def status(self) -> str:
        acked = sum(1 for i in self.items if i.acked)
        return f"{acked}/{len(self.items)} acknowledged, {len(self.tally.replies)} answers"

    def _paced(self) -> None:
        with self.pace:
            now = time.monotonic()
            due = self.next_due = max(self.next_due + self.gap, now - 1.0)
        if due > now:
            time.sleep(due - now)

    def _take(self, channel: str) -> Item | None:
        while not self.stopping.is_set():
            try:
                return self.queues[channel].get(timeout=0.2)
            except queue.Empty:
                continue
        return None

    def _again(self, item: Item) -> None:
        time.sleep(0.05)
        self.queues[item.channel].put(item)

    # -- MLLP
    def _hl7_sender(self, index: int) -> None:
        sock: socket.socket | None = None
        buffer = b""
        while (item := self._take("hl7v2")) is not None:
            self._paced()
            sent_at = time.monotonic()
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.target().mllp_port), 5)
                    buffer = b""
                frame = START + item.payload + END
                roll = self.rng.random()
                if roll < self.cut_share / 2:  # cut mid-frame
                    sock.sendall(frame[: self.rng.randrange(1, len(frame) - 1)])
                    raise _Cut
                sock.sendall(frame)
                if roll < self.cut_share:  # the whole frame, then gone before the ACK
                    raise _Cut
                while END not in buffer:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed")
                    buffer += chunk
                reply, buffer = buffer.split(END, 1)
            except _Cut:
                with self.tally.lock:
                    self.tally.cuts += 1
                self.tally.add(Reply("hl7v2", sent_at, time.monotonic(), "cut"))
                sock = _close(sock)
                self._again(item)
                continue
            except OSError:
                self.tally.add(Reply("hl7v2", sent_at, time.monotonic(), "no answer"))
                sock = _close(sock)
                self._again(item)
                time.sleep(0.2)
                continue
            code, control_id = msa(reply)
            self.tally.add(Reply("hl7v2", sent_at, time.monotonic(), code or "?"))
            if control_id != item.key:
                with self.tally.lock:
                    self.tally.wrong_control_id += 1
            if code == "AA" and control_id == item.key:
                item.acked = True
            elif code == "AR":
                item.rejected = "AR"
            else:
                self._again(item)
        _close(sock)

    # -- FHIR
    def _fhir_sender(self) -> None:
        conn: http.client.HTTPConnection | None = None
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/fhir+json"}
        while (item := self._take("fhir")) is not None:
            self._paced()
            sent_at = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.target().http_port, 10)
                conn.request("POST", "/fhir", item.payload, headers)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                self.tally.add(Reply("fhir", sent_at, time.monotonic(), "no answer"))
                if conn is not None:
                    conn.close()
                conn = None
                self._again(item)
                time.sleep(0.2)
                continue
            self.tally.add(Reply("fhir", sent_at, time.monotonic(), str(response.status)))
            if response.status == 200:
                answer = json.loads(body)
                item.stored_as = tuple(e["response"]["location"] for e in answer.get("entry", []))
                item.acked = True
            elif 400 <= response.status < 500 and response.status != 429:
                item.rejected = str(response.status)
            else:
                self._again(item)
        if conn is not None:
            conn.close()


class _Cut(Exception):
    pass


def _close(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


# -- the gateway under test ------------------------------------------------------------------
class Gateway:
    """One `serve` process that can be killed and restarted on the same ports."""

    def __init__(self, data_dir: Path, database_url: str, **serve: Any) -> None:
        self.data_dir, self.database_url = data_dir, database_url
        self.log = data_dir.parent / f"{data_dir.name}-serve.log"
        self.serve_options = serve
        self.current = start_serve(data_dir, database_url, log_file=self.log, **serve)

    def __call__(self) -> ServeProcess:
        return self.current

    def kill(self, *, pipeline_only: bool = False) -> None:
        pids = self.current.pids
        if pipeline_only and len(pids) > 1:
            os.kill(pids[1], signal.SIGKILL)
            return
        os.kill(pids[0], signal.SIGKILL)
        self.current.proc.wait(10)

    def restart(self, preexec: Callable[[], None] | None = None) -> None:
        if self.current.proc.poll() is None:
            self.kill()
        self.current = start_serve(
            self.data_dir,
            self.database_url,
            http_port=self.current.http_port,
            mllp_port=self.current.mllp_port,
            log_file=self.log,
            preexec_fn=preexec,
            **self.serve_options,
        )

    def stop(self) -> None:
        proc = self.current.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- faults ------------------------------------------------------------------------------
@dataclass
class Window:
    """A time the database could not have taken a write."""

    start: float
    end: float


class Injector(threading.Thread):
    """Calls `fault()` at random moments (gaps drawn from `gap`) until told to stop."""

    def __init__(self, fault: Callable[[], None], gap: tuple[float, float], seed: int) -> None:
        super().__init__(daemon=True)
        self.fault, self.gap, self.rng = fault, gap, random.Random(seed)
        self.halt = threading.Event()
        self.count = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.halt.wait(self.rng.uniform(*self.gap)):
                self.fault()
                self.count += 1
        except BaseException as exc:  # reported by the run, which stops
            self.error = exc

    def finish(self) -> None:
        self.halt.set()
        self.join(120)
        if self.error is not None:
            raise self.error


@dataclass
class Outcome:
    scenario: str
    database: str
    faults: int
    fault_detail: str
    messages: int
    hl7: int
    fhir: int
    send_attempts: int
    acknowledged: int
    refused_answers: dict[str, int]
    rejected: int
    lost: int
    processed_twice: int
    acked_while_down: int
    refused_while_down: int
    while_full: dict[str, int]
    wrong_control_id: int
    cuts: int
    errors_in_store: dict[str, int]
    unsettled: int
    seconds: float

    def lines(self) -> list[str]:
        refused = ", ".join(f"{k} {v}" for k, v in sorted(self.refused_answers.items())) or "none"
        return [
            f"{self.scenario} ({self.database}): {self.faults} faults ({self.fault_detail}), "
            f"{self.seconds:.0f} s",
            f"  sent: {self.messages} messages ({self.hl7} HL7 v2, {self.fhir} FHIR Bundles), "
            f"{self.send_attempts} send attempts ({self.cuts} connections cut by the sender)",
            f"  acknowledged: {self.acknowledged} (AA / 200); other answers: {refused}",
            f"  lost (acknowledged, not processed): {self.lost}; processed twice: "
            f"{self.processed_twice}; acknowledged while the database was down: "
            f"{self.acked_while_down} (refused meanwhile: {self.refused_while_down})",
            *(
                [
                    f"  while the disk was full: {self.while_full['refused']} refused (AE / 503), "
                    f"{self.while_full['acknowledged']} acknowledged (written into space SQLite "
                    "had already allocated; each checked above like any other)"
                ]
                if self.fault_detail.endswith("filled and freed")
                else []
            ),
            *(f"    error store: {n} of {why}" for why, n in self.errors_in_store.items()),
            f"  replies carrying another message's control id: {self.wrong_control_id}; "
            f"refused for good (AR, 4xx): {self.rejected}; in the error store: "
            f"{sum(self.errors_in_store.values())}; never settled: {self.unsettled}",
        ]


def run_scenario(
    scenario: str,
    workdir: Path,
    *,
    seconds: float,
    rate: float = 100.0,
    fhir_share: float = 0.2,
    seed: int = 11,
    mount: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Outcome:
    """One scenario, from a fresh data directory to the count."""
    say = progress or (lambda _line: None)
    total = int(rate * seconds)
    n_fhir = int(total * fhir_share)
    items = hl7_items(total - n_fhir, seed)
    order = random.Random(seed)
    for bundle in fhir_items(n_fhir, seed * 1000):  # among the ADT messages, which keep their order
        items.insert(order.randrange(len(items) + 1), bundle)
    data = workdir / scenario / "data"
    data.parent.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        database = "SQLite"
        postgres: PrivatePostgres | None = None
        if scenario == "postgres":
            postgres = stack.enter_context(PrivatePostgres())
            url, database = postgres.url, "PostgreSQL 15, a private cluster"
        else:
            url = f"sqlite:///{data / 'gateway.db'}"
        disk = DiskFull(data, mount=mount) if scenario == "disk-full" else None
        if disk is not None:
            stack.callback(disk.release)
            database += f", data directory {disk.how}"
        data.mkdir(exist_ok=True)
        token = create_token(data, url)
        gateway = Gateway(data, url)
        stack.callback(gateway.stop)
        engine = create_engine(url)
        stack.callback(engine.dispose)
        stream = Stream(
            gateway,
            token,
            items,
            rate=rate,
            cut_share=0.15 if scenario == "cut" else 0.0,
            seed=seed,
        )
        windows: list[Window] = []  # the database down
        full: list[Window] = []  # the disk full
        detail: dict[str, int] = {}
        rng = random.Random(seed + 1)

        def note(what: str) -> None:
            detail[what] = detail.get(what, 0) + 1

        def sigkill() -> None:
            pipeline_only = rng.random() < 1 / 3
            gateway.kill(pipeline_only=pipeline_only)
            note("pipeline process killed" if pipeline_only else "serve killed")
            if not pipeline_only:
                time.sleep(rng.uniform(0.0, 0.5))
                gateway.restart()

        def postgres_down() -> None:
            assert postgres is not None
            postgres.stop("immediate" if rng.random() < 0.5 else "fast")
            down = time.monotonic()
            time.sleep(rng.uniform(1.0, 3.0))
            up = time.monotonic()
            postgres.start()
            windows.append(Window(down, up))
            note("stopped and started")

        def disk_full() -> None:
            assert disk is not None
            disk.fill(gateway)
            filled = time.monotonic()
            time.sleep(rng.uniform(1.0, 3.0))
            full.append(Window(filled, time.monotonic()))
            disk.release(gateway)
            note("filled and freed")

        fault = {"sigkill": sigkill, "postgres": postgres_down, "disk-full": disk_full}.get(
            scenario
        )
        started = time.monotonic()
        stream.start()
        injector = None
        if fault is not None:
            injector = Injector(fault, (0.5, 2.5) if scenario == "sigkill" else (1.0, 4.0), seed)
            injector.start()
        # the faults run while new messages are still going out
        while time.monotonic() - started < seconds and stream.settled() < len(items):
            say(f"{scenario}: {stream.status()}")
            time.sleep(1.0)
        if injector is not None:
            injector.finish()
        if disk is not None:
            disk.release(gateway)
        if gateway().proc.poll() is not None:  # killed by the last fault, not yet restarted
            gateway.restart()
        if scenario == "cut":
            stream.cut_share = 0.0  # the last sends of each message go through
        finished = stream.wait(
            timeout=max(60.0, seconds), progress=lambda s: say(f"{scenario}: {s}")
        )
        say(f"{scenario}: stream {'settled' if finished else 'NOT settled'}; draining the pipeline")
        drain(engine, timeout=max(60.0, seconds))
        elapsed = time.monotonic() - started
        counts = check_store(engine, items)
    replies = stream.tally.replies
    good = {"AA", "200"}
    refused: dict[str, int] = {}
    for r in replies:
        if r.code not in good:
            refused[r.code] = refused.get(r.code, 0) + 1

    def within(spans: list[Window]) -> list[Reply]:
        return [
            r
            for r in replies
            if any(w.start <= r.sent_at and r.answered_at <= w.end for w in spans)
        ]

    during, while_full = within(windows), within(full)
    return Outcome(
        scenario=scenario,
        database=database,
        faults=injector.count if injector else stream.tally.cuts,
        fault_detail=", ".join(f"{v} {k}" for k, v in detail.items())
        or ("cuts mid-frame and before the ACK" if scenario == "cut" else "none"),
        messages=len(items),
        hl7=sum(1 for i in items if i.channel == "hl7v2"),
        fhir=sum(1 for i in items if i.channel == "fhir"),
        send_attempts=len(replies),
        acknowledged=sum(1 for i in items if i.acked),
        refused_answers=refused,
        rejected=sum(1 for i in items if i.rejected),
        lost=counts.lost,
        processed_twice=counts.twice,
        acked_while_down=sum(1 for r in during if r.code in good),
        refused_while_down=sum(1 for r in during if r.code not in good),
        while_full={
            "acknowledged": sum(1 for r in while_full if r.code in good),
            "refused": sum(1 for r in while_full if r.code not in good),
        },
        wrong_control_id=stream.tally.wrong_control_id,
        cuts=stream.tally.cuts,
        errors_in_store=counts.errors,
        unsettled=len(items) - stream.settled(),
        seconds=elapsed,
    )


def drain(engine: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if not conn.execute(
                text("select count(*) from inbound_message where state = 'pending'")
            ).scalar():
                return
        time.sleep(0.2)


@dataclass
class StoreCheck:
    lost: int
    twice: int
    errors: dict[str, int]  # what the error store says, and how many times


def check_store(engine: Any, items: list[Item]) -> StoreCheck:
    """Lost: an acknowledged message whose every inbox row is not processed or filtered.
    Twice: an inbox row processed more than once, or an attendance with two referrals."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "select channel, message_key, state, attempts, error_stage, error_detail "
                "from inbound_message"
            )
        ).all()
        two_referrals = conn.execute(
            text(
                "select count(*) from (select attendance_id from referral "
                "group by attendance_id having count(*) > 1) x"
            )
        ).scalar()
    state = {(r.channel, r.message_key): r.state for r in rows}
    lost = 0
    for item in items:
        if not item.acked:
            continue
        if not item.stored_as or any(
            state.get((item.channel, key)) not in ("processed", "filtered")
            for key in item.stored_as
        ):
            lost += 1
    twice = sum(1 for r in rows if r.attempts > 1) + int(two_referrals or 0)
    errors: dict[str, int] = {}
    for r in rows:
        if r.state == "error":
            why = f"{r.channel} {r.error_stage}: {(r.error_detail or '')[:120]}"
            errors[why] = errors.get(why, 0) + 1
    return StoreCheck(lost, twice, errors)


# -- a full disk -------------------------------------------------------------------------
class DiskFull:
    """The data directory on a small tmpfs filled to the last byte by a filler file; where
    mounting is not allowed, `serve` restarted under RLIMIT_FSIZE (no file may grow)."""

    SIZE = 256 * 1024 * 1024

    def __init__(self, data: Path, *, mount: bool = True) -> None:
        self.data = data
        data.mkdir(parents=True, exist_ok=True)
        self.mounted = mount and (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={self.SIZE}", "tmpfs", str(data)],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        )
        self.how = "on a 256 MiB tmpfs filled by a file" if self.mounted else "under RLIMIT_FSIZE"
        self.filler = data / "filler"
        self.full = False

    def fill(self, gateway: Gateway) -> None:
        if self.mounted:
            fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                for size in (1 << 20, 4096, 1):  # to the last byte
                    with contextlib.suppress(OSError):
                        while os.write(fd, b"\0" * size):
                            pass
            finally:
                os.close(fd)
        else:
            largest = max(f.stat().st_size for f in self.data.iterdir() if f.is_file())
            gateway.restart(preexec=lambda: _no_file_growth(largest))
        self.full = True

    def release(self, gateway: Gateway | None = None) -> None:
        if not self.full and gateway is not None:
            return
        if self.mounted:
            self.filler.unlink(missing_ok=True)
            if gateway is None:  # the end: unmount
                subprocess.run(["umount", "-l", str(self.data)], check=False)
        elif gateway is not None:
            gateway.restart()
        self.full = False


def _no_file_growth(limit: int) -> None:
    """In the child before exec: no file may grow past `limit` bytes (the largest file in the
    data directory when the disk "filled"), as on a full disk space already allocated can
    still be written; Python ignores SIGXFSZ, so a write past it fails with EFBIG."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


# -- the long form ---------------------------------------------------------------------------
def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}, load average {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    ap.add_argument("--seconds", type=float, default=60.0, help="stream and faults, per scenario")
    ap.add_argument("--rate", type=float, default=100.0, help="messages/s, all senders together")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument(
        "--no-mount",
        action="store_true",
        help="disk-full by RLIMIT_FSIZE even where mounting works",
    )
    args = ap.parse_args()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}", flush=True)
    failed = False
    with tempfile.TemporaryDirectory(prefix="rg-faults-") as tmp:
        for scenario in args.scenario:
            outcome = run_scenario(
                scenario,
                Path(tmp),
                seconds=args.seconds,
                rate=args.rate,
                seed=args.seed,
                mount=not args.no_mount,
                progress=lambda line: print(f"  … {line}", flush=True),
            )
            for line in outcome.lines():
                print(line, flush=True)
            failed |= bool(
                outcome.lost
                or outcome.processed_twice
                or outcome.acked_while_down
                or outcome.refused_answers.get("500")
            )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
