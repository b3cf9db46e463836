"""A silent feed shows on the team lead's queue (their sites only) and on the administrator's
page, and leaves both when the feed speaks again."""

from __future__ import annotations

from consent.policy import Role
from referral_gateway.domain.feed_silence import SilencePatterns
from referral_gateway.services.feed_watch import FeedWatch
from referral_gateway.storage.inbox import Arrival, InboxStore
from tests.web.builders import SITE_A, SITE_B
from tests.web.conftest import Web

EPIC_A = f"EPIC^{SITE_A}"
EPIC_B = f"EPIC^{SITE_B}"


def arrive(web: Web, keyring, key: str, sender: str, site: str) -> None:
    InboxStore(web.ctx.engine, keyring).store_batch(
        [Arrival("hl7v2", sender, key, "ADT^A04", site, b"MSH|^~\\&|", web.clock())]
    )


def test_a_silent_feed_shows_to_its_team_lead_and_the_administrator_until_it_resumes(
    web: Web, keyring
):
    web.account("lead", Role.TEAM_LEAD, (SITE_A,))
    web.account("worker", Role.YOUTH_WORKER, (SITE_A,))
    web.account("admin", Role.ADMINISTRATOR, ())
    watch = FeedWatch(web.ctx.engine, SilencePatterns(), web.clock)
    arrive(web, keyring, "1", EPIC_A, SITE_A)
    arrive(web, keyring, "2", EPIC_B, SITE_B)
    web.clock.advance(hours=3)
    watch.check()

    lead = web.signed_in("lead").get("/queue").text
    assert "Feed silent" in lead and EPIC_A in lead
    assert EPIC_B not in lead  # another site's feed is not this lead's
    admin = web.signed_in("admin").get("/admin/users").text
    assert "Feed silent" in admin and EPIC_A in admin and EPIC_B in admin
    assert "Feed silent" not in web.signed_in("worker").get("/queue").text

    arrive(web, keyring, "3", EPIC_A, SITE_A)
    watch.check()
    assert "Feed silent" not in web.signed_in("lead").get("/queue").text
    admin = web.signed_in("admin").get("/admin/users").text
    assert EPIC_A not in admin and EPIC_B in admin
