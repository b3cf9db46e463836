"""Rest-hook subscription notifications (FHIR R4 Subscriptions Backport, R5 style).

A source server with a Subscription whose channel endpoint is `[base]/fhir/subscription-hook`
(and whose channel header carries `Authorization: Bearer <the gateway token>`) POSTs a
`history` Bundle: the first entry is the status (a `Parameters` resource with the backport's
SubscriptionStatus profile in R4, or an R4B `SubscriptionStatus`), and each event names its
focus resource. With `id-only` payloads the gateway fetches each focus from the source (with
a `full-resource` payload it uses the resource sent). Only URLs under a configured source's
base URL are ever fetched, and the source must belong to the token's site.

Kept: EMER Encounters with their Patients; Conditions and Observations whose Encounter is
an EMER Encounter (fetched too when the gateway does not hold it yet); Patients the gateway
already holds. Everything else is left at the source. `handshake` and `heartbeat`
notifications are answered and store nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.fhir.errors import Issue, Unprocessable
from adapters.fhir.mapping import reference_of
from adapters.fhir.models import validate_bundle_shell, validate_resource
from adapters.fhir.outcome import operation_outcome
from adapters.fhir.source import SourceClient, is_ed_encounter, related_references, store_fetched
from adapters.fhir.sources import FhirSource
from adapters.fhir.writer import FhirWriter
from referral_gateway.domain.clock import Clock
from referral_gateway.storage.fhir_store import ApiClient, FhirResourceStore

EVENT_TYPES = frozenset({"event-notification", "query-event"})
QUIET_TYPES = frozenset({"handshake", "heartbeat", "query-status"})


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
    ) -> None:
        self.writer = writer
        self.store = store
        self.sources = tuple(sources)
        self.clock = clock
        self.client_factory = client_factory

    def __call__(self, bundle: Mapping[str, Any], client: ApiClient) -> Mapping[str, Any]:
        """Handle one notification from an authenticated client; return an
        OperationOutcome. Raises FhirError (422 malformed, 502 source failed)."""
        note = read_notification(bundle)
        if note.type in QUIET_TYPES:
            return operation_outcome(
                [Issue("information", "informational", f"{note.type} received")]
            )
        source = self._source_for(note, client)
        with self.client_factory(source) as fetcher:
            resources = self._gather(source, fetcher, note)
        report = store_fetched(self.writer, source, resources, self.clock())
        return operation_outcome(
            [
                Issue(
                    "information",
                    "informational",
                    f"{len(note.focus)} event(s); resources kept: {report.stored} stored, "
                    f"{report.unchanged} unchanged, {report.invalid} invalid",
                )
            ]
        )

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
        self, source: FhirSource, fetcher: SourceClient, note: Notification
    ) -> list[Mapping[str, Any]]:
        kept: list[Mapping[str, Any]] = []

        def fetch(ref: str) -> Mapping[str, Any] | None:
            url = ref if ref.startswith(("http://", "https://")) else fetcher.url(ref)
            if url in note.resources:
                return note.resources[url]
            return fetcher.read(url)

        for ref in note.focus:
            resource = fetch(ref)
            if resource is None:
                continue
            kind = resource.get("resourceType")
            if kind == "Encounter" and is_ed_encounter(resource):
                kept.append(resource)
                kept.extend(r for p in related_references(resource) if (r := fetch(p)))
            elif kind in ("Condition", "Observation"):
                encounter_ref = reference_of(resource.get("encounter"))
                if not encounter_ref or not encounter_ref.startswith("Encounter/"):
                    continue
                held = self._held(source, encounter_ref)
                encounter = held or fetch(encounter_ref)
                if encounter is None or not is_ed_encounter(encounter):
                    continue
                if held is None:
                    kept.append(encounter)
                    kept.extend(r for p in related_references(encounter) if (r := fetch(p)))
                kept.append(resource)
            elif kind == "Patient" and self._held(source, f"Patient/{resource.get('id')}"):
                kept.append(resource)
        return kept

    def _held(self, source: FhirSource, reference: str) -> Mapping[str, Any] | None:
        kind, _, rid = reference.partition("/")
        return self.store.get(source.site, kind, rid)


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
