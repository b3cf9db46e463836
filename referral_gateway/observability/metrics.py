"""Prometheus metrics, served at `GET /metrics` (with the ops token).

Two kinds, said in each metric's help:

- database-wide, read from the database at scrape time by `DatabaseCollector`: right across
  processes (the pipeline runs in a process of its own under `serve`) and across instances
  sharing one PostgreSQL, so any instance's scrape gives the same figures: the message
  counts, candidates, pipeline lag, the queue's oldest unclaimed referral, each feed's last
  message, the feed-silence alarms and the scheduled job runs;
- per instance, kept in the serve process's memory: `rg_ack_latency_seconds` (the MLLP
  listener's time from a frame's end to its ACK written, handed over by the listener's own
  process) and the `process_*`/`python_*` defaults (the serve process's own).

Hooks for figures others expose: `DatabaseCollector(fhir_source_metrics=...)` for the FHIR
sources' poll state (`rg_fhir_source_*`), and `extra` for the outbox and alert deliveries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from referral_gateway.domain.clock import Clock
from referral_gateway.storage.feed_alarms import last_messages, open_alarms
from referral_gateway.storage.operations_views import (
    candidates_by_site,
    job_run_counts,
    message_counts,
    oldest_pending_received_at,
    oldest_unclaimed_by_site,
)

# issue 17 plugs in here: each FHIR source's poll state as rg_fhir_source_* families
FhirSourceMetrics = Callable[[], Iterable[Metric]]

MESSAGE_COUNTS = {  # feed_count metric -> Prometheus name and help
    "received": ("rg_messages_received", "Messages received (database-wide)"),
    "duplicate": (
        "rg_messages_duplicate",
        "Messages received again and not processed twice (database-wide)",
    ),
    "filtered": (
        "rg_messages_filtered",
        "Messages acknowledged that needed no processing (database-wide)",
    ),
    "errored": ("rg_messages_errored", "Messages that failed a stage (database-wide)"),
}

ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class DatabaseCollector(Collector):
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        fhir_source_metrics: FhirSourceMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.fhir_source_metrics = fhir_source_metrics

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        with self.engine.connect() as conn:
            counts = message_counts(conn)
            candidates = candidates_by_site(conn)
            pending_since = oldest_pending_received_at(conn)
            unclaimed = oldest_unclaimed_by_site(conn)
            feeds = last_messages(conn)
            alarms = open_alarms(conn)
            jobs = job_run_counts(conn)
        families = {
            metric: CounterMetricFamily(name, text, labels=["channel", "sender"])
            for metric, (name, text) in MESSAGE_COUNTS.items()
        }
        for channel, sender, metric, n in counts:
            if metric in families:
                families[metric].add_metric([channel, sender], n)
        yield from families.values()

        per_site = CounterMetricFamily(
            "rg_candidates", "Candidates detected, per site (database-wide)", labels=["site"]
        )
        for site, n in candidates.items():
            per_site.add_metric([site], n)
        yield per_site

        yield GaugeMetricFamily(
            "rg_pipeline_lag_seconds",
            "Age of the oldest message waiting for the pipeline; 0 when none waits (database-wide)",
            value=_age(now, pending_since),
        )

        oldest = GaugeMetricFamily(
            "rg_queue_oldest_unclaimed_seconds",
            "Age of the oldest referral nobody has claimed, per site (database-wide)",
            labels=["site"],
        )
        for site, since in sorted(unclaimed.items()):
            oldest.add_metric([site], _age(now, since))
        yield oldest

        last = GaugeMetricFamily(
            "rg_feed_last_message_timestamp_seconds",
            "When each sender's newest message arrived, Unix time (database-wide)",
            labels=["channel", "sender", "site"],
        )
        for feed in feeds:
            last.add_metric(
                [feed.channel, feed.sender, feed.site], feed.last_message_at.timestamp()
            )
        yield last

        silent = GaugeMetricFamily(
            "rg_feed_silent",
            "1 while a sender's feed-silence alarm is raised (database-wide)",
            labels=["channel", "sender", "site"],
        )
        for alarm in alarms:
            silent.add_metric([alarm["channel"], alarm["sender"], alarm["site"]], 1)
        yield silent

        runs = CounterMetricFamily(
            "rg_job_runs",
            "Scheduled job runs across instances on PostgreSQL in the last 7 days, by outcome "
            "(database-wide)",
            labels=["job", "outcome"],
        )
        for job, outcome, n in jobs:
            runs.add_metric([job, outcome], n)
        yield runs

        if self.fhir_source_metrics is not None:
            yield from self.fhir_source_metrics()


@dataclass
class Metrics:
    registry: CollectorRegistry
    ack_latency: Histogram  # per instance: the MLLP listener's, relayed from its process


def build_metrics(
    engine: Engine,
    clock: Clock,
    *,
    fhir_source_metrics: FhirSourceMetrics | None = None,
    extra: Sequence[Collector] = (),
) -> Metrics:
    """A registry of this gateway's metrics (one per app: tests build several)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(engine, clock, fhir_source_metrics=fhir_source_metrics))
    for collector in extra:  # the outbox's and the alert channels' delivery counts
        registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    ack = Histogram(
        "rg_ack_latency_seconds",
        "Time from an HL7 message's last byte to its ACK written, this process's MLLP listener",
        buckets=ACK_BUCKETS,
        registry=registry,
    )
    return Metrics(registry, ack)


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0
