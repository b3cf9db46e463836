"""Replay HL7 files through the same intake and pipeline as the live feed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from referral_gateway.config import Settings
from referral_gateway.storage.inbox import Stored
from referral_gateway.wiring.gateway import build_gateway
from referral_gateway.wiring.mllp import build_hl7_intake


def replay_files(
    settings: Settings, files: Sequence[Path], *, progress: bool = True
) -> dict[str, Any]:
    gateway = build_gateway(settings)
    gateway.intake.start()
    try:
        intake = build_hl7_intake(settings, gateway)
        received = [item for f in files for item in intake.receive(f.read_bytes())]
        arrivals = [item.arrival for item in received if item.arrival is not None]
        futures = [gateway.intake.submit(arrival) for arrival in arrivals]
        stored: list[Stored] = []
        for fut in tqdm(futures, desc="storing", unit="msg", disable=not progress):
            stored.append(fut.result())
        new = sum(1 for s in stored if not s.duplicate)
        processed = candidates = errors = filtered = 0
        with tqdm(total=new, desc="processing", unit="msg", disable=not progress) as bar:
            while True:
                r = gateway.local_pipeline().process_pending()
                if r.processed == 0:
                    break
                processed += r.processed
                candidates += r.candidates
                errors += r.errors
                filtered += r.filtered
                bar.update(r.processed)
    finally:
        gateway.stop()
    return {
        "messages": len(received),
        "refused": len(received) - len(arrivals),  # MSH-4 not a configured sender
        "duplicates": len(stored) - new,
        "processed": processed,
        "candidates": candidates,
        "filtered": filtered,
        "errors": errors,
    }
