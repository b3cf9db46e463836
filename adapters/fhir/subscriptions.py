"""Rest-hook subscription notifications (FHIR R4 Subscriptions Backport, R5 style).

A source server with a Subscription whose channel endpoint is `[base]/fhir/subscription-hook`
(and whose channel header carries `Authorization: Bearer <the gateway token>`) POSTs a
`history` Bundle: the first entry is the status (a `Parameters` resource with the backport's
SubscriptionStatus profile in R4, or an R4B `SubscriptionStatus`), and each event names its
focus resource. With `id-only` payloads the gateway fetches each focus from the source (with
a `full-resource` payload it uses the resource sent). Only URLs under a configured source's
base URL are ever fetched, and the source must belong to the token's site.

Kept: EMER Encounters with their Patients, Conditions and Observations (searched by
Encounter, as the poller does); Conditions and Observations whose Encounter is an EMER
Encounter (fetched too when the gateway does not hold it yet); Patients the gateway
already holds. Everything else is left at the source. `handshake` and `heartbeat`
notifications are answered and store nothing.

A focus the source does not serve yet (404/410: notifications can outrun the source's own
commit, or its read replica), or whose Encounter or Patient it does not serve, is not lost:
what could be read is stored, the notification is answered with a warning, and an entry
in the error store stands for the focus (see `storage.focus_retries`). `retry_missed(now)`,
run every `RETRY_EVERY_SECONDS` by the channel's scheduler, fetches it again after 30 s,
1, 2, 5, 10 and 20 minutes; a focus that never appears stays in the error store, with the
number of attempts. A source that fails (5xx, no answer) is answered 502, so the sender
retries the notification itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.fhir.errors import FhirError, Issue, Unprocessable
from adapters.fhir.mapping import reference_of
from adapters.fhir.models import validate_bundle_shell, validate_resource
from adapters.fhir.outcome import operation_outcome
from adapters.fhir.related import search_related
from adapters.fhir.source import SourceClient, is_ed_encounter, related_references, store_fetched
from adapters.fhir.sources import FhirSource
from adapters.fhir.writer import FhirWriter
from referral_gateway.domain.clock import Clock
from referral_gateway.storage.fhir_store import ApiClient, FhirResourceStore
from referral_gateway.storage.focus_retries import (
    MissedFocus,
    due_focus_retries,
    missed_focus_arrival,
    record_focus_retry,
)

log = logging.getLogger(__name__)

EVENT_TYPES = frozenset({"event-notification", "query-event"})
QUIET_TYPES = frozenset({"handshake", "heartbeat", "query-status"})
RETRY_DELAYS_SECONDS = (30.0, 60.0, 120.0, 300.0, 600.0, 1200.0)  # then it is given up
RETRY_EVERY_SECONDS = 15.0


@dataclass(frozen=True)
class Notification:
    subscription: str | None
    type: str
    focus: tuple[str, ...]  # references (absolute, or relative to the source's base)
    resources: Mapping[str, Mapping[str, Any]]  # full-resource payloads by their fullUrl

    def __repr__(self) -> str:
        return f"Notification(type={self.type!r}, events={len(self.focus)})"


class SubscriptionReceiver:
    def __init__(
        self,
        writer: FhirWriter,
        store: FhirResourceStore,
        sources: Sequence[FhirSource],
        clock: Clock,
        *,
        client_factory: Callable[[FhirSource], SourceClient] = SourceClient,
        retry_delays_seconds: Sequence[float] = RETRY_DELAYS_SECONDS,
    ) -> None:
        self.writer = writer
        self.store = store
        self.sources = tuple(sources)
        self.clock = clock
        self.client_factory = client_factory
        self.retry_delays = tuple(retry_delays_seconds)

    def __call__(self, bundle: Mapping[str, Any], client: ApiClient) -> Mapping[str, Any]:
        """Handle one notification from an authenticated client; return an
        OperationOutcome. Raises FhirError (422 malformed, 502 source failed)."""
        note = read_notification(bundle)
        if note.type in QUIET_TYPES:
            return operation_outcome(
                [Issue("information", "informational", f"{note.type} received")]
            )
        source = self._source_for(note, client)
        kept: list[Mapping[str, Any]] = []
        missing: list[str] = []
        with self.client_factory(source) as fetcher:
            for ref in note.focus:
                if not self._gather(source, fetcher, ref, note.resources, kept):
                    missing.append(ref)
        now = self.clock()
        report = store_fetched(
            self.writer,
            source,
            kept,
            now,
            missing=[
                missed_focus_arrival(
                    source=source.name,
                    site=source.site,
                    focus=_relative(source, ref),
                    now=now,
                    detail=f"{_kind(ref)} not readable at the source yet; "
                    f"{len(self.retry_delays)} more fetches will be tried",
                )
                for ref in missing
            ],
        )
        issues = [
            Issue(
                "information",
                "informational",
                f"{len(note.focus)} event(s); resources kept: {report.stored} stored, "
                f"{report.unchanged} unchanged, {report.invalid} invalid",
            )
        ]
        if missing:
            issues.append(
                Issue(
                    "warning",
                    "incomplete",
                    f"{len(missing)} focus resource(s) could not be read at the source yet: "
                    "kept in the error store and fetched again later",
                )
            )
        return operation_outcome(issues)

    def retry_missed(self, now: datetime) -> int:
        """Fetch again the foci due a retry; returns how many were completed."""
        due = due_focus_retries(self.store.engine, self.store.keyring, now, self.retry_delays)
        completed = 0
        for missed in due:
            completed += self._retry(missed, now)
        return completed

    def _retry(self, missed: MissedFocus, now: datetime) -> bool:
        attempt = missed.attempts + 1
        left = len(self.retry_delays) - attempt
        kind = _kind(missed.focus)
        source = next((s for s in self.sources if s.name == missed.source), None)
        if source is None:
            record_focus_retry(
                self.store.engine,
                missed,
                now,
                completed=False,
                detail=f"{kind}: source {missed.source} is no longer configured",
            )
            return False
        kept: list[Mapping[str, Any]] = []
        try:
            with self.client_factory(source) as fetcher:
                done = self._gather(source, fetcher, missed.focus, {}, kept)
            store_fetched(self.writer, source, kept, now)
            why = f"{kind} still not readable at the source"
        except FhirError as err:
            done, why = False, f"{kind}: {err.diagnostics}"
        if not done:
            why += f" after {attempt} retr{'y' if attempt == 1 else 'ies'}; " + (
                f"{left} more will be tried" if left else "given up"
            )
            if not left:
                log.warning("notified %s from %s never appeared: %s", kind, source.name, why)
        record_focus_retry(self.store.engine, missed, now, completed=done, detail=why)
        return done

    def _source_for(self, note: Notification, client: ApiClient) -> FhirSource:
        mine = [s for s in self.sources if s.site == client.site]
        if not mine:
            raise Unprocessable(
                f"no FHIR source is configured for site {client.site}", code="not-found"
            )
        absolute = [
            u
            for u in (note.subscription, *note.focus)
            if u and u.startswith(("http://", "https://"))
        ]
        if absolute:
            owners = [s for s in mine if all(s.owns(u) for u in absolute)]
            if len(owners) == 1:
                return owners[0]
            raise Unprocessable(
                "the notification's URLs are not under one configured source of this site",
                code="security",
            )
        if len(mine) == 1:
            return mine[0]
        raise Unprocessable(
            "relative references, and several sources for this site: cannot "
            "tell which to fetch from",
            code="processing",
        )

    def _gather(
        self,
        source: FhirSource,
        fetcher: SourceClient,
        ref: str,
        payloads: Mapping[str, Mapping[str, Any]],
        kept: list[Mapping[str, Any]],
    ) -> bool:
        """Add to `kept` what one focus brings; False when the source did not serve the
        focus, or the Encounter or Patient it needs (the focus is then retried)."""

        def fetch(ref: str) -> Mapping[str, Any] | None:
            url = ref if ref.startswith(("http://", "https://")) else fetcher.url(ref)
            if url in payloads:
                return payloads[url]
            return fetcher.read(url)

        def with_related(encounter: Mapping[str, Any]) -> bool:
            kept.append(encounter)
            complete = True
            for ref in related_references(encounter):
                found = fetch(ref)
                if found is None:
                    complete = False
                else:
                    kept.append(found)
            kept.extend(search_related(fetcher, [f"Encounter/{encounter.get('id')}"]))
            return complete

        resource = fetch(ref)
        if resource is None:
            return False
        kind = resource.get("resourceType")
        if kind == "Encounter" and is_ed_encounter(resource):
            return with_related(resource)
        if kind in ("Condition", "Observation"):
            encounter_ref = reference_of(resource.get("encounter"))
            if not encounter_ref or not encounter_ref.startswith("Encounter/"):
                return True
            held = self._held(source, encounter_ref)
            encounter = held or fetch(encounter_ref)
            if encounter is None:
                return False
            if not is_ed_encounter(encounter):
                return True
            complete = True if held is not None else with_related(encounter)
            kept.append(resource)
            return complete
        if kind == "Patient" and self._held(source, f"Patient/{resource.get('id')}"):
            kept.append(resource)
        return True

    def _held(self, source: FhirSource, reference: str) -> Mapping[str, Any] | None:
        kind, _, rid = reference.partition("/")
        return self.store.get(source.site, kind, rid)


def _relative(source: FhirSource, ref: str) -> str:
    """A focus as "Type/id" when it is under the source's base, else as sent."""
    if source.owns(ref):
        return ref[len(source.base_url) + 1 :]
    return ref


