"""The Conditions and Observations of the Encounters fetched from a source.

Coded diagnoses (ICD-10 X99, SNOMED 425322008 ...) and ECDS injury intent are held in
Conditions and Observations that reference the Encounter, not in the Encounter itself, so
whatever fetches Encounters (the poller, the subscription receiver) fetches those too:

- with `_revinclude=Condition:encounter&_revinclude=Observation:encounter` on the
  Encounter search itself, when the source's CapabilityStatement lists both under
  Encounter's `searchRevInclude` and the source echoes `_revinclude` in the page's `self`
  link (a server that lists it but drops it from `self` did not apply it);
- otherwise with one search per batch of Encounters:
  `Condition?encounter=Encounter/a,Encounter/b,...` and the same for Observation, each
  followed through its `next` links (under the source's base only).

Only resources whose `encounter` names one of the batch's Encounters are kept.

A diagnosis coded after its Encounter was read, with the Encounter itself unchanged, is
not in any Encounter search: `search_changed` finds Conditions and Observations by
`_lastUpdated` (the poller keeps those whose Encounter the gateway holds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.fhir.errors import SourceUnavailable
from adapters.fhir.mapping import parse_instant, reference_of
from adapters.fhir.source import SourceClient

RELATED_TYPES = ("Condition", "Observation")
REVINCLUDES = tuple(f"{kind}:encounter" for kind in RELATED_TYPES)
SEARCH_BATCH = 50  # Encounters per Condition?encounter=... search
MAX_RELATED_PAGES = 20  # pages per related search: a bound, not an expected size

Json = dict[str, Any]


def advertises_revinclude(capabilities: Mapping[str, Any] | None) -> bool:
    """True when a CapabilityStatement lists Condition:encounter and Observation:encounter
    under Encounter's searchRevInclude."""
    if not capabilities or capabilities.get("resourceType") != "CapabilityStatement":
        return False
    for rest in capabilities.get("rest") or ():
        if not isinstance(rest, Mapping) or rest.get("mode", "server") != "server":
            continue
        for resource in rest.get("resource") or ():
            if isinstance(resource, Mapping) and resource.get("type") == "Encounter":
                listed = set(resource.get("searchRevInclude") or ())
                return all(r in listed for r in REVINCLUDES)
    return False


def revinclude_applied(page: Mapping[str, Any]) -> bool:
    """Whether a searchset page says (in its self link) that `_revinclude` was applied."""
    for link in page.get("link") or ():
        if isinstance(link, Mapping) and link.get("relation") == "self":
            return "_revinclude" in str(link.get("url", ""))
    return False


def encounter_of(resource: Mapping[str, Any]) -> str | None:
    ref = reference_of(resource.get("encounter"))
    return ref if ref and ref.startswith("Encounter/") else None


def linked(resources: Iterable[Mapping[str, Any]], encounters: set[str]) -> list[Json]:
    """The Conditions and Observations among `resources` that name one of `encounters`."""
    return [
        dict(r)
        for r in resources
        if r.get("resourceType") in RELATED_TYPES and encounter_of(r) in encounters
    ]


def search_related(client: SourceClient, encounters: Sequence[str]) -> list[Json]:
    """Conditions and Observations of `encounters` ("Encounter/id"), searched per batch."""
    found: list[Json] = []
    wanted = set(encounters)
    for start in range(0, len(encounters), SEARCH_BATCH):
        batch = ",".join(encounters[start : start + SEARCH_BATCH])
        for kind in RELATED_TYPES:
            url: str | None = client.url(kind)
            params: dict[str, str] | None = {"encounter": batch, "_count": "100"}
            pages = 0
            while url is not None:
                if pages >= MAX_RELATED_PAGES:
                    raise SourceUnavailable(
                        f"source {client.source.name}: more than {MAX_RELATED_PAGES} pages "
                        f"of {kind} for one batch of Encounters"
                    )
                page = client.get_json(url, params=params)
                params = None
                if page.get("resourceType") != "Bundle" or page.get("type") != "searchset":
                    raise SourceUnavailable(
                        f"source {client.source.name} did not answer a {kind} search "
                        "with a searchset"
                    )
                pages += 1
                found.extend(linked(entry_resources(page), wanted))
                url = next_link(page)
    return found


@dataclass
class Changed:
    """What a search by `_lastUpdated` found, and whether it was read to its end."""

    resources: list[Json] = field(default_factory=list)
    newest: str | None = None  # the newest meta.lastUpdated seen
    complete: bool = True


def search_changed(
    client: SourceClient, kinds: Sequence[str], since: str, page_size: int, max_pages: int
) -> Changed:
    """Resources of `kinds` changed after `since` (a FHIR instant), up to `max_pages` pages
    of each."""
    changed = Changed()
    for kind in kinds:
        url: str | None = client.url(kind)
        params: dict[str, str] | None = {
            "_lastUpdated": f"gt{since}",
            "_sort": "_lastUpdated",
            "_count": str(page_size),
        }
        pages = 0
        while url is not None:
            if pages >= max_pages:
                changed.complete = False
                break
            page = client.get_json(url, params=params)
            params = None
            if page.get("resourceType") != "Bundle" or page.get("type") != "searchset":
                raise SourceUnavailable(
                    f"source {client.source.name} did not answer a {kind} search with a searchset"
                )
            pages += 1
            for resource in entry_resources(page, mode="match"):
                if resource.get("resourceType") != kind:
                    continue
                changed.resources.append(resource)
                seen = (resource.get("meta") or {}).get("lastUpdated")
                if parse_instant(seen) is not None:
                    changed.newest = latest(changed.newest, str(seen))
            url = next_link(page)
    return changed


def latest(*instants: str | None) -> str | None:
    """The latest of some FHIR instants (as served), None when there is none."""
    best: tuple[datetime, str] | None = None
    for text in instants:
        moment = parse_instant(text) if text else None
        if moment is not None and (best is None or moment > best[0]):
            best = (moment, str(text))
    return best[1] if best else None


def entry_resources(page: Mapping[str, Any], mode: str | None = None) -> list[Json]:
    """The resources of a Bundle's entries (those with search.mode `mode` when given)."""
    out: list[Json] = []
    for entry in page.get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, dict):
            continue
        if mode is not None and (entry.get("search") or {}).get("mode", "match") != mode:
            continue
        out.append(resource)
    return out


def next_link(page: Mapping[str, Any]) -> str | None:
    for link in page.get("link") or ():
        if isinstance(link, Mapping) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None
