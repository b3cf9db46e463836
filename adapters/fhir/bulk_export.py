"""FHIR bulk export files (NDJSON: one resource per line) stored the way the poller stores
what it fetches, so that a backfilled attendance is the attendance the feed would have made.

Lines are grouped by attendance before anything is written: each ED (EMER) Encounter with
its subject Patient and the Conditions and Observations that name it go to the writer
together (`store_fetched`, several attendances per write), so the pipeline evaluates an
Encounter with its coded diagnoses and injury intent exactly as when it is pushed or polled.
Conditions and Observations whose Encounter is not in the export are stored when the
gateway already holds that Encounter (a diagnosis coded later, as the poller does); other
lines (a non-ED Encounter, a Patient no ED Encounter names, other types) are skipped.
What fails validation, and a line that is not a resource, is kept in the error store. A
resource read again unchanged is not a new version: a second run, or a run picking up after
an interruption, stores nothing twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.fhir.channel import CHANNEL
from adapters.fhir.related import RELATED_TYPES, encounter_of
from adapters.fhir.source import is_ed_encounter, related_references, store_fetched
from adapters.fhir.sources import FhirSource
from adapters.fhir.writer import FhirWriter
from referral_gateway.storage.inbox import Arrival

ATTENDANCES_PER_WRITE = 50

Json = dict[str, Any]


@dataclass
class ExportLines:
    """The resources of one or more NDJSON files, and the lines that were not resources."""

    resources: list[Json] = field(default_factory=list)
    unreadable: list[bytes] = field(default_factory=list)  # not JSON, or no resourceType

    def read(self, data: bytes) -> int:
        """Add the lines of one file; returns how many non-blank lines it had."""
        lines = 0
        for raw in data.splitlines():
            if not raw.strip():
                continue
            lines += 1
            try:
                resource = json.loads(raw)
            except ValueError:
                self.unreadable.append(raw.strip())
                continue
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                self.unreadable.append(raw.strip())
                continue
            self.resources.append(resource)
        return lines


@dataclass(frozen=True)
class ExportReport:
    attendances: int = 0  # ED Encounters written with what belongs to them
    stored: int = 0  # new versions
    unchanged: int = 0  # same content as the version held: read before
    invalid: int = 0  # kept in the error store (unreadable lines included)
    skipped: int = 0  # not part of an ED attendance


def attendance_groups(resources: Iterable[Mapping[str, Any]]) -> Iterator[list[Json]]:
    """Each ED Encounter with its Patient, Conditions and Observations, in export order."""
    by_key: dict[str, Json] = {}
    related: dict[str, list[Json]] = {}
    encounters: list[Json] = []
    for resource in resources:
        kind = resource.get("resourceType")
        by_key[f"{kind}/{resource.get('id')}"] = dict(resource)
        if kind == "Encounter" and is_ed_encounter(resource):
            encounters.append(dict(resource))
        elif kind in RELATED_TYPES and (ref := encounter_of(resource)) is not None:
            related.setdefault(ref, []).append(dict(resource))
    for enc in encounters:
        patients = [by_key[ref] for ref in related_references(enc) if ref in by_key]
        yield [enc, *patients, *related.get(f"Encounter/{enc.get('id')}", [])]


def store_export(
    writer: FhirWriter,
    source: FhirSource,
    resources: list[Json],
    now: datetime,
    *,
    unreadable: Sequence[bytes] = (),
    per_write: int = ATTENDANCES_PER_WRITE,
) -> ExportReport:
    """Store the attendances among `resources` (see the module's docstring), and the
    `unreadable` lines in the error store."""
    groups = list(attendance_groups(resources))
    in_groups = {f"{r.get('resourceType')}/{r.get('id')}" for g in groups for r in g}
    exported = {f"Encounter/{g[0].get('id')}" for g in groups}
    late = [
        r
        for r in resources
        if r.get("resourceType") in RELATED_TYPES
        and (ref := encounter_of(r)) is not None
        and ref not in exported
        and writer.store.get(source.site, "Encounter", ref[len("Encounter/") :]) is not None
    ]
    stored = unchanged = invalid = 0
    batches = [
        [r for g in groups[i : i + per_write] for r in g] for i in range(0, len(groups), per_write)
    ]
    if late:
        batches.append(late)
    for batch in batches:
        report = store_fetched(writer, source, batch, now)
        stored += report.stored
        unchanged += report.unchanged
        invalid += report.invalid
    if unreadable:
        rejected = [_unreadable(source, line, now) for line in unreadable]
        store_fetched(writer, source, [], now, missing=rejected)
        invalid += len(unreadable)
    written = in_groups | {f"{r.get('resourceType')}/{r.get('id')}" for r in late}
    skipped = sum(1 for r in resources if f"{r.get('resourceType')}/{r.get('id')}" not in written)
    return ExportReport(len(groups), stored, unchanged, invalid, skipped)


def _unreadable(source: FhirSource, line: bytes, now: datetime) -> Arrival:
    """An NDJSON line that is not a resource, for the error store (a second run finds it
    there: a duplicate, not a second error)."""
    return Arrival(
        channel=CHANNEL,
        sender=source.name,
        message_key="unreadable:" + hashlib.sha256(line).hexdigest(),
        message_type="",
        site=source.site,
        payload=line,
        received_at=now,
        state="error",
        error_stage="receive",
        error_detail="an NDJSON line that is not a FHIR resource (JSON with a resourceType)",
    )
