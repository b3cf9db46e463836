"""News from the ED reaches open queue pages live: a discharge, an A13 undoing it, a cancelled
arrival and a move to another bay are announced by the pipeline after its commit as
(referral id, one word), and the web pushes them to the pages of that site only. Also the
escalation job, which runs on the scheduler and is heard the same way."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from adapters.hl7.client import MllpClient
from adapters.hl7.synthetic import Person, Visit, adt
from consent.policy import Role
from referral_gateway.config import Settings
from referral_gateway.domain.referral import ReferralNews, ReferralStatus, ReferralUpdate
from referral_gateway.entrypoints.jobs import build_scheduler, run_escalations
from referral_gateway.storage.attendances import REFERRAL
from referral_gateway.web.context import WebContext
from referral_gateway.web.options import WebOptions
from referral_gateway.wiring.web import build_app
from tests.spine.harness import RunningGateway, msa, start_gateway
from tests.web.builders import PASSWORD, SITE_A, SITE_B, add_account
from tests.web.conftest import Web, csrf_of
from tests.web.live import LiveServer
from tests.web.test_live_queue import events

# -- the pipeline's announcements ----------------------------------------------------------


@pytest.fixture
def heard(web: Web) -> list[tuple[str, str]]:
    said: list[tuple[str, str]] = []
    web.listeners.append(lambda news: said.append((news.referral_id, news.update)))
    return said


def status_of(engine: Engine, rid: str) -> ReferralStatus:
    with engine.connect() as conn:
        value = conn.execute(select(REFERRAL.c.status).where(REFERRAL.c.id == rid)).scalar_one()
    return ReferralStatus(value)


def test_the_pipeline_announces_each_change_a_youth_worker_must_see_after_its_commit(
    web: Web, heard
):
    rid = web.ed.stab_wound(visit="V100", bay="B4")
    later = (web.clock() + timedelta(hours=1)).isoformat()
    web.ed.news("discharge", visit="V100", discharge=later)
    web.ed.news("cancel_discharge", visit="V100")
    web.ed.news("update", visit="V100", bay="B9")
    web.ed.news("update", visit="V100", bay="B9", codes=["52684005"])  # nothing on the card
    web.ed.news("cancel_arrival", visit="V100")

    assert heard == [
        (rid, ReferralUpdate.NEW),
        (rid, ReferralUpdate.DISCHARGED),
        (rid, ReferralUpdate.BACK_IN_DEPARTMENT),
        (rid, ReferralUpdate.MOVED),
        (rid, ReferralUpdate.CANCELLED),
    ]
    assert status_of(web.ctx.engine, rid) is ReferralStatus.VOIDED


def test_news_of_an_attendance_that_is_no_referral_is_not_announced(web: Web, heard):
    web.ed.send(kind="arrival", site=SITE_A, visit="V200", mrn="M200", codes=["29857009"])
    web.ed.pipeline.process_pending()  # chest pain: no candidate
    web.ed.news("discharge", visit="V200", discharge=web.clock().isoformat())
    assert heard == []


# -- over MLLP, to an open queue page ------------------------------------------------------

SITE = "RXX01"
OTHER = "RYY02"


@dataclass
class EdStack:
    running: RunningGateway
    http: LiveServer
    web: WebContext
    controls: Iterator[int] = field(default_factory=lambda: iter(range(1, 1000)))

    def send(self, mllp: MllpClient, event: str, visit: Visit, **kw: object) -> None:
        control = f"CTRL-{next(self.controls)}"
        now = datetime.now(UTC).replace(microsecond=0)
        assert msa(mllp.send(adt(event, visit, control, sent=now, **kw))) == ("AA", control)  # type: ignore[arg-type]

    def signed_in(self, username: str) -> httpx.Client:
        client = httpx.Client(base_url=self.http.url, timeout=5)
        token = csrf_of(client.get("/sign-in").text)
        reply = client.post(
            "/sign-in", data={"username": username, "password": PASSWORD, "csrf_token": token}
        )
        assert reply.status_code == 303, reply.status_code
        return client


@pytest.fixture
def ed_stack(tmp_path, sqlite_url) -> Iterator[EdStack]:
    running = start_gateway(tmp_path, sqlite_url)
    app = build_app(
        running.gateway,
        web=WebOptions(
            argon2_time_cost=1,
            argon2_memory_kib=1024,
            argon2_parallelism=1,
            heartbeat_seconds=1.0,
            prune_seconds=3600.0,
        ),
    )
    http = LiveServer(app).start()
    web: WebContext = app.state.web
    now = running.gateway.clock()
    add_account(web.accounts, "ash", Role.YOUTH_WORKER, (SITE,), now=now)
    add_account(web.accounts, "far", Role.YOUTH_WORKER, (OTHER,), now=now)
    try:
        yield EdStack(running, http, web)
    finally:
        http.stop()
        running.stop()


def stabbed(visit_number: str, site: str = SITE) -> Visit:
    # an A01 for a stabbed sixteen-year-old: a candidate as soon as it is processed
    now = datetime.now(UTC).replace(microsecond=0)
    return Visit(
        person=Person(
            mrn=f"MRN-{visit_number}",
            nhs_number="9990000026",
            family="Testington",
            given="Sam",
            birth_date=date(now.year - 16, 1, 2),
            sex="M",
        ),
        visit_number=visit_number,
        site=site,
        arrival=now - timedelta(minutes=5),
        area="MAJORS",
        bay="B7",
        complaint="stabbed in left thigh",
    )


def badge_of(cards_html: str, rid: str) -> str | None:
    """The attendance badge on the referral's card, in the list the page swaps in."""
    card = re.search(rf'data-referral="{rid}".*?</article>', cards_html, re.S)
    if card is None:
        return None
    badge = re.search(r'data-attendance="[a-z_]+">([^<]+)<', card.group(0))
    return badge.group(1) if badge else None


