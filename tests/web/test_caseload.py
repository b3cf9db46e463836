"""The queue's tabs through HTTP: a youth worker lands on "My caseload" (every case of theirs
that still needs them, with its next action and day, a consented one included); "New" lists
unclaimed candidates still in the department first, then the longest wait, with the
discharge time on the card; the tabs are plain links; a team lead keeps the filters; the
live fragment follows the tab. On SQLite and on PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from consent.policy import Role
from referral_gateway.domain.alerts import AlertKind, alert_for
from referral_gateway.storage.database import make_engine, migrate
from tests.web.builders import SITE_A
from tests.web.conftest import Web

CARD = re.compile(r'data-referral="([0-9a-f-]{36})"')


@pytest.fixture
def web_engine(database_url):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def ash(web: Web):  # type: ignore[no-untyped-def]
    web.account("ash", Role.YOUTH_WORKER, (SITE_A,))
    return web.signed_in("ash")


def post(web: Web, client, path: str, **data: str):  # type: ignore[no-untyped-def]
    token = web.token(client, path.rsplit("/", 1)[0])
    return client.post(path, data=data | {"csrf_token": token}, follow_redirects=False)


def cards(html: str) -> list[str]:
    return CARD.findall(html)


def card_of(html: str, rid: str) -> str:
    start = html.index(f'data-referral="{rid}"')
    return html[start : html.index("</article>", start)]


def consent(web: Web, client, rid: str) -> None:  # type: ignore[no-untyped-def]
    reply = post(
        web,
        client,
        f"/referrals/{rid}/consent",
        outcome="given",
        giver="young_person_16_plus",
        young_person_age="17",
    )
    assert reply.status_code == 303, reply.text


def test_a_youth_worker_lands_on_my_caseload_and_a_consented_case_stays_there(web: Web, ash):
    rid = web.ed.stab_wound()
    assert cards(ash.get("/queue").text) == []
    assert "<h1>My caseload</h1>" in ash.get("/").text  # the start page is the caseload

    assert post(web, ash, f"/referrals/{rid}/claim").status_code == 303
    assert cards(ash.get("/queue").text) == [rid]
    consent(web, ash, rid)

    page = ash.get("/queue").text
    assert cards(page) == [rid]
    assert "Next: Make contact and agree support" in card_of(page, rid)
    assert rid not in ash.get("/queue?tab=new").text


def test_an_alert_about_new_candidates_opens_the_new_tab_with_them_for_a_youth_worker(
    web: Web, ash
):
    arrivals = [web.ed.stab_wound(visit="V-A1"), web.ed.stab_wound(visit="V-A2")]
    alert = alert_for(SITE_A, AlertKind.NEW_CANDIDATE, arrivals)

    page = ash.get(alert.link).text

    assert "<h1>New</h1>" in page
    assert sorted(cards(page)) == sorted(arrivals)
    assert cards(ash.get("/queue").text) == []  # the plain queue is her (empty) caseload


def test_each_case_shows_its_next_action_and_its_day_soonest_first(web: Web, ash):
    support, claimed, declined = (web.ed.stab_wound() for _ in range(3))
    for rid in (support, claimed, declined):
        post(web, ash, f"/referrals/{rid}/claim")
    consent(web, ash, support)
    today = web.ctx.casework.today()
    reply = post(
        web, ash, f"/referrals/{support}/support", tier="short", start_on=today.isoformat()
    )
    assert reply.status_code == 303, reply.text
    reply = post(
        web,
        ash,
        f"/referrals/{declined}/consent",
        outcome="declined",
        giver="young_person_16_plus",
        young_person_age="17",
    )
    assert reply.status_code == 303, reply.text
    web.clock.advance(days=1)

    page = web.signed_in("ash").get("/queue?tab=caseload").text

    assert "Next: Approach and record the outcome" in card_of(page, claimed)
    assert "Next: Close the referral" in card_of(page, declined)
    review = today + timedelta(weeks=4)
    assert "Next: Review support" in card_of(page, support)
    assert f"(Due {review.strftime('%a %d %b %Y')})" in card_of(page, support)
    # the two from yesterday before the review due in four weeks
    assert cards(page)[-1] == support


def test_a_case_leaves_my_caseload_when_closed_and_returns_when_its_follow_up_is_due(web: Web, ash):
    rid = web.ed.stab_wound()
    post(web, ash, f"/referrals/{rid}/claim")
    consent(web, ash, rid)
    closed = post(web, ash, f"/referrals/{rid}/close", outcome="signposted", confirmed="yes")
    assert closed.headers["location"] == f"/referrals/{rid}?done=closed"
    assert rid not in ash.get("/queue").text

    web.clock.advance(days=170)  # the follow-up is due in about two weeks
    page = web.signed_in("ash").get("/queue").text

    assert "Next: Do the 6-month follow-up" in card_of(page, rid)


def test_new_lists_those_still_in_the_department_first_then_the_longest_wait(web: Web, ash):
    t0 = web.clock()
    left = web.ed.stab_wound(visit="V-LEFT", arrival=t0 - timedelta(hours=3))
    waiting_long = web.ed.stab_wound(arrival=t0 - timedelta(hours=2))
    waiting_short = web.ed.stab_wound(arrival=t0 - timedelta(minutes=20))
    waiting_longest = web.ed.stab_wound(arrival=t0 - timedelta(hours=2, minutes=30))
    discharged_at = t0 - timedelta(minutes=5)
    web.ed.news("discharge", visit="V-LEFT", discharge=discharged_at.isoformat())

    page = ash.get("/queue?tab=new").text

    assert cards(page) == [waiting_longest, waiting_long, waiting_short, left]
    local = discharged_at.astimezone(web.ctx.options.zone).strftime("%H:%M")
    assert f'<dt>Left</dt><dd><time datetime="{discharged_at.isoformat()}">{local}' in (
        card_of(page, left)
    )
    assert "<dt>Left</dt>" not in card_of(page, waiting_short)


def test_the_tabs_are_links_and_the_current_one_is_marked(web: Web, ash):
    page = ash.get("/queue?tab=new").text

    for tab in ("caseload", "new", "all"):
        assert f'href="/queue?tab={tab}"' in page
    assert '<a class="nhsuk-tabs__tab" href="/queue?tab=new" aria-current="page">New</a>' in page
    assert 'name="status"' not in page  # the filters belong to "All referrals"
    assert 'name="status"' in ash.get("/queue?tab=all").text


def test_a_team_lead_keeps_the_filtered_list_as_their_queue(web: Web):
    web.account("lee", Role.TEAM_LEAD, (SITE_A,))
    rid = web.ed.stab_wound()

    page = web.signed_in("lee").get("/queue").text

    assert "<h1>All referrals</h1>" in page and 'name="status"' in page
    assert cards(page) == [rid]


def test_the_live_update_fetches_the_list_of_the_tab_it_is_on(web: Web, ash):
    rid = web.ed.stab_wound()

    assert 'data-src="/queue/cards?tab=caseload"' in ash.get("/queue").text
    assert 'data-src="/queue/cards?tab=new"' in ash.get("/queue?tab=new").text
    assert cards(ash.get("/queue/cards?tab=caseload").text) == []
    assert cards(ash.get("/queue/cards?tab=new").text) == [rid]
