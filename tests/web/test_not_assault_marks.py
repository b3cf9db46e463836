"""A youth worker marks a candidate "not an assault": the form, the server's checks, the
audit entry, and the marks exported as corpus rows without identifiers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from consent.audit import AuditAction
from consent.policy import Role
from referral_gateway.domain.evaluation import HEADER, read_corpus
from referral_gateway.entrypoints.detection_commands import marked_corpus_rows
from referral_gateway.storage.audit_store import AUDIT
from referral_gateway.storage.dismissal_tables import MARKS
from tests.web.builders import SITE_A, SITE_B, Patient
from tests.web.conftest import Web
from tests.web.test_pages import post

YOUNG = Patient(given="Skyler", family="Madeup", nhs_number="9990000026", age=17)


@pytest.fixture
def ash(web: Web):  # type: ignore[no-untyped-def]
    web.account("ash", Role.YOUTH_WORKER, (SITE_A,))
    client = web.signed_in("ash")
    client.token = lambda page="/queue": web.token(client, page)  # type: ignore[attr-defined]
    return client


TRIAGE = "Skyler punched by mate messing about at home, tel 07700 900123, NHS 999 000 0026"


def test_a_youth_worker_marks_a_candidate_not_an_assault_and_it_leaves_the_new_list(web: Web, ash):
    rid = web.ed.stab_wound(patient=YOUNG, codes=(), text=(TRIAGE,))
    page = ash.get(f"/referrals/{rid}").text
    assert 'action="/referrals/' + rid + '/not-assault"' in page

    reply = post(ash, f"/referrals/{rid}/not-assault", reason="accident", note="Madeup")

    assert reply.status_code == 303
    assert reply.headers["location"] == f"/referrals/{rid}?done=not_assault"
    assert "Madeup" not in reply.headers["location"]
    assert rid not in ash.get("/queue?status=new").text
    assert "Not an assault" in ash.get(f"/referrals/{rid}").text
    with web.ctx.engine.connect() as conn:
        entry = conn.execute(
            select(AUDIT).where(
                AUDIT.c.subject == rid, AUDIT.c.action == AuditAction.NOT_ASSAULT_MARK.value
            )
        ).one()
        mark = conn.execute(select(MARKS).where(MARKS.c.referral_id == rid)).one()
    assert (entry.why, mark.reason) == ("accident", "accident")
    assert entry.actor == mark.marked_by
    assert b"Madeup" not in (mark.note_enc or b"")  # the note is stored encrypted


def test_a_mark_needs_a_reason_and_another_reason_needs_a_note(web: Web, ash):
    rid = web.ed.stab_wound()
    no_reason = post(ash, f"/referrals/{rid}/not-assault", reason="", note="")
    assert no_reason.headers["location"] == f"/referrals/{rid}#error-summary"
    assert "Choose why this is not an assault." in ash.get(f"/referrals/{rid}").text
    other = post(ash, f"/referrals/{rid}/not-assault", reason="other", note="")
    assert other.headers["location"] == f"/referrals/{rid}#error-summary"
    assert "Say in a few words why" in ash.get(f"/referrals/{rid}").text
    assert rid in ash.get("/queue?status=new").text


def test_a_worker_of_another_site_cannot_mark_it(web: Web):
    rid = web.ed.stab_wound(site=SITE_A)
    web.account("bo", Role.YOUTH_WORKER, (SITE_B,))
    bo = web.signed_in("bo")
    token = web.token(bo, "/queue")
    reply = bo.post(
        f"/referrals/{rid}/not-assault",
        data={"reason": "accident", "note": "", "csrf_token": token},
        follow_redirects=False,
    )
    assert reply.status_code == 404
    with web.ctx.engine.connect() as conn:
        assert conn.execute(select(MARKS)).all() == []


def test_marks_export_as_not_rows_without_identifiers_or_the_note(web: Web, ash):
    rid = web.ed.stab_wound(patient=YOUNG, codes=(), text=(TRIAGE, "obs stable"))
    post(ash, f"/referrals/{rid}/not-assault", reason="accident", note="SECRET")

    lines = marked_corpus_rows(web.ctx.engine, web.ctx.casework.marks.keyring, first_id=7)

    corpus = "\n".join(lines)
    (case,) = read_corpus(corpus, source="export")
    assert (case.id, case.label.value, case.context) == ("m007", "not", "accidental")
    assert case.text == (
        "[identifier] punched by mate messing about at home, tel [identifier], NHS [number]"
    )
    for identifier in ("Skyler", "Madeup", "9990000026", "07700", "900123", "SECRET"):
        assert identifier not in corpus


def test_a_mark_on_a_code_alone_exports_no_row(web: Web, ash):
    rid = web.ed.stab_wound(codes=("425322008",), text=("seen in majors, obs stable",))
    post(ash, f"/referrals/{rid}/not-assault", reason="accident", note="")

    lines = marked_corpus_rows(web.ctx.engine, web.ctx.casework.marks.keyring)

    assert lines == ["\t".join(HEADER)]
