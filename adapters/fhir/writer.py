"""Storing FHIR writes: store first, then answer; many requests share one commit.

A `WriteUnit` is what one request asks for: a single create or update, a transaction (all
or nothing), a batch (each entry on its own) or resources fetched from a source server.
Whatever units are waiting are applied in one database transaction and committed; only then
does each request get its answer. Requests on the event loop (`write_async`) commit on the
loop; callers on other threads (the poller, the subscription receiver) go through a writer
thread. Both commit the same way and take turns at the write gate. Every resource version
written is, in the same transaction, an inbox row for the pipeline (`channel = "fhir"`,
`message_key = "Type/id/_history/version"`), so nothing is acknowledged that is not durable
and nothing durable is left unprocessed.

`If-Match` and `If-None-Exist` are decided against the database and what earlier units of
the same group wrote; inside the write gate the group checks that nothing it read has
changed since (another group, another process) and otherwise decides again. Preconditions
are checked for a whole unit before it writes anything, so a failed transaction leaves no
trace (SQLite's driver makes savepoints unreliable, so they are not used).

A repeat of a resource's current content (same content apart from meta) writes nothing and
answers with the current version: a retried request, or a source polled twice over the same
window, is not processed twice.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from adapters.fhir.channel import CHANNEL, COVERED, REOPENED
from adapters.fhir.errors import (
    BadRequest,
    FhirError,
    Issue,
    PreconditionFailed,
    StorageUnavailable,
)
from adapters.fhir.mapping import reference_of
from referral_gateway.domain.clock import Clock
from referral_gateway.services.errors import IntakeClosed
from referral_gateway.services.intake import GroupCommitter, LoopGroupCommitter
from referral_gateway.storage.database import write_gate
from referral_gateway.storage.errors import ConcurrentWrite
from referral_gateway.storage.fhir_store import (
    CurrentVersion,
    FhirResourceStore,
    PreparedWrites,
    ResourceWrite,
    insert_arrivals,
)
from referral_gateway.storage.inbox import (
    Arrival,
    MessageCounts,
    count_messages,
    inbox_row,
    store_arrivals,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Interaction:
    """One create (POST) or update (PUT) of a validated resource."""

    method: str  # "POST" | "PUT"
    resource_type: str
    resource: dict[str, Any]
    resource_id: str | None = None  # PUT only
    if_none_exist: str | None = None  # POST only, e.g. "identifier=system|value"
    if_match: str | None = None  # PUT only, e.g. 'W/"3"'
    full_url: str | None = None  # a Bundle entry's fullUrl (urn:uuid:... references)
    warnings: tuple[Issue, ...] = ()

    def __repr__(self) -> str:
        return f"Interaction({self.method} {self.resource_type}/{self.resource_id or ''})"


@dataclass(frozen=True)
class WriteUnit:
    site: str
    sender: str
    interactions: tuple[Interaction, ...]
    atomic: bool = True
    rejected: tuple[Arrival, ...] = ()  # unreadable input to keep in the error store
    fetched: bool = False  # read from a source by the gateway: a repeat is not a duplicate

    def __repr__(self) -> str:
        return (
            f"WriteUnit(site={self.site!r}, sender={self.sender!r}, "
            f"{len(self.interactions)} interaction(s), atomic={self.atomic})"
        )


@dataclass(frozen=True)
class Written:
    """What became of one interaction."""

    status: int  # 201 created, 200 updated / unchanged / matched, or the error's status
    resource_type: str
    resource_id: str | None = None
    version: int | None = None
    last_updated: datetime | None = None
    resource: dict[str, Any] | None = None
    changed: bool = False  # False: nothing new was stored (no-op update, conditional match)
    error: FhirError | None = None
    warnings: tuple[Issue, ...] = ()

    def __repr__(self) -> str:
        return f"Written({self.status} {self.resource_type}/{self.resource_id})"


UnitResult = list[Written]


class FhirWriter:
    """FHIR writes through the gateway's group commit: resources and their inbox rows are
    stored together, several requests per transaction, before any is answered."""

    def __init__(
        self,
        store: FhirResourceStore,
        clock: Clock,
        *,
        on_committed: Callable[[], None] | None = None,
        max_group: int = 200,
    ) -> None:
        self.store = store
        self.engine = store.engine
        self.clock = clock
        self._committer: GroupCommitter[WriteUnit, UnitResult] = GroupCommitter(
            self._commit_units,
            name="fhir-writer",
            max_group=max_group,
            on_committed=on_committed,
            isolate_failures=True,  # a database error fails only its own request
        )
        self._on_loop: LoopGroupCommitter[WriteUnit, UnitResult] = LoopGroupCommitter(
            self._commit_units,
            max_group=max_group,
            on_committed=on_committed,
            isolate_failures=True,
        )
        self._stopped = False

    @property
    def on_committed(self) -> Callable[[], None] | None:
        return self._committer.on_committed

    @on_committed.setter
    def on_committed(self, callback: Callable[[], None] | None) -> None:
        self._committer.on_committed = callback
        self._on_loop.on_committed = callback

    def start(self) -> FhirWriter:
        self._stopped = False
        self._committer.start()
        return self

    def stop(self) -> None:
        self._stopped = True
        self._committer.stop()

    def submit(self, unit: WriteUnit) -> Future[UnitResult]:
        try:
            return self._committer.submit(unit)
        except IntakeClosed:
            raise StorageUnavailable("the gateway is stopping; try again later") from None

    def write(self, unit: WriteUnit, timeout: float = 30.0) -> UnitResult:
        """Store a unit and wait until it is committed. Raises the unit's FhirError when an
        atomic unit fails a precondition."""
        return self.submit(unit).result(timeout)

    async def write_async(self, unit: WriteUnit) -> UnitResult:
        """`write` for a request on the event loop: it joins the loop's next group, which
        commits on the loop itself."""
        if self._stopped:
            raise StorageUnavailable("the gateway is stopping; try again later")
        return await self._on_loop.wait(unit)

    def _commit_units(self, units: Sequence[WriteUnit]) -> list[UnitResult | Exception]:
        """Decide the group and encrypt its rows holding no lock, then, inside the write
        gate, check that nothing the decisions read has changed and write. If something did
        (another process wrote a resource), decide again; the last try decides inside the
        gate, where nothing can overtake it."""
        for attempt in range(3):
            now = self.clock()
            try:
                if attempt < 2:
                    with self.engine.connect() as conn:
                        batch = _Group(self.store, conn, now)
                        results = batch.decide(units)
                    prepared = batch.prepare()
                    with write_gate(self.engine), self.engine.begin() as conn:
                        if not batch.unchanged(conn):
                            raise ConcurrentWrite("a resource read for the group has changed")
                        prepared.write(conn)
                else:
                    with write_gate(self.engine), self.engine.begin() as conn:
                        batch = _Group(self.store, conn, now)
                        results = batch.decide(units)
                        batch.prepare().write(conn)
            except ConcurrentWrite:
                continue  # another process wrote one of these resources: decide again
            except Exception as exc:
                log.error("storing FHIR writes failed: %s", type(exc).__name__)
                raise StorageUnavailable("the write could not be stored; try again later") from None
            return list(results)
        raise StorageUnavailable("the write could not be stored; try again later")


# -- applying a group of units inside the writer's transaction -------------------------------
@dataclass
class _Planned:
    index: int
    interaction: Interaction
    resource_id: str
    matched: bool = False  # conditional create found the resource: nothing to write
    error: FhirError | None = None
    resource: dict[str, Any] = field(default_factory=dict)  # references resolved
    new: bool = False  # a server-assigned id: cannot exist yet


ResourceKey = tuple[str, str, str]  # site, type, id


class _Group:
    """The writes of one group, decided in order and stored together at the end.

    Decisions (versions, conditional matches) read the database and, first, what earlier
    units of the same group wrote; every version and identifier match read from the
    database is remembered, so `unchanged` can tell whether the decisions still hold.
    `prepare` then turns the final state of each resource and every version's inbox row
    into rows, written in a handful of statements.
    """

    def __init__(self, store: FhirResourceStore, conn: Any, now: datetime) -> None:
        self.store = store
        self.conn = conn
        self.now = now
        # per resource: its last write in the group, the version the database held before
        # the group (None: new), and its content
        self.final: dict[ResourceKey, tuple[ResourceWrite, int | None, dict[str, Any]]] = {}
        self.by_identifier: dict[tuple[str, str, str], set[str]] = {}
        self.arrivals: list[Arrival] = []
        self.rejected: list[Arrival] = []
        self.counts: MessageCounts = Counter()
        self.known_versions: dict[ResourceKey, CurrentVersion | None] = {}
        self.known_ids: dict[tuple[str, str, str], set[str]] = {}
        self.seen: dict[ResourceKey, int | None] = {}  # versions read from the database

    def decide(self, units: Sequence[WriteUnit]) -> list[UnitResult | FhirError]:
        self.prefetch(list(units))
        return [self.apply(unit) for unit in units]

    def unchanged(self, conn: Any) -> bool:
        """Whether every version and identifier match the decisions read is still so."""
        versions: dict[tuple[str, str], list[str]] = {}
        for site, kind, rid in self.seen:
            versions.setdefault((site, kind), []).append(rid)
        for (site, kind), rids in versions.items():
            now = self.store.versions_of(conn, site, kind, rids)
            for rid in rids:
                current = now.get(rid)
                if (current.version if current else None) != self.seen[(site, kind, rid)]:
                    return False
        keys: dict[tuple[str, str], list[str]] = {}
        for site, kind, key in self.known_ids:
            keys.setdefault((site, kind), []).append(key)
        for (site, kind), wanted in keys.items():
            now_ids = self.store.ids_by_keys(conn, site, kind, wanted)
            if any(now_ids.get(k, set()) != self.known_ids[(site, kind, k)] for k in wanted):
                return False
        return True

    def prefetch(self, units: Sequence[WriteUnit]) -> None:
        """Read, in one query per site and type, the versions of resources the group updates
        and the matches of its conditional creates (each query releases and retakes the
        GIL, which under load is what costs)."""
        ids: dict[tuple[str, str], set[str]] = {}
        keys: dict[tuple[str, str], set[str]] = {}
        for unit in units:
            for it in unit.interactions:
                if it.method == "PUT" and it.resource_id:
                    ids.setdefault((unit.site, it.resource_type), set()).add(it.resource_id)
                elif it.method == "POST" and it.if_none_exist:
                    try:
                        system, value = parse_if_none_exist(it.if_none_exist)
                    except FhirError:
                        continue  # the unit will hear about it when it is applied
                    key = self.store.identifier_key(
                        unit.site, it.resource_type, "*" if system is None else system, value
                    )
                    keys.setdefault((unit.site, it.resource_type), set()).add(key)
        for (site, kind), wanted in ids.items():
            found = self.store.versions_of(self.conn, site, kind, sorted(wanted))
            for rid in wanted:
                version = found.get(rid)
                self.known_versions[(site, kind, rid)] = version
                self.seen[(site, kind, rid)] = version.version if version else None
        for (site, kind), wanted_keys in keys.items():
            matches = self.store.ids_by_keys(self.conn, site, kind, sorted(wanted_keys))
            for key in wanted_keys:
                self.known_ids[(site, kind, key)] = matches.get(key, set())

    # reads that see the group's own writes ---------------------------------------------
    def version_of(self, key: ResourceKey) -> CurrentVersion | None:
        if key in self.final:
            w = self.final[key][0]
            return CurrentVersion(w.version, w.content_hash, w.status)
        if key not in self.known_versions:
            found = self.store.version_of(self.conn, *key)
            self.known_versions[key] = found
            self.seen.setdefault(key, found.version if found else None)
        return self.known_versions[key]

    def current(self, key: ResourceKey) -> tuple[int, datetime, dict[str, Any]] | None:
        if key in self.final:
            w, _, content = self.final[key]
            return w.version, w.last_updated, content
        found = self.store.current(self.conn, *key)
        self.seen.setdefault(key, found.version if found else None)
        return (found.version, found.last_updated, found.content) if found else None

    def ids_by_identifier(self, site: str, kind: str, system: str | None, value: str) -> list[str]:
        key = self.store.identifier_key(site, kind, "*" if system is None else system, value)
        stored = self.known_ids.get((site, kind, key))
        if stored is None:
            stored = set(self.store.ids_by_identifier(self.conn, site, kind, system, value))
            self.known_ids[(site, kind, key)] = stored
        ids = {i for i in stored if (site, kind, i) not in self.final}
        ids |= self.by_identifier.get((site, kind, key), set())
        return sorted(ids)

    # deciding -----------------------------------------------------------------------------
    def apply(self, unit: WriteUnit) -> UnitResult | FhirError:
        try:
            planned = self._plan(unit, atomic=unit.atomic)
        except FhirError as err:
            return err
        results: list[Written | None] = [None] * len(planned)
        first_arrival = len(self.arrivals)
        for p in sorted(planned, key=lambda p: (p.interaction.method != "POST", p.index)):
            results[p.index] = self._decide(unit, p)
        self._mark_covered(planned, results, first_arrival)
        self.rejected.extend(unit.rejected)
        return [r for r in results if r is not None]

    def _mark_covered(
        self, planned: list[_Planned], results: list[Written | None], first_arrival: int
    ) -> None:
        """Resources evaluated with an Encounter written in the same unit need no evaluation
        of their own: a Condition or Observation of that Encounter, and a Patient created
        here (with an id of ours, so nothing older refers to it) that is its subject. The
        Encounter's message reads them all from the store once the unit is committed, so
        they are stored as already filtered: the pipeline never has to pick them up."""
        encounters = {
            f"Encounter/{w.resource_id}": w.resource
            for w in results
            if w is not None and w.changed and w.resource_type == "Encounter"
        }
        if not encounters:
            return
        subjects = {reference_of((e or {}).get("subject")) for e in encounters.values()}
        covered: set[str] = set()
        for p, w in zip(planned, results, strict=True):
            if w is None or not w.changed or w.resource is None:
                continue
            kind = w.resource_type
            if (
                kind in ("Condition", "Observation")
                and reference_of(w.resource.get("encounter")) in encounters
            ) or (kind == "Patient" and p.new and f"Patient/{w.resource_id}" in subjects):
                covered.add(f"{kind}/{w.resource_id}/_history/{w.version}")
        for i in range(first_arrival, len(self.arrivals)):
            arrival = self.arrivals[i]
            if arrival.message_key in covered:
                self.arrivals[i] = replace(
                    arrival, message_type=arrival.message_type + COVERED, state="filtered"
                )

    def _plan(self, unit: WriteUnit, *, atomic: bool) -> list[_Planned]:
        planned: list[_Planned] = []
        seen: set[str] = set()
        for index, it in enumerate(unit.interactions):
            try:
                p = self._plan_one(unit, index, it)
                key = f"{it.resource_type}/{p.resource_id}"
                if key in seen:
                    raise BadRequest(
                        f"{key} appears twice in the same request",
                        expression=[f"Bundle.entry[{index}]"],
                    )
                seen.add(key)
            except FhirError as err:
                if atomic:
                    raise
                p = _Planned(index, it, it.resource_id or "", error=err)
            planned.append(p)
        refs = {
            p.interaction.full_url: f"{p.interaction.resource_type}/{p.resource_id}"
            for p in planned
            if p.interaction.full_url and p.error is None
        }
        for p in planned:  # a copy: a retried group plans again from the request as sent
            p.resource = dict(
                _resolved(p.interaction.resource, refs) if refs else p.interaction.resource
            )
        return planned

    def _plan_one(self, unit: WriteUnit, index: int, it: Interaction) -> _Planned:
        if it.method == "POST":
            if it.if_none_exist:
                system, value = parse_if_none_exist(it.if_none_exist)
                ids = self.ids_by_identifier(unit.site, it.resource_type, system, value)
                if len(ids) > 1:
                    raise PreconditionFailed(
                        "If-None-Exist matches more than one resource",
                        code="multiple-matches",
                    )
                if ids:
                    return _Planned(index, it, ids[0], matched=True)
            return _Planned(index, it, _new_id(), new=True)
        if it.resource_id is None:
            raise BadRequest("an update needs the resource id in its URL")
        if it.if_match is not None:
            wanted = parse_etag(it.if_match)
            current = self.version_of((unit.site, it.resource_type, it.resource_id))
            if current is None or current.version != wanted:
                raise PreconditionFailed(
                    "If-Match does not name the current version of the resource",
                    code="conflict",
                )
        return _Planned(index, it, it.resource_id)

    def _unchanged(self, unit: WriteUnit, it: Interaction, key: ResourceKey) -> Written:
        """The answer for a write that stores nothing new: the current version, counted as
        a duplicate (a conditional create's match, or a repeat of the current content)
        unless the gateway fetched it itself (a poll's overlap: the sender sent nothing
        twice)."""
        found = self.current(key)
        assert found is not None
        if not unit.fetched:
            self.counts[(CHANNEL, unit.sender, self.now.date(), "duplicate")] += 1
        version, last_updated, content = found
        return Written(
            200,
            it.resource_type,
            key[2],
            version,
            last_updated,
            content,
            changed=False,
            warnings=it.warnings,
        )

    def _decide(self, unit: WriteUnit, p: _Planned) -> Written:
        it = p.interaction
        key = (unit.site, it.resource_type, p.resource_id)
        if p.error is not None:
            return Written(p.error.status, it.resource_type, error=p.error)
        if p.matched:
            return self._unchanged(unit, it, key)
        resource = p.resource
        resource["id"] = p.resource_id
        meta = {
            k: v
            for k, v in (resource.get("meta") or {}).items()
            if k not in ("versionId", "lastUpdated")
        }
        if meta:
            resource["meta"] = meta
        else:
            resource.pop("meta", None)
        content_hash = self.store.content_hash(
            json.dumps(resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        )
        current = None if p.new else self.version_of(key)
        if current is not None and current.content_hash == content_hash:
            return self._unchanged(unit, it, key)
        version = current.version + 1 if current else 1
        resource["meta"] = {
            **meta,
            "versionId": str(version),
            "lastUpdated": fhir_instant(self.now),
        }
        status = resource.get("status") if isinstance(resource.get("status"), str) else None
        payload = json.dumps(resource, separators=(",", ":"), ensure_ascii=False).encode()
        keys = frozenset(
            k
            for system, value in _identifiers(resource)
            for k in self.store.identifier_keys(unit.site, it.resource_type, system, value)
        )
        write = ResourceWrite(
            site=unit.site,
            resource_type=it.resource_type,
            resource_id=p.resource_id,
            version=version,
            last_updated=self.now,
            status=status[:30] if status else None,
            content_hash=content_hash,
            payload=payload,
            identifier_keys=keys,
            subject=reference_of(resource.get("subject") or resource.get("patient")),
            encounter=reference_of(resource.get("encounter") or resource.get("context")),
            sender=unit.sender,
        )
        self._record(key, write, base=current.version if current else None, content=resource)
        message_type = it.resource_type
        if (
            it.resource_type == "Encounter"
            and current is not None
            and current.status == "finished"
            and status not in ("finished", "cancelled", "entered-in-error")
        ):
            message_type += REOPENED
        self.arrivals.append(
            Arrival(
                channel=CHANNEL,
                sender=unit.sender,
                message_key=f"{it.resource_type}/{p.resource_id}/_history/{version}",
                message_type=message_type,
                site=unit.site,
                payload=payload,
                received_at=self.now,
            )
        )
        return Written(
            201 if version == 1 else 200,
            it.resource_type,
            p.resource_id,
            version,
            self.now,
            resource,
            changed=True,
            warnings=it.warnings,
        )

    def _record(
        self,
        key: ResourceKey,
        write: ResourceWrite,
        *,
        base: int | None,
        content: dict[str, Any],
    ) -> None:
        site, kind, rid = key
        previous = self.final.get(key)
        if previous is not None:
            base = previous[1]  # what the database held before this group
            for old in previous[0].identifier_keys:
                self.by_identifier.get((site, kind, old), set()).discard(rid)
        self.final[key] = (write, base, content)
        for k in write.identifier_keys:
            self.by_identifier.setdefault((site, kind, k), set()).add(rid)

    # storing --------------------------------------------------------------------------------
    def prepare(self) -> _Prepared:
        """The group as rows, encrypted: everything but running the statements."""
        keyring = self.store.keyring
        return _Prepared(
            store=self.store,
            writes=self.store.prepare_writes([(w, base) for w, base, _ in self.final.values()]),
            arrivals=self.arrivals,
            arrival_rows=[inbox_row(a, keyring) for a in self.arrivals],
            rejected=self.rejected,
            rejected_rows=[inbox_row(a, keyring) for a in self.rejected],
            counts=Counter(self.counts),
        )


@dataclass
class _Prepared:
    store: FhirResourceStore
    writes: PreparedWrites
    arrivals: list[Arrival]
    arrival_rows: list[dict[str, Any]]
    rejected: list[Arrival]
    rejected_rows: list[dict[str, Any]]
    counts: MessageCounts

    def write(self, conn: Any) -> None:
        self.store.write_many(conn, self.writes)
        counts = self.counts + insert_arrivals(conn, self.arrivals, self.arrival_rows)
        if self.rejected:
            store_arrivals(conn, self.rejected, self.rejected_rows)
        count_messages(conn, counts)


def _identifiers(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for identifier in resource.get("identifier") or ():
        if isinstance(identifier, dict) and identifier.get("value"):
            yield str(identifier.get("system") or ""), str(identifier["value"])


def _resolved(node: Any, refs: dict[str, str]) -> Any:
    """`node` with references to fullUrls of the same Bundle pointing at the ids they were
    given. Only the containers on the way to a changed reference are copied; the rest is
    shared with the request as sent, which nothing changes (a retried group plans again
    from it, and the writer changes only a resource's top level, which is always a copy)."""
    if isinstance(node, dict):
        changed: dict[str, Any] = {}
        for key, value in node.items():
            if isinstance(value, dict | list):
                new = _resolved(value, refs)
                if new is not value:
                    changed[key] = new
        ref = node.get("reference")
        if isinstance(ref, str) and ref in refs:
            changed["reference"] = refs[ref]
        return {**node, **changed} if changed else node
    if isinstance(node, list):
        items = [_resolved(v, refs) if isinstance(v, dict | list) else v for v in node]
        return items if any(a is not b for a, b in zip(items, node, strict=True)) else node
    return node


_ids = random.Random(os.urandom(32))  # each draw is one call, whole under the GIL


def _new_id(now_ms: int | None = None) -> str:
    """A time-ordered UUID (the version 7 layout: 48 bits of Unix milliseconds, then 74
    random bits) for a created resource. Ids need to be unique, not secret: a generator
    seeded once from the OS spares a system call per resource. Ids that grow with time land
    at the end of each index keyed on them (the resource's own, and its inbox row's), so a
    commit rewrites a few index pages rather than one page per resource."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    rand = _ids.getrandbits(74)
    return str(
        uuid.UUID(
            int=(ms & 0xFFFF_FFFF_FFFF) << 80
            | 0x7 << 76  # version 7
            | (rand >> 62) << 64  # 12 random bits
            | 0b10 << 62  # the RFC 4122 variant
            | rand & ((1 << 62) - 1)  # 62 random bits
        )
    )


def parse_if_none_exist(query: str) -> tuple[str | None, str]:
    """`identifier=system|value` (or `identifier=value`, any system) from If-None-Exist."""
    params = parse_qsl(query.lstrip("?"), keep_blank_values=True)
    if len(params) != 1 or params[0][0] != "identifier" or not params[0][1]:
        raise BadRequest(
            "If-None-Exist supports exactly one parameter, identifier=[system|]value",
            code="not-supported",
        )
    raw = params[0][1]
    if "|" in raw:
        system, value = raw.split("|", 1)
        if not value:
            raise BadRequest("If-None-Exist identifier has no value", code="invalid")
        return system, value
    return None, raw


def parse_etag(value: str) -> int:
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit():
        raise BadRequest('If-Match must name a version, e.g. W/"3"', code="invalid")
    return int(text)


def fhir_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
