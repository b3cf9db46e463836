"""A whole gateway (storage, intake, pipeline, MLLP listener) running in-process on a free
port, for tests that talk to it through a real socket."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adapters.hl7.channel import Hl7Intake
from adapters.hl7.mllp import MllpLimits, MllpServer
from referral_gateway.config import Settings
from referral_gateway.entrypoints.pipeline_process import PipelineProcess
from referral_gateway.wiring.gateway import Gateway, build_gateway
from referral_gateway.wiring.mllp import build_hl7_intake, build_mllp_server
from tests.waiting import wait_until


@dataclass
class RunningGateway:
    gateway: Gateway
    port: int
    loop: asyncio.AbstractEventLoop
    server: MllpServer
    thread: threading.Thread
    hl7: Hl7Intake

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        asyncio.run_coroutine_threadsafe(self.hl7.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.gateway.stop()

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        return wait_until(predicate, timeout, interval=0.02)


def start_gateway(
    data_dir: Path,
    database_url: str,
    limits: MllpLimits | None = None,
    *,
    pipeline_process: bool = False,
    **settings: object,
) -> RunningGateway:
    config = Settings(data_dir=data_dir, database_url=database_url, **settings)  # type: ignore[arg-type]
    gateway = build_gateway(
        config, pipeline_process=PipelineProcess if pipeline_process else None
    ).start()
    loop = asyncio.new_event_loop()
    hl7 = build_hl7_intake(config, gateway)
    server = build_mllp_server(config, hl7, host="127.0.0.1", port=0, limits=limits)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    return RunningGateway(gateway, server.port, loop, server, thread, hl7)


def frame(message: str) -> bytes:
    return b"\x0b" + message.encode("utf-8") + b"\x1c\r"


def msa(ack: str) -> tuple[str, str]:
    """(code, control id echoed) from an ACK's MSA segment."""
    for segment in ack.replace("\n", "\r").split("\r"):
        if segment.startswith("MSA"):
            fields = segment.split("|")
            return fields[1], fields[2] if len(fields) > 2 else ""
    raise AssertionError("no MSA segment in the ACK")


def sender_site_file(folder: Path, site: str = "RXX01", **mllp: object) -> str:
    """A site file whose `[sites.<site>.mllp]` table holds `mllp` (strings, numbers, lists
    of strings), for `start_gateway(..., config_file=...)`."""

    def value(v: object) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return f'"{v}"' if isinstance(v, str) else str(v)

    lines = [f"[sites.{site}]", f'name = "{site} test ED"', "", f"[sites.{site}.mllp]"]
    lines += [f"{key} = {value(v)}" for key, v in mllp.items()]
    path = folder / "sites.toml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return str(path)
