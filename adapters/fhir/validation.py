"""Validating what a client sent: on the event loop, or in a process of its own.

Validation with the R4B models is the costliest step of a FHIR request (about half a
millisecond of CPU for a Bundle of a Patient, an Encounter and a Condition) and it holds
the serve process's GIL while it runs, so the FHIR writer's thread, the MLLP listener and
every other request wait for it. `serve` therefore validates in a second process
(`RG_FHIR_VALIDATION_PROCESS`, on by default) and the event loop only hands it the body and
reads back the result, never blocking:

    routes ──Check (the raw body, type, id, precondition)──▶ validation process
           ◀──the BundleRequest / Interaction, or the FhirError to answer with──

Both directions go over one socket pair in `multiprocessing.Connection` framing (a 4-byte
length, then a pickle; both ends are the gateway's own processes). The process answers in
the order it was asked, so the parent matches answers to requests by order alone.

If the process dies, the requests it held are answered 503 (nothing was stored, so the
client's retry is safe) and the next request starts another. `InlineValidator` does the
same work on the calling thread, for in-process apps and tests.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import multiprocessing as mp
import os
import pickle
import signal
import socket
import struct
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, cast

from adapters.fhir import interactions
from adapters.fhir.errors import FhirError, ValidatorUnavailable
from adapters.fhir.interactions import BundleRequest
from adapters.fhir.writer import Interaction

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("!i")  # multiprocessing.Connection's frame header
UNAVAILABLE = "the gateway could not check the request; try again"


@dataclass(frozen=True)
class Check:
    """One request to validate: its body (already known to be JSON) and what the URL and
    headers add."""

    kind: str  # "bundle" (POST to the base) | "create" | "update"
    body: bytes
    resource_type: str = ""
    resource_id: str = ""
    condition: str | None = None  # If-None-Exist (create) or If-Match (update)

    def __repr__(self) -> str:  # never the body
        return f"Check({self.kind} {self.resource_type}/{self.resource_id}, {len(self.body)} B)"


def run_check(check: Check) -> BundleRequest | Interaction:
    """Validate and read one request; raises the FhirError to answer with."""
    body = json.loads(check.body)
    if check.kind == "bundle":
        return interactions.bundle_interactions(body)
    if check.kind == "create":
        return interactions.create(check.resource_type, body, if_none_exist=check.condition)
    if check.kind == "update":
        return interactions.update(
            check.resource_type, check.resource_id, body, if_match=check.condition
        )
    raise ValueError(f"unknown check {check.kind!r}")


class Validator:
    """What the routes call. Subclasses say where `run_check` runs."""

    async def bundle(self, body: bytes) -> BundleRequest:
        result = await self.run(Check("bundle", body))
        assert isinstance(result, BundleRequest)
        return result

    async def create(
        self, resource_type: str, body: bytes, *, if_none_exist: str | None
    ) -> Interaction:
        result = await self.run(Check("create", body, resource_type, condition=if_none_exist))
        assert isinstance(result, Interaction)
        return result

    async def update(
        self, resource_type: str, resource_id: str, body: bytes, *, if_match: str | None
    ) -> Interaction:
        check = Check("update", body, resource_type, resource_id, condition=if_match)
        result = await self.run(check)
        assert isinstance(result, Interaction)
        return result

    async def run(self, check: Check) -> BundleRequest | Interaction:
        raise NotImplementedError

    def start(self) -> Validator:
        return self

    def stop(self) -> None:
        return None


class InlineValidator(Validator):
    """Validation on the calling thread (the event loop)."""

    async def run(self, check: Check) -> BundleRequest | Interaction:
        return run_check(check)


class ValidationProcess(Validator):
    """Validation in a child process, driven from the event loop without blocking it."""

    def __init__(self, *, respawn_after: float = 1.0) -> None:
        self.respawn_after = respawn_after
        self._process: BaseProcess | None = None
        self._sock: socket.socket | None = None  # the parent's end; loops use duplicates
        self._loop: asyncio.AbstractEventLoop | None = None
        self._link: asyncio.Future[_Link] | None = None
        self._spawned_at = 0.0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> ValidationProcess:
        if self._process is None:
            self._spawn()
        return self

    def stop(self) -> None:
        self._detach(ValidatorUnavailable("the gateway is stopping; try again later"))
        self._end_child(wait=10.0)

    async def run(self, check: Check) -> BundleRequest | Interaction:
        link = await self._link_for(asyncio.get_running_loop())
        answer = await link.ask(pickle.dumps(check, protocol=pickle.HIGHEST_PROTOCOL))
        outcome, value = pickle.loads(answer)  # noqa: S301 (our own child, over a socketpair)
        if outcome == "ok":
            return value  # type: ignore[no-any-return]
        if outcome == "error":
            raise value
        raise RuntimeError(f"validation failed in the validation process: {value}")

    async def _link_for(self, loop: asyncio.AbstractEventLoop) -> _Link:
        attached = self._link
        if attached is not None and self._loop is loop:
            if not attached.done():
                return await asyncio.shield(attached)  # another request is attaching it
            link = attached.result() if not attached.exception() else None
            if link is not None and not link.closed:
                return link
        if attached is not None and attached.done() and not attached.exception():
            link = attached.result()
            died, busy = link.closed, link.busy
            self._detach(ValidatorUnavailable(UNAVAILABLE))
            if died or busy:  # answers in flight cannot be matched on a new link: a new child
                self._end_child(wait=0.0)
                if died and time.monotonic() - self._spawned_at < self.respawn_after:
                    raise ValidatorUnavailable(UNAVAILABLE)
        else:
            self._detach(ValidatorUnavailable(UNAVAILABLE))
        if self._sock is None:
            self._spawn()
        assert self._sock is not None
        pending: asyncio.Future[_Link] = loop.create_future()
        self._loop, self._link = loop, pending
        try:
            # a duplicate of our end: another event loop can take over later without the
            # child seeing end-of-file
            _, link = await loop.create_unix_connection(_Link, sock=self._sock.dup())
        except Exception as exc:
            pending.set_exception(exc)
            self._link = None
            raise ValidatorUnavailable(UNAVAILABLE) from None
        pending.set_result(link)
        return link

    def _detach(self, reason: FhirError) -> None:
        attached, self._link, self._loop = self._link, None, None
        if attached is not None and attached.done() and not attached.exception():
            attached.result().close(reason)

    def _spawn(self) -> None:
        ctx = mp.get_context("spawn")  # a fresh interpreter: no threads or locks inherited
        parent, child = ctx.Pipe(duplex=True)  # a socket pair
        process = ctx.Process(
            target=run_validation_process,
            args=(child,),
            name="referral-gateway-fhir-validation",
            daemon=True,
        )
        process.start()
        child.close()  # only the child holds its end now: end-of-file means "gone"
        self._sock = socket.socket(fileno=os.dup(parent.fileno()))
        parent.close()
        self._process = process
        self._spawned_at = time.monotonic()
        log.info("FHIR validation process started (pid %s)", process.pid)

    def _end_child(self, *, wait: float) -> None:
        if self._sock is not None:
            # an empty frame asks the child to exit (an event loop that has ended may still
            # hold a duplicate of this end, so end-of-file alone might never come)
            with contextlib.suppress(OSError):
                self._sock.sendall(_LENGTH.pack(0))
            self._sock.close()
            self._sock = None
        process, self._process = self._process, None
        if process is None:
            return
        process.join(timeout=wait)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)
        elif process.exitcode:
            log.error("the FHIR validation process stopped (exit code %s)", process.exitcode)


class _Link(asyncio.Protocol):
    """The parent's end of the socket: frames out, frames in, answers in order."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._waiting: collections.deque[asyncio.Future[bytes]] = collections.deque()
        self._buffer = bytearray()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    async def ask(self, payload: bytes) -> bytes:
        if self.closed or self._transport is None:
            raise ValidatorUnavailable(UNAVAILABLE)
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting.append(answer)
        self._transport.write(_LENGTH.pack(len(payload)) + payload)
        return await answer

    @property
    def busy(self) -> bool:
        return bool(self._waiting)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                return
            frame = bytes(self._buffer[_LENGTH.size : end])
            del self._buffer[:end]
            if self._waiting:
                answer = self._waiting.popleft()
                if not answer.done():  # the request may have been cancelled meanwhile
                    answer.set_result(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(ValidatorUnavailable(UNAVAILABLE))

    def close(self, reason: FhirError) -> None:
        self.closed = True
        while self._waiting:
            answer = self._waiting.popleft()
            if not answer.done():
                answer.set_exception(reason)
        if self._transport is not None:
            with contextlib.suppress(RuntimeError):  # its event loop may be closed already
                self._transport.close()


# -- child side -----------------------------------------------------------------------------
def run_validation_process(conn: Connection) -> None:
    """The child's whole life: answer checks in order until the parent sends an empty frame
    or its end closes (the parent stopped or died)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the parent decides
    from fhir.resources.R4B import get_fhir_model_class

    from adapters.fhir.checks import SUPPORTED_TYPES

    for kind in (*SUPPORTED_TYPES, "Bundle"):  # load the models before the first request
        get_fhir_model_class(kind)
    while True:
        try:
            frame = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent is gone
        if not frame:
            return  # the parent asked us to stop
        check = pickle.loads(frame)  # noqa: S301 (our parent, over a socketpair)
        answer: tuple[str, Any]
        try:
            answer = ("ok", run_check(check))
        except FhirError as err:
            answer = ("error", err)
        except Exception as exc:  # a bug of ours: its type only, never the input
            answer = ("failed", type(exc).__name__)
        try:
            conn.send_bytes(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
        except (BrokenPipeError, OSError):
            return