def test_a_discharge_sent_over_mllp_reaches_an_open_queue_page_without_a_reload(
    ed_stack: EdStack,
):
    ash, far = ed_stack.signed_in("ash"), ed_stack.signed_in("far")
    try:
        visit = stabbed("V9001")
        with (
            ash.stream("GET", "/queue/events") as mine,
            far.stream("GET", "/queue/events") as theirs,
            MllpClient("127.0.0.1", ed_stack.running.port) as mllp,
        ):
            until = time.monotonic() + 20
            heard, heard_far = events(mine.iter_lines(), until), events(theirs.iter_lines(), until)
            assert next(heard)[0] == "ready" and next(heard_far)[0] == "ready"

            ed_stack.send(mllp, "A01", visit)
            name, data = next(heard)
            rid = json.loads(data)["referral_id"]
            assert name == "new"
            assert badge_of(ash.get("/queue/cards?tab=new").text, rid) == "In department"

            sent_at = time.monotonic()
            ed_stack.send(mllp, "A03", visit, discharge=datetime.now(UTC).replace(microsecond=0))
            name, data = next(heard)
            assert time.monotonic() - sent_at < 2.0  # not the minute-long poll
            assert (name, json.loads(data)) == (
                "changed",
                {"referral_id": rid, "site": SITE, "change": "discharged"},
            )
            assert badge_of(ash.get("/queue/cards?tab=new").text, rid) == "Discharged"

            ed_stack.send(mllp, "A13", visit)
            assert json.loads(next(heard)[1])["change"] == "back_in_department"
            assert badge_of(ash.get("/queue/cards?tab=new").text, rid) == "In department"

            ed_stack.send(mllp, "A11", visit)
            assert json.loads(next(heard)[1])["change"] == "cancelled"
            assert badge_of(ash.get("/queue/cards?tab=new").text, rid) is None  # off the open list
            assert badge_of(ash.get("/queue/cards?status=voided").text, rid) == "Cancelled"

            # the other site's page heard none of it: its first event is its own new referral
            ed_stack.send(mllp, "A01", stabbed("V9002", site=OTHER))
            name, data = next(heard_far)
            assert name == "new" and json.loads(data)["site"] == OTHER
    finally:
        ash.close()
        far.close()


# -- the escalation job ----------------------------------------------------------------------


@dataclass
class FakeGateway:
    """What the jobs use of the gateway: settings, engine, clock and the announcement."""

    settings: Settings
    engine: Engine
    clock: object
    listeners: list = field(default_factory=list)

    def announce(self, news: ReferralNews) -> None:
        for listener in self.listeners:
            listener(news)


def test_the_escalation_job_marks_untouched_referrals_once_and_the_queue_hears_of_it(
    web: Web, heard
):
    gateway = FakeGateway(Settings(), web.ctx.engine, web.clock, web.listeners)
    untouched = web.ed.stab_wound(site=SITE_A)
    claimed = web.ed.stab_wound(site=SITE_A)
    web.ctx.casework.claim(web.account("ash"), claimed)
    heard.clear()

    web.clock.advance(minutes=19)
    assert run_escalations(gateway, timedelta(minutes=20)) == []  # type: ignore[arg-type]
    web.clock.advance(minutes=2)
    assert run_escalations(gateway, timedelta(minutes=20)) == [(untouched, SITE_A)]  # type: ignore[arg-type]
    assert run_escalations(gateway, timedelta(minutes=20)) == []  # type: ignore[arg-type]

    assert heard == [(untouched, ReferralUpdate.ESCALATED)]
    web.account("lead", Role.TEAM_LEAD, (SITE_A,))
    assert "1 referral unclaimed for over 20 minutes." in web.signed_in("lead").get("/queue").text


def test_an_escalation_reaches_the_team_leads_open_queue_page(web: Web):
    web.account("lead", Role.TEAM_LEAD, (SITE_A,))
    web.account("other", Role.TEAM_LEAD, (SITE_B,))
    gateway = FakeGateway(Settings(), web.ctx.engine, web.clock, web.listeners)
    rid = web.ed.stab_wound(site=SITE_A)
    web.clock.advance(minutes=21)
    server = LiveServer(web.app).start()
    try:
        cookie = web.signed_in("lead").cookies.get("rg_session")
        with (
            httpx.Client(base_url=server.url, cookies={"rg_session": cookie}, timeout=5) as c,
            c.stream("GET", "/queue/events") as stream,
        ):
            heard = events(stream.iter_lines(), until=time.monotonic() + 10)
            assert next(heard)[0] == "ready"
            run_escalations(gateway, timedelta(minutes=20))  # type: ignore[arg-type]
            assert next(heard) == ("escalated", json.dumps({"referral_id": rid, "site": SITE_A}))
    finally:
        server.stop()


def test_the_scheduler_runs_the_escalation_job_at_the_configured_interval(engine):
    settings = Settings(escalation_interval_seconds=45, escalate_after_minutes=15)
    gateway = FakeGateway(settings, engine, lambda: None)

    job = build_scheduler(gateway).get_job("escalate_untouched")  # type: ignore[arg-type]

    assert job.trigger.interval == timedelta(seconds=45)
    assert job.args[1] == timedelta(minutes=15)
