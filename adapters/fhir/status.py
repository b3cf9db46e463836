"""Where each configured FHIR source stands, for operators (`GET /api/ops/fhir-sources`)
and for metrics: a failing source must not look like a quiet ED.

No identifiable data: source names, instants, counts and error texts that name elements
and HTTP statuses, never resources.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from adapters.fhir.sources import FhirSource
from referral_gateway.storage.fhir_store import PollStateStore
from referral_gateway.storage.focus_retries import missed_focus_counts


@dataclass(frozen=True)
class SourceStatus:
    source: str
    site: str
    mode: str  # "poll" | "notifications + safety-net poll" | "notifications"
    poll_every_seconds: float | None
    watermark: str | None  # newest meta.lastUpdated fully read
    diagnoses_watermark: str | None  # the same, of diagnoses coded after their Encounter
    consecutive_failures: int
    last_error: str | None
    next_attempt_at: datetime | None  # set while backing off after a failure
    last_run_at: datetime | None
    last_success_at: datetime | None
    resuming: bool  # the last poll stopped at its page limit; the next carries on
    focus_retrying: int  # notified resources not served yet, still being fetched again
    focus_given_up: int  # notified resources that never appeared (in the error store)

    def as_dict(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}


def source_status(
    sources: Sequence[FhirSource], states: PollStateStore, retry_delays: Sequence[float]
) -> list[SourceStatus]:
    focus = missed_focus_counts(states.engine, retry_delays)
    out = []
    for source in sources:
        state = states.load(source.name)
        retrying, given_up = focus.get(source.name, (0, 0))
        out.append(
            SourceStatus(
                source=source.name,
                site=source.site,
                mode=_mode(source),
                poll_every_seconds=source.poll_every,
                watermark=state.watermark,
                diagnoses_watermark=state.related_watermark,
                consecutive_failures=state.failures,
                last_error=state.last_error,
                next_attempt_at=state.next_attempt_at,
                last_run_at=state.last_run_at,
                last_success_at=state.last_success_at,
                resuming=state.resume_url is not None,
                focus_retrying=retrying,
                focus_given_up=given_up,
            )
        )
    return out


def _mode(source: FhirSource) -> str:
    if source.poll:
        return "poll"
    return "notifications + safety-net poll" if source.poll_every else "notifications"
