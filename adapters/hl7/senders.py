"""Who may send HL7 v2 to the gateway, and where each sender takes its application ACKs.

MSH-4 (the sending facility) picks the site a message counts for, so it cannot be taken on
trust from anyone who can reach the MLLP port. Each site lists, under ``[sites.<ODS>.mllp]``
in the site file (`RG_CONFIG_FILE`), the facility codes it sends as and, optionally, where
its messages come from::

    [sites.RXX01.mllp]
    facilities = ["RXX01", "RXX01ED"]        # MSH-4.1 values (default: the site's code)
    networks = ["10.20.0.0/16"]              # CIDR; omit to accept any address
    tls_subjects = ["CN=edis.rxx01.example"] # client certificate subjects; omit for any
    unknown_source = "reject"                # or "quarantine": held for an administrator
    application_acks = "return"              # "return", "same_connection" or "none"
    return_host = "10.20.1.5"                # with "return": where the application ACKs go
    return_port = 2576

The decision for one message (`SenderDirectory.identify`):

1. MSH-4.1 must be 1-32 letters, digits, ``.``, ``_`` or ``-`` (a facility code, never
   free text): otherwise AR. This holds with or without configuration.
2. No site lists senders (no site file, or no site with a ``[sites.X.mllp]`` table): the
   facility code is the site, as it always was (the demo runs so). Once one site has an
   ``mllp`` table, every site is known by configuration (a site without one sends as its
   own code, from anywhere).
3. Otherwise the facility code must be one a site lists: otherwise AR.
4. When that site lists networks or certificate subjects, the connection must match every
   kind it lists (a subject matches when each of its ``KEY=value`` parts is in the
   certificate's subject). A mismatch is an unknown source: AR, or with
   ``unknown_source = "quarantine"`` the message is stored but not processed until an
   administrator accepts it (`referral-gateway quarantine accept`).

Messages read from files (`replay`) have no connection: only steps 1-3 apply.

Application ACKs (MSH-16) are never written unasked on the sender's connection: a sender
reading one reply per message would take one as the reply to its next message.
``application_acks`` says where they go: ``return`` opens a connection of the gateway's own
to ``return_host:return_port``; ``same_connection`` writes them after the accept ACK on the
connection the message came on (for senders that read replies asynchronously); ``none`` (the
default) sends none and the listener counts and logs that.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from adapters.hl7.er7 import FACILITY_CODE
from adapters.hl7.errors import SenderConfigError
from adapters.hl7.mllp import Peer

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnknownSource(enum.StrEnum):
    REJECT = "reject"
    QUARANTINE = "quarantine"


class ApplicationAcks(enum.StrEnum):
    NONE = "none"
    RETURN = "return"
    SAME_CONNECTION = "same_connection"


class Action(enum.StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    QUARANTINE = "quarantine"


@dataclass(frozen=True, slots=True)
class SenderSite:
    """One site's senders: the facility codes it sends as and where it sends from."""

    site: str
    facilities: frozenset[str]  # upper-cased
    networks: tuple[Network, ...] = ()
    tls_subjects: tuple[frozenset[tuple[str, str]], ...] = ()
    unknown_source: UnknownSource = UnknownSource.REJECT
    application_acks: ApplicationAcks = ApplicationAcks.NONE
    return_host: str = ""
    return_port: int = 0

    def source_matches(self, peer: Peer) -> bool:
        if self.networks:
            try:
                address = ipaddress.ip_address(peer.host)
            except ValueError:
                return False
            if not any(address in network for network in self.networks):
                return False
        if self.tls_subjects:
            subject = _subject_parts(peer.certificate_subject)
            if not any(wanted <= subject for wanted in self.tls_subjects):
                return False
        return True


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one message, by who sent it. `reason` never quotes the message."""

    action: Action
    site: str = ""
    sender: SenderSite | None = None
    reason: str = ""
    field: int = 4
    error_code: str = "103"  # HL7 table 0357 (103: table value not found)


@dataclass(frozen=True)
class SenderDirectory:
    """The configured senders; empty (`configured` False) keeps MSH-4 as the site."""

    sites: Sequence[SenderSite] = field(default_factory=tuple)

    @property
    def configured(self) -> bool:
        return bool(self.sites)

    def site_for_facility(self, facility: str) -> SenderSite | None:
        key = facility.strip().upper()
        for site in self.sites:
            if key in site.facilities:
                return site
        return None

    def identify(self, facility: str, peer: Peer | None) -> Verdict:
        """Accept, reject or quarantine a message with MSH-4.1 `facility` from `peer`
        (None: read from a file)."""
        facility = facility.strip()
        if not FACILITY_CODE.match(facility):
            return Verdict(
                Action.REJECT,
                reason="MSH-4 sending facility must be 1-32 letters, digits, '.', '_' or '-'",
                error_code="102",
            )
        if not self.configured:
            return Verdict(Action.ACCEPT, site=facility)
        site = self.site_for_facility(facility)
        if site is None:
            return Verdict(
                Action.REJECT, reason="MSH-4 sending facility is not a configured sender"
            )
        if peer is None or site.source_matches(peer):
            return Verdict(Action.ACCEPT, site=site.site, sender=site)
        if site.unknown_source is UnknownSource.QUARANTINE:
            return Verdict(Action.QUARANTINE, site=site.site, sender=site)
        return Verdict(
            Action.REJECT,
            site=site.site,
            sender=site,
            reason="this facility's messages are not accepted from this connection",
            error_code="207",
        )


_MLLP_KEYS = frozenset(
    {
        "facilities",
        "networks",
        "tls_subjects",
        "unknown_source",
        "application_acks",
        "return_host",
        "return_port",
    }
)


def parse_senders(data: Mapping[str, Any]) -> SenderDirectory:
    """The senders of a loaded site file: every ``[sites.X.mllp]`` table.

    A site without an ``mllp`` table sends as its own code from anywhere, but only once some
    site has one: a site file with no ``mllp`` table at all configures no senders.
    """
    sites = data.get("sites", {})
    if not isinstance(sites, Mapping):
        return SenderDirectory()
    tables = {
        str(code).strip().upper(): table.get("mllp") if isinstance(table, Mapping) else None
        for code, table in sites.items()
    }
    if all(table is None for table in tables.values()):
        return SenderDirectory()
    parsed = [_parse_site(code, table or {}) for code, table in tables.items()]
    seen: dict[str, str] = {}
    for site in parsed:
        for facility in site.facilities:
            if facility in seen:
                raise SenderConfigError(
                    f"sites.{site.site}.mllp.facilities: {facility} is already "
                    f"a facility of site {seen[facility]}"
                )
            seen[facility] = site.site
    return SenderDirectory(tuple(parsed))


def _parse_site(code: str, table: Any) -> SenderSite:
    where = f"sites.{code}.mllp"
    if not isinstance(table, Mapping):
        raise SenderConfigError(f"{where}: expected a table")
    unknown = sorted(set(table) - _MLLP_KEYS)
    if unknown:
        raise SenderConfigError(
            f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(sorted(_MLLP_KEYS))})"
        )
    facilities = frozenset(
        f.upper() for f in _strings(table.get("facilities", [code]), f"{where}.facilities")
    )
    for facility in facilities:
        if not FACILITY_CODE.match(facility):
            raise SenderConfigError(
                f"{where}.facilities: {facility!r} is not a facility code "
                "(1-32 letters, digits, '.', '_', '-')"
            )
    if not facilities:
        raise SenderConfigError(f"{where}.facilities: list at least one facility code")
    networks = []
    for text in _strings(table.get("networks", []), f"{where}.networks"):
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise SenderConfigError(f"{where}.networks: {text!r} is not a CIDR network") from None
    subjects = []
    for text in _strings(table.get("tls_subjects", []), f"{where}.tls_subjects"):
        parts = _subject_parts(text)
        if not parts:
            raise SenderConfigError(f"{where}.tls_subjects: {text!r} is not KEY=value,...")
        subjects.append(parts)
    unknown_source = _choice(table, "unknown_source", UnknownSource, UnknownSource.REJECT, where)
    acks = _choice(table, "application_acks", ApplicationAcks, ApplicationAcks.NONE, where)
    host = table.get("return_host", "")
    port = table.get("return_port", 0)
    if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
        raise SenderConfigError(f"{where}.return_host/return_port: a host name and a port")
    if acks is ApplicationAcks.RETURN and (not host.strip() or not 0 < port < 65536):
        raise SenderConfigError(
            f'{where}: application_acks = "return" needs return_host and return_port (1-65535)'
        )
    return SenderSite(
        site=code,
        facilities=facilities,
        networks=tuple(networks),
        tls_subjects=tuple(subjects),
        unknown_source=unknown_source,
        application_acks=acks,
        return_host=host.strip(),
        return_port=port,
    )


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SenderConfigError(f"{where}: expected a list of strings")
    return [v.strip() for v in value]


E = TypeVar("E", bound=enum.StrEnum)


def _choice(table: Mapping[str, Any], key: str, kind: type[E], default: E, where: str) -> E:
    value = table.get(key, default.value)
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(f'"{v.value}"' for v in kind)
        raise SenderConfigError(f"{where}.{key}: expected one of {allowed}") from None


def _subject_parts(text: str) -> frozenset[tuple[str, str]]:
    parts: set[tuple[str, str]] = set()
    for piece in _split_subject(text):
        key, sep, value = piece.partition("=")
        if not sep or not key.strip() or not value.strip():
            return frozenset()
        parts.add((key.strip().upper(), value.strip()))
    return frozenset(parts)


def _split_subject(text: str) -> Iterable[str]:
    return [piece for piece in text.split(",") if piece.strip()]