def _kind(ref: str) -> str:
    """The resource type a reference names (for messages that carry no ids)."""
    parts = [p for p in ref.split("/") if p]
    return parts[-2] if len(parts) >= 2 else "resource"


def read_notification(bundle: Mapping[str, Any]) -> Notification:
    """The status and events of a notification Bundle; Unprocessable when it is not one."""
    if bundle.get("type") != "history":
        raise Unprocessable("a notification is a history Bundle", expression=["Bundle.type"])
    validate_bundle_shell(bundle)
    entries = [e for e in bundle.get("entry") or () if isinstance(e, dict)]
    status = entries[0].get("resource") if entries else None
    if not isinstance(status, dict):
        raise Unprocessable(
            "the first entry must hold the subscription status",
            code="required",
            expression=["Bundle.entry[0].resource"],
        )
    validate_resource(status, where="Bundle.entry[0].resource")
    if status.get("resourceType") == "Parameters":
        note_type, subscription, focus = _from_parameters(status)
    elif status.get("resourceType") == "SubscriptionStatus":
        note_type = str(status.get("type", ""))
        subscription = (status.get("subscription") or {}).get("reference")
        focus = [
            str(ev["focus"]["reference"])
            for ev in status.get("notificationEvent") or ()
            if isinstance(ev, dict)
            and isinstance(ev.get("focus"), dict)
            and ev["focus"].get("reference")
        ]
    else:
        raise Unprocessable(
            "the first entry must be a SubscriptionStatus or backport Parameters",
            expression=["Bundle.entry[0].resource.resourceType"],
        )
    if note_type not in EVENT_TYPES | QUIET_TYPES:
        raise Unprocessable("unknown notification type", expression=["Bundle.entry[0].resource"])
    if note_type in EVENT_TYPES and not focus:  # R4 backport: focus may be the entries
        focus = [str(e["fullUrl"]) for e in entries[1:] if e.get("fullUrl")]
    resources = {
        str(e["fullUrl"]): e["resource"]
        for e in entries[1:]
        if e.get("fullUrl") and isinstance(e.get("resource"), dict)
    }
    return Notification(subscription, note_type, tuple(focus), resources)


def _from_parameters(status: Mapping[str, Any]) -> tuple[str, str | None, list[str]]:
    note_type, subscription, focus = "", None, []
    for param in status.get("parameter") or ():
        if not isinstance(param, dict):
            continue
        name = param.get("name")
        if name == "type":
            note_type = str(param.get("valueCode", ""))
        elif name == "subscription":
            subscription = (param.get("valueReference") or {}).get("reference")
        elif name == "notification-event":
            for part in param.get("part") or ():
                if isinstance(part, dict) and part.get("name") == "focus":
                    ref = (part.get("valueReference") or {}).get("reference")
                    if ref:
                        focus.append(str(ref))
    return note_type, subscription, focus
