"""Replay and backfill: files and directories of HL7 messages and FHIR bulk export NDJSON
files through the same intake and pipeline as the live feeds.

HL7 files (any name but `*.ndjson`; directories are walked recursively) may hold one or
many messages, MLLP-framed or plain, `\\r` or `\\n` separated, FHS/BHS batches: the live
intake splits them (`Hl7Intake.receive`) and applies the senders' configuration, so a
sender or site the listener would refuse is refused here too. NDJSON files are read as one
export: Encounters are stored with their Patients, Conditions and Observations
(`adapters.fhir.bulk_export`), for the site given (`--site`).

Resumable: a file is recorded (`storage.replay_files`) once its messages are stored and
processed, and a second run skips it; a run killed part way reads its unfinished files
again and the inbox's duplicate check (sender and control id, FHIR resource versions)
keeps anything already stored from counting twice. Messages left pending by a killed run
are processed by the next.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from adapters.fhir.bulk_export import ExportLines, store_export
from adapters.fhir.sources import FhirSource
from referral_gateway.config import Settings
from referral_gateway.storage.replay_files import FileIdentity, ReplayFiles, identify
from referral_gateway.wiring.gateway import Gateway, build_gateway
from referral_gateway.wiring.mllp import build_hl7_intake

log = logging.getLogger(__name__)

NDJSON_SUFFIXES = (".ndjson",)
BULK_SENDER = "bulk-export"


class ReplayError(ValueError):
    """The command cannot run as asked (said to the operator, nothing stored)."""


@dataclass
class ReplaySummary:
    files: int = 0  # files found
    files_skipped: int = 0  # finished by an earlier run
    files_failed: int = 0  # could not be read or stored: read again next run
    messages: int = 0  # HL7 messages and NDJSON lines read
    stored: int = 0  # new in the inbox (FHIR: new resource versions)
    duplicates: int = 0  # already stored (HL7: sender and control id; FHIR: same version)
    refused: int = 0  # HL7 from a sender or site the configuration does not take
    skipped: int = 0  # NDJSON lines that are not part of an ED attendance
    processed: int = 0
    candidates: int = 0
    filtered: int = 0
    errors: int = 0  # messages in the error store (unreadable, unmappable, invalid)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        if self.files and self.files_skipped == self.files:
            return f"all {self.files} file(s) were replayed before: nothing to do"
        return (
            f"{self.files} file(s) ({self.files_skipped} done before, {self.files_failed} "
            f"failed), {self.messages} message(s): {self.stored} stored, {self.duplicates} "
            f"duplicate(s) skipped, {self.refused} refused, {self.candidates} candidate(s), "
            f"{self.errors} error(s)"
        )


def find_files(paths: Sequence[Path]) -> list[Path]:
    """The files named, and those under the directories named (recursively, in name order,
    hidden ones left out; a link to nothing is kept, to be counted as a file that failed)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if (p.is_file() or p.is_symlink())  # a link to nothing: a file that fails
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            found.append(path)
        else:
            raise ReplayError(f"no such file or directory: {path}")
    return found


def is_ndjson(path: Path) -> bool:
    return path.name.lower().endswith(NDJSON_SUFFIXES)


def replay_files(
    settings: Settings,
    paths: Sequence[Path],
    *,
    site: str | None = None,
    sender: str = BULK_SENDER,
    progress: bool = True,
) -> dict[str, Any]:
    """Replay `paths` (files or directories) and return the summary's counts."""
    return run_replay(settings, paths, site=site, sender=sender, progress=progress).as_dict()


