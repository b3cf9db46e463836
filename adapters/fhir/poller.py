"""Polling a FHIR server for EDs that cannot push.

Each run searches

    Encounter?class=EMER&_lastUpdated=gt<watermark - overlap>&_include=Encounter:subject
             &_sort=_lastUpdated&_count=<page size>

follows the `next` links (only under the source's base URL), stores the EMER Encounters
and their Patients, and moves the watermark to the newest `meta.lastUpdated` it saw. The
overlap re-reads a little of the last window, because servers do not always make resources
visible in `lastUpdated` order; what comes round again unchanged is not a new version, so
it is not processed twice. The first run looks back `lookback_hours`.

A failed run (the server down, an error status, something that is not a searchset) keeps
the watermark, counts the failure and backs off: 30 s, 1 min, 2 min ... up to an hour.
Pages stored before the failure stay stored (they are the same content next time).

`FhirPoller.poll_source(source, now)` is one run; the scheduler just calls it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from adapters.fhir.errors import FhirError, SourceUnavailable
from adapters.fhir.mapping import parse_instant
from adapters.fhir.source import (
    SourceClient,
    StoreReport,
    is_ed_encounter,
    related_references,
    store_fetched,
)
from adapters.fhir.sources import FhirSource
from adapters.fhir.writer import FhirWriter, fhir_instant
from referral_gateway.storage.fhir_store import PollState, PollStateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollResult:
    source: str
    ran: bool  # False: still backing off after a failure
    ok: bool
    pages: int = 0
    encounters: int = 0
    patients: int = 0
    stored: int = 0
    unchanged: int = 0
    invalid: int = 0
    truncated: bool = False  # stopped at max_pages; the next run carries on
    watermark: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None


class FhirPoller:
    def __init__(
        self,
        writer: FhirWriter,
        states: PollStateStore,
        *,
        client_factory: Callable[[FhirSource], SourceClient] = SourceClient,
        backoff_base_seconds: float = 30.0,
        backoff_max_seconds: float = 3600.0,
    ) -> None:
        self.writer = writer
        self.states = states
        self.client_factory = client_factory
        self.backoff_base = backoff_base_seconds
        self.backoff_max = backoff_max_seconds

    def poll_source(self, source: FhirSource, now: datetime) -> PollResult:
        state = self.states.load(source.name)
        if state.next_attempt_at is not None and now < state.next_attempt_at:
            return PollResult(
                source.name,
                ran=False,
                ok=False,
                watermark=state.watermark,
                error=state.last_error,
                next_attempt_at=state.next_attempt_at,
            )
        progress = _Progress(watermark=state.watermark)
        try:
            with self.client_factory(source) as client:
                self._run(client, source, state, now, progress)
        except FhirError as err:
            return self._failed(source, state, now, progress, err.diagnostics)
        except Exception as exc:  # a bug or an unexpected reply: back off, keep running
            log.error("polling %s failed: %s", source.name, type(exc).__name__)
            return self._failed(
                source, state, now, progress, f"internal error ({type(exc).__name__})"
            )
        self.states.save(
            replace(
                state,
                watermark=progress.watermark,
                failures=0,
                next_attempt_at=None,
                last_run_at=now,
                last_success_at=now,
                last_error=None,
            )
        )
        return progress.result(source.name, ok=True)

    def _run(
        self,
        client: SourceClient,
        source: FhirSource,
        state: PollState,
        now: datetime,
        progress: _Progress,
    ) -> None:
        since = parse_instant(state.watermark) if state.watermark else None
        since = (
            since - timedelta(seconds=source.overlap_seconds)
            if since
            else now - timedelta(hours=source.lookback_hours)
        )
        url: str | None = client.url("Encounter")
        params: dict[str, str] | None = {
            "class": "EMER",
            "_lastUpdated": f"gt{fhir_instant(since)}",
            "_include": "Encounter:subject",
            "_sort": "_lastUpdated",
            "_count": str(source.page_size),
        }
        while url is not None:
            if progress.pages >= source.max_pages:
                progress.truncated = True
                return
            page = client.get_json(url, params=params)
            params = None  # a next link carries its own query
            if page.get("resourceType") != "Bundle" or page.get("type") != "searchset":
                raise SourceUnavailable(f"source {source.name} did not answer with a searchset")
            progress.pages += 1
            self._store_page(client, source, page, now, progress)
            url = _next_link(page)

    def _store_page(
        self,
        client: SourceClient,
        source: FhirSource,
        page: dict[str, Any],
        now: datetime,
        progress: _Progress,
    ) -> None:
        encounters: list[dict[str, Any]] = []
        included: dict[str, dict[str, Any]] = {}
        for entry in page.get("entry") or ():
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                continue
            mode = (entry.get("search") or {}).get("mode", "match")
            if resource.get("resourceType") == "Encounter" and mode == "match":
                encounters.append(resource)
            elif resource.get("resourceType") == "Patient":
                included[f"Patient/{resource.get('id')}"] = resource
        kept = [e for e in encounters if is_ed_encounter(e)]
        patients: list[dict[str, Any]] = []
        fetched: set[str] = set(included)
        for enc in kept:
            for ref in related_references(enc):
                if ref in included:
                    patients.append(included.pop(ref))
                elif ref not in fetched:  # the server ignored _include: read it
                    fetched.add(ref)
                    found = client.read(ref)
                    if found is not None:
                        patients.append(found)
        report = store_fetched(self.writer, source, [*patients, *kept], now)
        progress.add(report, encounters=len(kept), patients=len(patients))
        for enc in encounters:  # the watermark moves over everything the search matched
            progress.see((enc.get("meta") or {}).get("lastUpdated"))

    def _failed(
        self, source: FhirSource, state: PollState, now: datetime, progress: _Progress, why: str
    ) -> PollResult:
        failures = state.failures + 1
        delay = min(self.backoff_base * 2 ** (failures - 1), self.backoff_max)
        next_attempt = now + timedelta(seconds=delay)
        log.warning(
            "polling %s failed (%d in a row), next try in %.0fs: %s",
            source.name,
            failures,
            delay,
            why,
        )
        self.states.save(
            replace(
                state,
                failures=failures,
                next_attempt_at=next_attempt,
                last_run_at=now,
                last_error=why,
            )
        )
        return replace(
            progress.result(source.name, ok=False),
            error=why,
            watermark=state.watermark,
            next_attempt_at=next_attempt,
        )


@dataclass
class _Progress:
    watermark: str | None
    pages: int = 0
    encounters: int = 0
    patients: int = 0
    stored: int = 0
    unchanged: int = 0
    invalid: int = 0
    truncated: bool = False

    def add(self, report: StoreReport, *, encounters: int, patients: int) -> None:
        self.encounters += encounters
        self.patients += patients
        self.stored += report.stored
        self.unchanged += report.unchanged
        self.invalid += report.invalid

    def see(self, last_updated: Any) -> None:
        seen = parse_instant(last_updated)
        if seen is None:
            return
        current = parse_instant(self.watermark) if self.watermark else None
        if current is None or seen > current:
            self.watermark = str(last_updated)

    def result(self, source: str, *, ok: bool) -> PollResult:
        return PollResult(
            source,
            ran=True,
            ok=ok,
            pages=self.pages,
            encounters=self.encounters,
            patients=self.patients,
            stored=self.stored,
            unchanged=self.unchanged,
            invalid=self.invalid,
            truncated=self.truncated,
            watermark=self.watermark,
        )


def _next_link(page: dict[str, Any]) -> str | None:
    for link in page.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None
