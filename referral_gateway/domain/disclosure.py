"""Disclosure control for counts below national level (NHS small-number rules).

Primary suppression, per count:
- 0 stays 0 (knowing that nobody was in a cell identifies nobody);
- 1 to 7 is shown as `*`;
- 8 and over is rounded to the nearest multiple of 5. Counts are whole numbers, so a count
  is never exactly half-way between two multiples of 5: remainders 1 and 2 round down,
  3 and 4 round up (8 -> 10, 12 -> 10, 13 -> 15, 17 -> 15, 18 -> 20).

Secondary suppression, over the report's additive relations ("candidates = the sum of the
candidates in each age band"): a relation in which exactly one figure is suppressed would
let a reader subtract the others from the total and recover it, so a second figure of that
relation is suppressed too: its smallest non-zero part still shown (the total only when no
part is left). One suppression can expose another relation, so the check repeats until every
relation has none or at least two suppressed figures. Rounding already blurs any arithmetic on
shown figures by up to 2 per figure; the secondary rule closes the exact-recovery route.

Percentages come from the figures as shown (rounded), and are suppressed when their
numerator or denominator is suppressed.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Generic, Literal, TypeVar

from referral_gateway.domain.errors import DisclosureError

K = TypeVar("K", bound=Hashable)

SUPPRESSED: Final = "*"
Suppressed = Literal["*"]
Shown = int | Suppressed
"""A figure as published: a count (exact for administrators, rounded otherwise) or `*`."""

SMALLEST_SHOWN = 8
ROUNDING_BASE = 5


def round_to_base(count: int) -> int:
    """Nearest multiple of 5; whole numbers never tie (see the module docstring)."""
    if count < 0:
        raise DisclosureError("a count cannot be negative")
    return ((count + ROUNDING_BASE // 2) // ROUNDING_BASE) * ROUNDING_BASE


def primary(count: int) -> Shown:
    """One count as it may be published on its own."""
    if count < 0:
        raise DisclosureError("a count cannot be negative")
    if count == 0:
        return 0
    if count < SMALLEST_SHOWN:
        return SUPPRESSED
    return round_to_base(count)


@dataclass(frozen=True, slots=True)
class Relation(Generic[K]):
    """`total` is exactly the sum of `parts`."""

    total: K
    parts: tuple[K, ...]


@dataclass(frozen=True, slots=True)
class Disclosure(Generic[K]):
    shown: dict[K, Shown]
    secondary: frozenset[K]  # cells suppressed to protect another cell, not for their size


def disclose(
    counts: Mapping[K, int], relations: Sequence[Relation[K]] = (), *, raw: bool = False
) -> Disclosure[K]:
    """Every count as it may be published. `raw=True` is for administrators only: counts
    exactly as they are, nothing suppressed."""
    for rel in relations:
        if counts[rel.total] != sum(counts[p] for p in rel.parts):
            raise DisclosureError("a relation's parts do not add up to its total")
    if raw:
        for value in counts.values():
            if value < 0:
                raise DisclosureError("a count cannot be negative")
        return Disclosure(dict(counts), frozenset())
    shown: dict[K, Shown] = {key: primary(value) for key, value in counts.items()}
    secondary: set[K] = set()
    changed = True
    while changed:
        changed = False
        for rel in relations:
            if not recoverable(rel, shown):
                continue
            extra = _second_cell(rel, counts, shown)
            shown[extra] = SUPPRESSED
            secondary.add(extra)
            changed = True
    return Disclosure(shown, frozenset(secondary))


def recoverable(rel: Relation[K], shown: Mapping[K, Shown]) -> bool:
    """Exactly one figure of the relation is suppressed, so subtracting the others from the
    total (or adding the parts) would give it back: what secondary suppression prevents."""
    return sum(1 for m in (rel.total, *rel.parts) if shown[m] == SUPPRESSED) == 1


def publishable(value: Shown) -> bool:
    """A figure that primary suppression could have published: `*`, 0, or a multiple of 5
    of at least 10 (a count is published as itself only if `primary` leaves it unchanged)."""
    return value == SUPPRESSED or (isinstance(value, int) and primary(value) == value)


def _second_cell(rel: Relation[K], counts: Mapping[K, int], shown: Mapping[K, Shown]) -> K:
    open_parts = [p for p in rel.parts if shown[p] != SUPPRESSED and counts[p] > 0]
    if open_parts:
        return min(open_parts, key=lambda p: counts[p])  # first of the smallest, in order
    if shown[rel.total] != SUPPRESSED and counts[rel.total] > 0:
        return rel.total
    # One figure hidden and every other figure 0: the relation could not add up.
    raise DisclosureError("a relation with a single suppressed figure has nothing to pair it with")


def percentage(numerator: Shown, denominator: Shown) -> Shown | None:
    """Whole percent (half up) from the figures as shown; `*` when either is suppressed,
    None when the denominator is 0."""
    if numerator == SUPPRESSED or denominator == SUPPRESSED:
        return SUPPRESSED
    assert isinstance(numerator, int) and isinstance(denominator, int)
    if denominator == 0:
        return None
    return (200 * numerator + denominator) // (2 * denominator)


def is_suppressed(value: Shown | None) -> bool:
    return value == SUPPRESSED
