"""A team lead's live view of their own sites, over real HTTP with the whole app: unclaimed
now and the oldest wait, escalations nobody took, caseload per worker, alerts that failed
and silent feeds; exact figures (not suppressed), and nothing of another site."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from consent.policy import Role
from referral_gateway.domain.alerts import AlertChannel, AlertKind, DeliveryStatus, alert_for
from referral_gateway.domain.feed_silence import Feed, SilenceChange
from referral_gateway.services.casework import escalate_untouched
from referral_gateway.storage.alerts import AlertStore
from referral_gateway.storage.feed_alarms import record_changes
from tests.web.builders import SITE_A, SITE_B
from tests.web.live_site import Site, running_site


@pytest.fixture
def site(tmp_path, database_url) -> Iterator[Site]:
    """On SQLite and on PostgreSQL (the view's SQL runs on both)."""
    yield from running_site(tmp_path, database_url)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_team_lead_sees_unclaimed_now_the_oldest_wait_and_each_workers_caseload(site: Site):
    ash = site.web.account("ash", Role.YOUTH_WORKER, (SITE_A,))
    site.web.account("bo", Role.YOUTH_WORKER, (SITE_A,))
    oldest = site.web.ed.stab_wound(site=SITE_A)
    site.clock.advance(minutes=20)
    for _ in range(2):
        site.web.ed.stab_wound(site=SITE_A)
    claimed = [site.web.ed.stab_wound(site=SITE_A) for _ in range(3)]
    for rid in claimed:
        assert site.web.ctx.casework.claim(ash, rid) is None
    for _ in range(4):
        site.web.ed.stab_wound(site=SITE_B)  # another site's: never counted
    site.clock.advance(minutes=15)
    lead = site.browser("lee", Role.TEAM_LEAD, (SITE_A,))

    page = lead.get("/team")

    assert page.status_code == 200
    words = text_of(page.text)
    assert "3 unclaimed now" in words  # exact: an operational view is not suppressed
    assert "the oldest came in 35 min ago" in words
    assert "Ash: 3 active cases" in words and "Bo:" not in words
    assert SITE_B not in words and oldest not in page.text


def test_escalations_failed_alerts_and_silent_feeds_show_for_the_leads_site_only(site: Site):
    waiting = site.web.ed.stab_wound(site=SITE_A)
    elsewhere = site.web.ed.stab_wound(site=SITE_B)
    site.clock.advance(minutes=45)
    escalated = escalate_untouched(
        site.running.engine, now=site.clock(), after=timedelta(minutes=30)
    )
    assert {rid for rid, _ in escalated} == {waiting, elsewhere}
    alerts = AlertStore(site.running.engine)
    for where, status in ((SITE_A, DeliveryStatus.GAVE_UP), (SITE_B, DeliveryStatus.FAILED)):
        alert = alert_for(where, AlertKind.ESCALATED, ["r1", "r2"])
        delivery = alerts.record(alert, channel=AlertChannel.EMAIL, user_id=None, now=site.clock())
        alerts.mark(delivery, status, now=site.clock(), error="SMTPAuthenticationError")
    sent = alerts.record(
        alert_for(SITE_A, AlertKind.NEW_CANDIDATE, [waiting]),
        channel=AlertChannel.CHAT,
        user_id=None,
        now=site.clock(),
    )
    alerts.mark(sent, DeliveryStatus.SENT, now=site.clock())
    quiet = [
        SilenceChange(
            Feed("mllp", f"EPR-{s}", s, site.clock() - timedelta(hours=2)),
            True,
            timedelta(minutes=60),
        )
        for s in (SITE_A, SITE_B)
    ]
    record_changes(site.running.engine, quiet, site.clock())
    lead = site.browser("lee", Role.TEAM_LEAD, (SITE_A,))

    page = lead.get("/team").text
    words = text_of(page)

    assert f'href="/referrals/{waiting}"' in page and elsewhere not in page
    failed = words[words.index("Alerts that failed") :]
    assert "E-mail: " + SITE_A + ": 2 referrals unclaimed: escalated" in failed
    assert "given up" in failed and "SMTPAuthenticationError" in failed
    assert (
        SITE_B not in failed and "new assault candidate" not in failed
    )  # a sent one is not failed
    assert f"EPR-{SITE_A}" in words and f"EPR-{SITE_B}" not in words


@pytest.mark.parametrize(
    ("role", "sites"),
    [(Role.YOUTH_WORKER, (SITE_A,)), (Role.PROGRAMME_LEAD, (SITE_A,)), (Role.ADMINISTRATOR, ())],
)
def test_only_team_leads_open_the_live_view(site: Site, role: Role, sites: tuple[str, ...]):
    other = site.browser("someone", role, sites)
    assert other.get("/team").status_code == 403


def test_assign_to_starts_with_nobody_chosen(site: Site):
    lead = site.browser("lee", Role.TEAM_LEAD, (SITE_A,))
    ash = site.web.account("ash", Role.YOUTH_WORKER, (SITE_A,))
    rid = site.web.ed.stab_wound(site=SITE_A)
    assert site.web.ctx.casework.claim(ash, rid) is None

    page = lead.get(f"/referrals/{rid}").text
    select = page[
        page.index('id="assign-assignee"') : page.index(
            "</select>", page.index('id="assign-assignee"')
        )
    ]

    assert re.findall(r"<option[^>]*selected", select) == ['<option value="" selected']
    assert f'value="{ash.id}"' in select
