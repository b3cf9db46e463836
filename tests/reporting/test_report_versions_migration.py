"""The step that gives reports versions, run on a database made before it (SQLite and
PostgreSQL): a hub that held two reports of one site's month (the second had silently
replaced the first) keeps both, numbered by arrival, the later one current; a site's
snapshots become version 1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.storage.database import _alembic_config, make_engine, migrate
from referral_gateway.storage.reports import RECEIPT, SNAPSHOT, ReportStore
from tests.reporting.builders import SITE
from tests.reporting.test_report_web import snapshot_of

STEP, BEFORE = "0011_report_versions", "0005_reports"
OCTOBER = ReportMonth(2024, 10)
T0 = datetime(2024, 11, 1, 6, 0, tzinfo=UTC)


def migrate_to_before_the_step(engine: sa.Engine) -> None:
    cfg = _alembic_config()
    heads = ScriptDirectory.from_config(cfg).get_heads()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        for head in heads:
            command.upgrade(cfg, BEFORE if head == STEP else head)


def before(table: sa.Table, *new: str) -> sa.Table:
    """The table as it was before the step: its columns without the new ones."""
    return sa.Table(
        table.name, sa.MetaData(), *[c._copy() for c in table.columns if c.name not in new]
    )


def test_receipts_held_before_versions_become_versions_by_arrival(database_url):
    engine = make_engine(database_url)
    migrate_to_before_the_step(engine)
    first, second = snapshot_of(SITE, "r-first"), snapshot_of(SITE, "r-second")
    receipts = before(RECEIPT, "version", "reason")
    with engine.begin() as conn:
        for hours, s in ((1, second), (0, first)):  # stored out of order; arrival decides
            conn.execute(
                sa.insert(receipts).values(
                    report_id=s.report_id,
                    checksum=s.checksum,
                    site=SITE,
                    month=str(OCTOBER),
                    key_id="a-1",
                    created_at=T0,
                    received_at=T0 + timedelta(hours=hours),
                    body=s.body.decode(),
                )
            )
        conn.execute(
            sa.insert(before(SNAPSHOT, "version", "reason")).values(
                report_id="r-first",
                site=SITE,
                month=str(OCTOBER),
                created_at=T0,
                checksum=first.checksum,
                body=first.body.decode(),
            )
        )
    migrate(engine)
    store = ReportStore(engine)
    history = store.receipt_history(SITE, OCTOBER)
    assert [(r.snapshot.report_id, r.version) for r in history] == [("r-first", 1), ("r-second", 2)]
    assert store.received(OCTOBER)[0].snapshot.report_id == "r-second"
    assert [(s.report_id, s.version, s.reason) for s in store.versions(SITE, OCTOBER)] == [
        ("r-first", 1, None)
    ]
    engine.dispose()
