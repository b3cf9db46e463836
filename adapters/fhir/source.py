"""Talking to a source FHIR server, and storing what it gives us.

`SourceClient` fetches JSON from under the source's base URL only. `store_fetched` validates
fetched resources like pushed ones, keeps only what belongs to an ED attendance (an EMER
Encounter, its Patient, its Conditions and Observations) and writes them through the FHIR
writer as updates (the source's ids; a repeat of the same content is not a new version).
What fails validation is kept in the error store, not silently dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from adapters.fhir.channel import CHANNEL
from adapters.fhir.checks import check_resource
from adapters.fhir.errors import FhirError, SourceUnavailable
from adapters.fhir.mapping import reference_of
from adapters.fhir.models import validate_resource
from adapters.fhir.sources import FhirSource
from adapters.fhir.writer import FhirWriter, Interaction, WriteUnit
from referral_gateway.storage.inbox import Arrival

ACCEPT = "application/fhir+json"
TAKEN = ("Patient", "Encounter", "Condition", "Observation")


class SourceClient:
    def __init__(self, source: FhirSource, *, transport: httpx.BaseTransport | None = None):
        headers = {"Accept": ACCEPT, "User-Agent": "referral-gateway"}
        if source.bearer_token:
            headers["Authorization"] = f"Bearer {source.bearer_token}"
        self.source = source
        self._http = httpx.Client(
            headers=headers,
            timeout=source.timeout_seconds,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SourceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, relative: str) -> str:
        return f"{self.source.base_url}/{relative.lstrip('/')}"

    def get_json(
        self, url: str, *, params: Mapping[str, str | list[str]] | None = None
    ) -> dict[str, Any]:
        """GET a resource from under the source's base; SourceUnavailable for anything but
        a JSON resource with HTTP 200."""
        return self._resource(self._get(url, params))

    def get_page(self, url: str) -> dict[str, Any] | None:
        """A search page by its link; None when the source no longer serves it (400, 404 or
        410: paging cursors expire)."""
        response = self._get(url, None)
        if response.status_code in (400, 404, 410):
            return None
        return self._resource(response)

    def read(self, reference: str) -> dict[str, Any] | None:
        """A resource by "Type/id" or by absolute URL; None when the server says 404/410."""
        url = reference if reference.startswith(("http://", "https://")) else self.url(reference)
        response = self._get(url, None)
        if response.status_code in (404, 410):
            return None
        return self._resource(response)

    def _get(self, url: str, params: Mapping[str, str | list[str]] | None) -> httpx.Response:
        if not self.source.owns(url):
            raise SourceUnavailable(
                f"refusing to fetch outside source {self.source.name}'s base URL",
                code="security",
            )
        try:
            return self._http.get(url, params=params)
        except httpx.HTTPError as exc:
            raise SourceUnavailable(
                f"source {self.source.name} did not answer ({type(exc).__name__})"
            ) from None

    def _resource(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise SourceUnavailable(
                f"source {self.source.name} answered HTTP {response.status_code}"
            )
        try:
            body = response.json()
        except ValueError:
            raise SourceUnavailable(f"source {self.source.name} did not send JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise SourceUnavailable(f"source {self.source.name} did not send a resource")
        return body


@dataclass(frozen=True)
class StoreReport:
    stored: int = 0  # new versions written
    unchanged: int = 0  # same content as the version we hold
    invalid: int = 0  # kept in the error store
    skipped: int = 0  # not part of an ED attendance


def is_ed_encounter(encounter: Mapping[str, Any]) -> bool:
    klass = encounter.get("class")
    if isinstance(klass, Mapping) and klass.get("code") == "EMER":
        return True
    return any(
        isinstance(h, Mapping)
        and isinstance(h.get("class"), Mapping)
        and h["class"].get("code") == "EMER"
        for h in encounter.get("classHistory") or ()
    )


def store_fetched(
    writer: FhirWriter,
    source: FhirSource,
    resources: Iterable[Mapping[str, Any]],
    now: datetime,
    *,
    missing: Iterable[Arrival] = (),
) -> StoreReport:
    """Validate and store resources fetched from `source` (already filtered to what the
    gateway keeps), in one write with `missing`: error-store rows for what could not be
    fetched. A repeat of what the gateway holds is not counted as a duplicate."""
    interactions: list[Interaction] = []
    rejected: list[Arrival] = list(missing)
    unread = len(rejected)
    seen: set[str] = set()
    for resource in resources:
        key = f"{resource.get('resourceType')}/{resource.get('id')}"
        if key in seen:
            continue
        seen.add(key)
        try:
            if resource.get("resourceType") not in TAKEN or not resource.get("id"):
                raise SourceUnavailable("a fetched resource lacks a type the gateway takes or id")
            validate_resource(resource)
            warnings = check_resource(resource)
        except FhirError as err:
            rejected.append(_rejected(source, resource, err, now))
            continue
        interactions.append(
            Interaction(
                "PUT",
                str(resource["resourceType"]),
                dict(resource),
                resource_id=str(resource["id"]),
                warnings=tuple(warnings),
            )
        )
    if not interactions and not rejected:
        return StoreReport()
    written = writer.write(
        WriteUnit(
            source.site,
            source.name,
            tuple(interactions),
            atomic=False,
            rejected=tuple(rejected),
            fetched=True,
        )
    )
    return StoreReport(
        stored=sum(1 for w in written if w.changed),
        unchanged=sum(1 for w in written if not w.changed and w.error is None),
        invalid=len(rejected) - unread + sum(1 for w in written if w.error is not None),
    )


def _rejected(
    source: FhirSource, resource: Mapping[str, Any], err: FhirError, now: datetime
) -> Arrival:
    payload = json.dumps(resource, separators=(",", ":"), ensure_ascii=False).encode()
    where = "; ".join(
        f"{i.diagnostics} ({', '.join(i.expression)})" if i.expression else i.diagnostics
        for i in err.issues
    )
    return Arrival(
        channel=CHANNEL,
        sender=source.name,
        message_key="invalid:" + hashlib.sha256(payload).hexdigest(),
        message_type=str(resource.get("resourceType", ""))[:40],
        site=source.site,
        payload=payload,
        received_at=now,
        state="error",
        error_stage="validate",
        error_detail=where[:1000],
    )


def related_references(encounter: Mapping[str, Any]) -> list[str]:
    """References an Encounter needs to be understood: its subject Patient."""
    subject = reference_of(encounter.get("subject"))
    return [subject] if subject and subject.startswith("Patient/") else []