def run_replay(
    settings: Settings,
    paths: Sequence[Path],
    *,
    site: str | None = None,
    sender: str = BULK_SENDER,
    progress: bool = True,
) -> ReplaySummary:
    files = find_files(paths)
    hl7_files = [f for f in files if not is_ndjson(f)]
    ndjson_files = [f for f in files if is_ndjson(f)]
    if ndjson_files and not site:
        raise ReplayError("FHIR NDJSON files need the site they come from (--site)")
    summary = ReplaySummary(files=len(files))
    gateway = build_gateway(settings)
    if site and len(gateway.sites) and not gateway.sites.is_configured(site):
        gateway.stop()
        raise ReplayError(f"site {site} is not in the site configuration")
    gateway.intake.start()
    gateway.fhir.writer.start()
    done = ReplayFiles(gateway.engine)
    total = sum(f.stat().st_size for f in files if f.exists())
    bar = tqdm(
        total=total,
        desc="replay",
        unit="B",
        unit_scale=True,
        disable=not progress,
        smoothing=0.1,
    )
    try:
        _drain(gateway, summary)  # what a killed run stored and did not process
        hl7 = build_hl7_intake(settings, gateway)
        for data, identity in _unfinished(hl7_files, done, summary, bar):
            try:
                received = hl7.receive(data)
                summary.messages += len(received)
                arrivals = [item.arrival for item in received if item.arrival is not None]
                summary.refused += len(received) - len(arrivals)
                futures = [gateway.intake.submit(arrival) for arrival in arrivals]
                for arrival, future in zip(arrivals, futures, strict=True):
                    if future.result().duplicate:
                        summary.duplicates += 1
                    else:
                        summary.stored += 1
                        summary.errors += arrival.state == "error"  # unreadable: not processed
                _drain(gateway, summary)
                done.record(identity, kind="hl7", messages=len(received), now=gateway.clock())
            except Exception as exc:
                summary.files_failed += 1
                log.error("replay of a file failed: %s (read again next run)", type(exc).__name__)
            bar.update(len(data))
            bar.set_postfix(messages=summary.messages, candidates=summary.candidates)
        if ndjson_files:
            assert site is not None
            _replay_export(gateway, ndjson_files, done, summary, bar, site, sender)
    finally:
        bar.close()
        gateway.fhir.writer.stop()
        gateway.intake.stop()
        gateway.stop()
    return summary


def _unfinished(
    files: Sequence[Path], done: ReplayFiles, summary: ReplaySummary, bar: tqdm[Any]
) -> Iterator[tuple[bytes, FileIdentity]]:
    """Each file not finished by an earlier run, read; a finished one is taken off the
    bar's total (so the rate and ETA are of the work left), an unreadable one counted."""
    for path in files:
        read = _read(path, summary)
        if read is None or _skipped(*read, done, summary, bar):
            continue
        yield read


def _read(path: Path, summary: ReplaySummary) -> tuple[bytes, FileIdentity] | None:
    """The file's bytes and identity, or None (counted and logged) when it cannot be read."""
    try:
        data = path.read_bytes()
        return data, identify(path, data)
    except OSError as exc:
        summary.files_failed += 1
        log.error("a file could not be read: %s", type(exc).__name__)
        return None


def _skipped(
    data: bytes, identity: FileIdentity, done: ReplayFiles, summary: ReplaySummary, bar: tqdm[Any]
) -> bool:
    """True for a file an earlier run finished: counted, and taken off the bar's total."""
    if not done.finished(identity):
        return False
    summary.files_skipped += 1
    bar.total = max(0, (bar.total or 0) - len(data))
    bar.refresh()
    return True


def _replay_export(
    gateway: Gateway,
    files: Sequence[Path],
    done: ReplayFiles,
    summary: ReplaySummary,
    bar: tqdm[Any],
    site: str,
    sender: str,
) -> None:
    """The NDJSON files as one export: every file is read (an Encounter's Patient may be in
    a file finished before), the new ones counted, and the whole stored together."""
    lines = ExportLines()
    new: list[tuple[FileIdentity, int]] = []
    for path in files:
        read = _read(path, summary)
        if read is None:
            continue
        data, identity = read
        count = lines.read(data)
        if _skipped(data, identity, done, summary, bar):
            continue
        new.append((identity, count))
        summary.messages += count
        bar.update(len(data))
    if not new:
        return
    source = FhirSource(name=sender, base_url=f"file:{sender}", site=site, poll=False)
    try:
        report = store_export(
            gateway.fhir.writer,
            source,
            lines.resources,
            gateway.clock(),
            unreadable=lines.unreadable,
        )
    except Exception as exc:
        summary.files_failed += len(new)
        log.error("storing the FHIR export failed: %s (read again next run)", type(exc).__name__)
        return
    summary.stored += report.stored
    summary.duplicates += report.unchanged
    summary.errors += report.invalid
    summary.skipped += report.skipped
    _drain(gateway, summary)
    for identity, count in new:
        done.record(identity, kind="ndjson", messages=count, now=gateway.clock())
    bar.set_postfix(messages=summary.messages, candidates=summary.candidates)


def _drain(gateway: Gateway, summary: ReplaySummary) -> None:
    pipeline = gateway.local_pipeline()
    while True:
        result = pipeline.process_pending()
        if result.processed == 0:
            return
        summary.processed += result.processed
        summary.candidates += result.candidates
        summary.errors += result.errors
        summary.filtered += result.filtered
