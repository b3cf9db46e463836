"""`referral-gateway detection export-marks` as an operator runs it, against a running site
(SQLite and PostgreSQL): a youth worker marks a candidate over real HTTP, the command reads
the marks back from the database with the site's key ring and writes corpus rows that hold
no identifier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consent.policy import Role
from referral_gateway.domain.evaluation import read_corpus
from referral_gateway.entrypoints.cli import main
from tests.web.builders import SITE_A, Patient
from tests.web.conftest import csrf_of
from tests.web.live_site import Site, running_site

YOUNG = Patient(given="Skyler", family="Madeup", nhs_number="9990000026", age=17)


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    yield from running_site(tmp_path / "data", database_url)


def test_export_marks_writes_scrubbed_not_rows_from_the_database(
    site: Site, tmp_path: Path, database_url: str
) -> None:
    triage = "Skyler Madeup punched by mate messing about at home, visit V99887766, 07700 900123"
    rid = site.web.ed.stab_wound(patient=YOUNG, codes=(), text=(triage,))
    worker = site.browser("ash", Role.YOUTH_WORKER, (SITE_A,))
    token = csrf_of(worker.get(f"/referrals/{rid}").text)
    reply = worker.post(
        f"/referrals/{rid}/not-assault",
        data={"reason": "accident", "note": "Madeup said so", "csrf_token": token},
    )
    assert reply.status_code == 303
    out = tmp_path / "marks.tsv"

    data = str(tmp_path / "data")
    argv = ["detection", "export-marks", "--out", str(out), "--data-dir", data]
    assert main([*argv, "--database-url", database_url]) == 0

    written = out.read_text(encoding="utf-8")
    (case,) = read_corpus(written, source="marks.tsv")
    assert (case.label.value, case.context, case.field) == ("not", "accidental", "pv2_3")
    assert "punched by mate messing about at home" in case.text
    for identifier in ("Skyler", "Madeup", "V99887766", "99887766", "07700", "900123"):
        assert identifier not in written
