"""The pipeline in a process of its own, for `serve`.

A Python process runs one thread of Python at a time, so under a busy feed the MLLP
listener, the HTTP server and the pipeline would take turns on one core. `serve` therefore
runs the pipeline in a second process (`RG_PIPELINE_PROCESS`, on by default) and the two
halves use two cores. Nothing else changes: the pipeline claims each batch before it works
on it, SQLite writers of both processes queue on the same `WriteGate`, and a message's
effects and its "processed" mark are still committed together.

Two pipes join the processes:

- parent to child, a wake-up after each intake commit. Closing it tells the child to stop
  after the batch in hand, and the child stops the same way when the parent dies (even by
  SIGKILL): it reads end-of-file.
- child to parent, after each committed batch: each message's final state (for enhanced
  application ACKs) and the referral news (for the live queue), ids and words only.

If the child dies, the parent says so in its log and starts another; pending messages wait
in the inbox meanwhile.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection

from referral_gateway.config import Settings
from referral_gateway.domain.referral import ReferralNews, ReferralUpdate
from referral_gateway.entrypoints.process_name import name_this_process
from referral_gateway.entrypoints.supervised import Supervised
from referral_gateway.observability.logs import configure_logging
from referral_gateway.services.pipeline import Pipeline

BuildPipeline = Callable[[Settings], Pipeline]
"""Builds the pipeline inside the new process (the composition root's
`build_process_pipeline`, handed in: a module-level function, so it crosses to the child by
name)."""

log = logging.getLogger(__name__)

News = tuple[tuple[tuple[int, str], ...], tuple[tuple[str, str, str, bool], ...]]
"""(message states, (referral id, site, ReferralUpdate value) in order) for one batch."""


class PipelineProcess(Supervised):
    """Starts, wakes, relays for and stops the pipeline's own process."""

    what = "pipeline process"
    relay_name = "pipeline-relay"

    def __init__(
        self,
        settings: Settings,
        *,
        build: BuildPipeline,
        on_processed: Callable[[Sequence[tuple[int, str]]], None],
        on_referral: Callable[[ReferralNews], None],
        poll_interval: float = 1.0,
        restart_delay: float = 1.0,
    ) -> None:
        super().__init__(restart_delay=restart_delay)
        self.settings = settings
        self.build = build
        self.on_processed = on_processed
        self.on_referral = on_referral
        self.poll_interval = poll_interval

    def start(self) -> PipelineProcess:
        self._start_supervising()
        return self

    def wake(self) -> None:
        with self._lock:
            if self._to_child is None:
                return
            try:
                self._to_child.send_bytes(b"w")
            except BlockingIOError:
                pass  # the pipe is full: the child has wake-ups waiting already
            except OSError:
                pass  # the child is gone; the relay thread starts another

    def stop(self) -> None:
        self._stop_supervising()  # the child finishes its batch and exits

    # -- parent side ---------------------------------------------------------------------
    def _spawn(self) -> Connection:
        ctx = mp.get_context("spawn")  # a fresh interpreter: no threads or locks inherited
        wake_read, wake_write = ctx.Pipe(duplex=False)
        news_read, news_write = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=run_pipeline_process,
            args=(self.settings, self.build, wake_read, news_write, self.poll_interval),
            name="referral-gateway-pipeline",
            daemon=True,
        )
        process.start()
        wake_read.close()  # only the child holds these ends now: end-of-file means "gone"
        news_write.close()
        os.set_blocking(wake_write.fileno(), False)  # a wake-up never blocks an intake commit
        self._adopt(process, wake_write)
        log.info("pipeline process started (pid %s)", process.pid)
        return news_read

    def _relay_news(self, news: Connection) -> None:
        while True:
            try:
                batch: News = news.recv()
            except (EOFError, OSError):
                return
            states, updates = batch
            try:
                if states:
                    self.on_processed(states)
                for referral_id, site, word, possible in updates:
                    self.on_referral(
                        ReferralNews(referral_id, site, ReferralUpdate(word), possible=possible)
                    )
            except Exception as exc:  # a listener must never stop the relay
                log.warning("relaying pipeline news failed: %s", type(exc).__name__)


# -- child side -------------------------------------------------------------------------
def run_pipeline_process(
    settings: Settings,
    build: BuildPipeline,
    wake: Connection,
    news: Connection,
    poll_interval: float,
) -> None:
    """The child's whole life: build the pipeline, then process whenever woken (or every
    `poll_interval` seconds) until the wake pipe closes. A wake-up waits
    `RG_PROCESSING_GATHER_MS` first, so that one batch serves several commits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the parent decides
    configure_logging(settings.log_format)  # as the parent's: RG_LOG_FORMAT, no identifiers
    name_this_process("rg-pipeline")
    pipeline = build(settings)
    gather = settings.processing_gather_ms / 1000
    try:
        while True:
            try:
                if wake.poll(poll_interval):
                    time.sleep(gather)
                    while wake.poll(0):  # every wake-up so far is served by the pass below
                        wake.recv_bytes()
            except (EOFError, OSError):
                return  # the parent stopped us, or died
            try:
                while True:
                    result = pipeline.process_pending()
                    if result.processed:
                        words = tuple(
                            (n.referral_id, n.site, n.update.value, n.possible)
                            for n in result.updates
                        )
                        batch: News = (result.states, words)
                        news.send(batch)
                    if result.processed < pipeline.batch_size:
                        break  # caught up: wait for the next wake-up
            except (BrokenPipeError, EOFError):
                return  # the parent is gone; what was committed stays committed
            except Exception as exc:  # keep running: the messages stay pending
                log.error("pipeline pass failed: %s", type(exc).__name__)
                time.sleep(1.0)
    finally:
        pipeline.engine.dispose()
