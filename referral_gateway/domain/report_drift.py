"""Drift: how a month's live figures differ from the version of its report that was frozen.

Late messages and A08 updates change a month after its report was frozen and sent. The
site's own pages are built live, so the two can disagree; the site is told which figures
moved (as published, after disclosure control: a raw change hidden by rounding is no
drift) and may re-issue the month as a correction.
"""

from __future__ import annotations

from dataclasses import dataclass

from referral_gateway.domain.disclosure import Shown
from referral_gateway.domain.report_published import PublishedReport
from referral_gateway.domain.reporting import Cell


@dataclass(frozen=True, slots=True)
class FigureChange:
    cell: Cell
    frozen: Shown | None  # None: the figure was not in the frozen report
    live: Shown | None  # None: the figure is no longer in the report


def changed_figures(frozen: PublishedReport, live: PublishedReport) -> tuple[FigureChange, ...]:
    """The figures whose published value differs, in the live report's order (figures gone
    from it last)."""
    before, now = frozen.values(), live.values()
    changes = [
        FigureChange(cell, before.get(cell), value)
        for cell, value in now.items()
        if before.get(cell) != value
    ]
    changes += [
        FigureChange(cell, value, None) for cell, value in before.items() if cell not in now
    ]
    return tuple(changes)
