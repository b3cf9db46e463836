"""Disclosure control: the small-number rules on single counts, secondary suppression on
relations, and percentages from rounded figures."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from referral_gateway.domain.disclosure import SUPPRESSED, Relation, disclose, percentage, primary
from referral_gateway.domain.errors import DisclosureError


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (0, 0),
        (1, "*"),
        (7, "*"),
        (8, 10),
        (12, 10),
        (13, 15),
        (17, 15),
        (18, 20),
        (100, 100),
        (102, 100),
        (103, 105),
    ],
)
def test_small_counts_are_hidden_and_the_rest_rounded_to_the_nearest_five(count, shown):
    assert primary(count) == shown


def test_a_negative_count_is_a_broken_invariant():
    with pytest.raises(DisclosureError):
        primary(-1)


def test_a_lone_suppressed_part_takes_the_smallest_other_part_with_it():
    # total 43 = 3 + 10 + 30: with only the 3 hidden, 45 - 10 - 30 would recover it
    counts = {"total": 43, "a": 3, "b": 10, "c": 30}
    result = disclose(counts, [Relation("total", ("a", "b", "c"))])
    assert result.shown == {"total": 45, "a": "*", "b": "*", "c": 30}
    assert result.secondary == frozenset({"b"})


def test_two_suppressed_parts_need_no_secondary_suppression():
    counts = {"total": 36, "a": 3, "b": 5, "c": 28}
    result = disclose(counts, [Relation("total", ("a", "b", "c"))])
    assert result.shown == {"total": 35, "a": "*", "b": "*", "c": 30}
    assert result.secondary == frozenset()


def test_zero_parts_are_never_picked_as_the_second_cell():
    counts = {"total": 15, "a": 0, "b": 4, "c": 11}
    result = disclose(counts, [Relation("total", ("a", "b", "c"))])
    assert result.shown == {"total": 15, "a": 0, "b": "*", "c": "*"}


def test_a_secondary_suppression_that_exposes_another_relation_is_protected_too():
    # x is hidden to protect `small` in t1; t2 = x + y would then give x away, so y goes too
    counts = {"t1": 20, "small": 5, "x": 15, "t2": 40, "y": 25}
    rels = [Relation("t1", ("small", "x")), Relation("t2", ("x", "y"))]
    result = disclose(counts, rels)
    assert result.shown == {"t1": 20, "small": "*", "x": "*", "t2": 40, "y": "*"}
    assert result.secondary == frozenset({"x", "y"})


CHAIN_COUNTS = {"t1": 20, "small": 5, "x": 15, "t2": 40, "y": 25, "t3": 55, "z": 30}
CHAIN = [Relation("t1", ("small", "x")), Relation("t2", ("x", "y")), Relation("t3", ("y", "z"))]


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(CHAIN)),
    ids=lambda order: "-".join(r.total for r in order),
)
def test_secondary_suppression_repeats_until_stable_whatever_the_order_of_relations(order):
    # small is hidden for its size; protecting it hides x, which exposes t2, whose protection
    # hides y, which exposes t3: one pass over the relations is not enough in most orders
    result = disclose(CHAIN_COUNTS, list(order))
    assert result.shown == {
        "t1": 20,
        "small": "*",
        "x": "*",
        "t2": 40,
        "y": "*",
        "t3": 55,
        "z": "*",
    }
    assert result.secondary == frozenset({"x", "y", "z"})


@st.composite
def cross_tabulations(draw):
    """A table of counts with its row totals, column totals and grand total, and the
    relations between them in a random order: the shape of a report's breakdowns."""
    rows = draw(st.integers(2, 4))
    columns = draw(st.integers(2, 4))
    cells = {
        (r, c): draw(st.integers(0, 12) | st.integers(8, 40))  # many near the threshold
        for r in range(rows)
        for c in range(columns)
    }
    counts = dict(cells)
    relations = []
    for r in range(rows):
        counts[("row", r)] = sum(cells[r, c] for c in range(columns))
        relations.append(Relation(("row", r), tuple((r, c) for c in range(columns))))
    for c in range(columns):
        counts[("column", c)] = sum(cells[r, c] for r in range(rows))
        relations.append(Relation(("column", c), tuple((r, c) for r in range(rows))))
    counts["all"] = sum(cells.values())
    relations.append(Relation("all", tuple(("row", r) for r in range(rows))))
    relations.append(Relation("all", tuple(("column", c) for c in range(columns))))
    return counts, draw(st.permutations(relations))


@given(cross_tabulations())
def test_no_relation_is_left_with_a_single_suppressed_figure(table):
    counts, relations = table
    result = disclose(counts, relations)
    for rel in relations:
        hidden = [m for m in (rel.total, *rel.parts) if result.shown[m] == SUPPRESSED]
        assert len(hidden) != 1, f"{rel} gives away {hidden[0]}"
    for key, count in counts.items():
        if key in result.secondary:
            assert primary(count) != SUPPRESSED  # secondary only ever hides a shown figure
        else:
            assert result.shown[key] == primary(count)


def test_relations_that_do_not_add_up_are_refused():
    with pytest.raises(DisclosureError):
        disclose({"total": 10, "a": 3, "b": 3}, [Relation("total", ("a", "b"))])


def test_administrators_see_raw_counts():
    counts = {"total": 43, "a": 3, "b": 10, "c": 30}
    result = disclose(counts, [Relation("total", ("a", "b", "c"))], raw=True)
    assert result.shown == counts


@pytest.mark.parametrize(
    ("numerator", "denominator", "percent"),
    [(15, 20, 75), (20, 30, 67), (10, 30, 33), (5, 10, 50), (0, 10, 0), (1, 8, 13)],
)
def test_percentages_are_whole_numbers_rounded_half_up(numerator, denominator, percent):
    assert percentage(numerator, denominator) == percent


def test_a_percentage_of_a_suppressed_figure_is_suppressed():
    assert percentage(SUPPRESSED, 20) == SUPPRESSED
    assert percentage(10, SUPPRESSED) == SUPPRESSED


def test_a_percentage_of_nothing_is_not_a_number():
    assert percentage(0, 0) is None
