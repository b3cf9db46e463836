"""Polling a FHIR server for EDs that cannot push, and as a safety net for those that do.

Each run searches

    Encounter?class=EMER&_lastUpdated=gt<watermark - overlap>&_include=Encounter:subject
             [&_revinclude=Condition:encounter&_revinclude=Observation:encounter]
             &_sort=_lastUpdated&_count=<page size>

follows the `next` links (only under the source's base URL), and stores the EMER
Encounters with their Patients, Conditions and Observations (see `related`: `_revinclude`
where the source supports it, else one search per page of Encounters) in one write per
page, so an Encounter is evaluated with its coded diagnoses and injury intent exactly as
when it is pushed. Then, from the second run on, Conditions and Observations changed
since the last run (`?_lastUpdated=gt<related watermark - overlap>`, up to `max_pages`
pages each) whose Encounter the gateway holds are stored too: a diagnosis coded after its
Encounter was read, the Encounter itself unchanged. (That search, when cut short, keeps
its watermark and is logged.)

The overlap re-reads a little of the last window, because servers do not always make
resources visible in `lastUpdated` order; what comes round again unchanged is not a new
version, is not processed twice, and is not counted as a duplicate from the sender (the
gateway asked for it again; the sender did not send it twice). The first run looks back
`lookback_hours`.

Sources that ignore `_sort`: the watermark only moves once a search has been read to its
end, to the newest `meta.lastUpdated` seen over all its pages. A run that reaches
`max_pages` first keeps the watermark, remembers the next page's link and the newest
lastUpdated read so far, logs the cut-off (source name and page count only), and the next
run carries on from that link; if the source no longer serves it (an expired paging
cursor: HTTP 400, 404 or 410) the window is searched again from the watermark.

A failed run (the server down, an error status, something that is not a searchset) keeps
the watermark, counts the failure and backs off: 30 s, 1 min, 2 min ... up to the source's
`backoff_max_seconds` (10 minutes unless configured). Pages stored before the failure stay
stored (they are the same content next time).

`FhirPoller.poll_source(source, now)` is one run; the scheduler just calls it. What a run
left behind (watermark, failures, last error, next attempt) is the source's `PollState`,
shown by `status.source_status`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from adapters.fhir.errors import FhirError, SourceUnavailable
from adapters.fhir.mapping import parse_instant
from adapters.fhir.related import (
    RELATED_TYPES,
    REVINCLUDES,
    advertises_revinclude,
    encounter_of,
    entry_resources,
    latest,
    linked,
    next_link,
    revinclude_applied,
    search_changed,
    search_related,
)
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

CAPABILITIES_TTL = timedelta(hours=1)  # how long a source's CapabilityStatement is trusted


@dataclass(frozen=True)
class PollResult:
    source: str
    ran: bool  # False: still backing off after a failure
    ok: bool
    pages: int = 0
    encounters: int = 0
    patients: int = 0
    related: int = 0  # Conditions and Observations of the Encounters
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
    ) -> None:
        self.writer = writer
        self.states = states
        self.client_factory = client_factory
        self.backoff_base = backoff_base_seconds
        self._revinclude: dict[str, tuple[bool, datetime]] = {}

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
        progress = _Progress()
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
        if progress.resume_url is not None:  # cut short: the watermark waits for the rest
            log.warning(
                "polling %s stopped at its page limit (%d pages); the watermark stays until "
                "the search has been read to its end, the next poll carries on from there",
                source.name,
                progress.pages,
            )
            done = replace(
                state,
                resume_url=progress.resume_url,
                pending_watermark=latest(progress.pending, progress.newest),
            )
        else:
            done = replace(
                state,
                watermark=latest(state.watermark, progress.pending, progress.newest),
                resume_url=None,
                pending_watermark=None,
            )
        if progress.related_complete:
            done = replace(
                done, related_watermark=latest(state.related_watermark, progress.related_newest)
            )
        elif progress.related_complete is False:
            log.warning(
                "polling %s: the search for diagnoses changed since the last poll stopped at "
                "its page limit (%d pages); it is read again from the same point next time",
                source.name,
                source.max_pages,
            )
        done = replace(
            done,
            failures=0,
            next_attempt_at=None,
            last_run_at=now,
            last_success_at=now,
            last_error=None,
        )
        self.states.save(done)
        return progress.result(source.name, ok=True, watermark=done.watermark)

    def _run(
        self,
        client: SourceClient,
        source: FhirSource,
        state: PollState,
        now: datetime,
        progress: _Progress,
    ) -> None:
        revinclude = self._supports_revinclude(client, source, now)
        since = self._since(source, state.watermark, now)
        url: str | None = None
        params: dict[str, str | list[str]] | None = None
        page: dict[str, Any] | None = None
        if state.resume_url is not None:  # carry on where the last run stopped
            page = client.get_page(state.resume_url)
            if page is None:
                log.warning(
                    "polling %s: the source no longer serves the page to carry on from; "
                    "searching again from the watermark",
                    source.name,
                )
            else:
                progress.pending = state.pending_watermark
        if page is None:
            url = client.url("Encounter")
            params = {
                "class": "EMER",
                "_lastUpdated": f"gt{fhir_instant(since)}",
                "_include": "Encounter:subject",
                "_sort": "_lastUpdated",
                "_count": str(source.page_size),
            }
            if revinclude:
                params["_revinclude"] = list(REVINCLUDES)
        while page is not None or url is not None:
            if page is None:
                assert url is not None
                if progress.pages >= source.max_pages:
                    progress.truncated = True
                    progress.resume_url = url
                    return
                page = client.get_json(url, params=params)
                params = None  # a next link carries its own query
            if page.get("resourceType") != "Bundle" or page.get("type") != "searchset":
                raise SourceUnavailable(f"source {source.name} did not answer with a searchset")
            progress.pages += 1
            self._store_page(client, source, page, now, progress, revinclude=revinclude)
            url = next_link(page)
            page = None
        if state.watermark is None:
            return  # a first look back: every Encounter came with its diagnoses just now
        related_since = (
            self._since(source, state.related_watermark, now) if state.related_watermark else since
        )
        self._store_late_related(client, source, related_since, now, progress)

    def _since(self, source: FhirSource, watermark: str | None, now: datetime) -> datetime:
        """Where a search starts: the watermark less the overlap, or the first look back."""
        mark = parse_instant(watermark) if watermark else None
        if mark is None:
            return now - timedelta(hours=source.lookback_hours)
        return mark - timedelta(seconds=source.overlap_seconds)

    def _store_late_related(
        self,
        client: SourceClient,
        source: FhirSource,
        since: datetime,
        now: datetime,
        progress: _Progress,
    ) -> None:
        """Conditions and Observations changed since `since` whose Encounter the gateway
        holds: diagnoses coded after their Encounter was last read."""
        changed = search_changed(
            client, RELATED_TYPES, fhir_instant(since), source.page_size, source.max_pages
        )
        held = {}
        for resource in changed.resources:
            ref = encounter_of(resource)
            if ref is not None and ref not in held:
                held[ref] = self.writer.store.get(source.site, "Encounter", ref[10:]) is not None
        late = [r for r in changed.resources if held.get(encounter_of(r) or "")]
        if late:
            report = store_fetched(self.writer, source, late, now)
            progress.add(report, encounters=0, patients=0, related=len(late))
        progress.related_newest = changed.newest
        progress.related_complete = changed.complete

    def _supports_revinclude(self, client: SourceClient, source: FhirSource, now: datetime) -> bool:
        known = self._revinclude.get(source.name)
        if known is not None and now - known[1] < CAPABILITIES_TTL:
            return known[0]
        try:
            supported = advertises_revinclude(client.get_json(client.url("metadata")))
        except SourceUnavailable:
            supported = False  # no CapabilityStatement: search per batch
        self._revinclude[source.name] = (supported, now)
        return supported

    def _store_page(
        self,
        client: SourceClient,
        source: FhirSource,
        page: dict[str, Any],
        now: datetime,
        progress: _Progress,
        *,
        revinclude: bool,
    ) -> None:
        encounters = [
            r for r in entry_resources(page, mode="match") if r.get("resourceType") == "Encounter"
        ]
        included: dict[str, dict[str, Any]] = {
            f"Patient/{r.get('id')}": r
            for r in entry_resources(page)
            if r.get("resourceType") == "Patient"
        }
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
        refs = [f"Encounter/{e.get('id')}" for e in kept]
        if not refs:
            related: list[dict[str, Any]] = []
        elif revinclude and revinclude_applied(page):
            related = linked(entry_resources(page, mode="include"), set(refs))
        else:
            related = search_related(client, refs)
        report = store_fetched(self.writer, source, [*kept, *patients, *related], now)
        progress.add(report, encounters=len(kept), patients=len(patients), related=len(related))
        for enc in encounters:  # the watermark moves over everything the search matched
            progress.see((enc.get("meta") or {}).get("lastUpdated"))

    def _failed(
        self, source: FhirSource, state: PollState, now: datetime, progress: _Progress, why: str
    ) -> PollResult:
        failures = state.failures + 1
        delay = min(self.backoff_base * 2 ** min(failures - 1, 30), source.backoff_max_seconds)
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
            progress.result(source.name, ok=False, watermark=state.watermark),
            error=why,
            next_attempt_at=next_attempt,
        )


@dataclass
class _Progress:
    pending: str | None = None  # newest lastUpdated of the earlier runs of this search
    newest: str | None = None  # newest lastUpdated this run read
    resume_url: str | None = None
    related_newest: str | None = None  # newest lastUpdated of the late-diagnosis search
    related_complete: bool | None = None  # None: not run (the Encounter search was cut short)
    pages: int = 0
    encounters: int = 0
    patients: int = 0
    related: int = 0
    stored: int = 0
    unchanged: int = 0
    invalid: int = 0
    truncated: bool = False

    def add(self, report: StoreReport, *, encounters: int, patients: int, related: int) -> None:
        self.encounters += encounters
        self.patients += patients
        self.related += related
        self.stored += report.stored
        self.unchanged += report.unchanged
        self.invalid += report.invalid

    def see(self, last_updated: Any) -> None:
        if parse_instant(last_updated) is not None:
            self.newest = latest(self.newest, str(last_updated))

    def result(self, source: str, *, ok: bool, watermark: str | None) -> PollResult:
        return PollResult(
            source,
            ran=True,
            ok=ok,
            pages=self.pages,
            encounters=self.encounters,
            patients=self.patients,
            related=self.related,
            stored=self.stored,
            unchanged=self.unchanged,
            invalid=self.invalid,
            truncated=self.truncated,
            watermark=watermark,
        )
