"""The manual referral form over real HTTP with the whole app: the arrival time starts at
now, the worker who raises a referral gets it, an unknown site is refused, and an age
outside the site's band, an NHS number with a bad check digit or an unlikely phone number
are warned about once and then saved as entered."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from consent.policy import Role
from referral_gateway.storage.attendances import REFERRAL
from referral_gateway.storage.casework import CASES
from tests.web.builders import SITE_A
from tests.web.conftest import csrf_of
from tests.web.live_site import Site, running_site

UNKNOWN_SITE = "RZZ98"


@pytest.fixture
def site(tmp_path) -> Iterator[Site]:
    yield from running_site(tmp_path)


def form(gateway: Site, **changes: str) -> dict[str, str]:
    arrived = gateway.clock().astimezone(gateway.web.ctx.options.zone) - timedelta(minutes=30)
    return {
        "site": SITE_A,
        "ed_area": "Paeds ED",
        "bay": "3",
        "arrival": arrived.strftime("%Y-%m-%dT%H:%M"),
        "concern": "exploitation",
        "age": "15",
        "sex": "female",
        "referrer": "ED nurse in charge",
        "given_names": "Casey",
        "family_name": "Sampleford",
        "nhs_number": "999 000 1235",
        "phone": "07700 900123",
    } | changes


def send(browser: httpx.Client, data: dict[str, str]) -> httpx.Response:
    token = csrf_of(browser.get("/referrals/new").text)
    return browser.post("/referrals/new", data=data | {"csrf_token": token})


def referrals(site: Site) -> int:
    with site.running.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(REFERRAL)).scalar_one())


def test_the_arrival_time_starts_at_now(site: Site):
    ash = site.browser("ash", Role.YOUTH_WORKER, (SITE_A,))
    now = site.clock().astimezone(site.web.ctx.options.zone).strftime("%Y-%m-%dT%H:%M")

    page = ash.get("/referrals/new").text

    arrival = re.search(r'<input [^>]*id="manual-arrival"[^>]*>', page)
    assert arrival and f'value="{now}"' in arrival.group(0)


def test_the_worker_who_raises_a_manual_referral_gets_it(site: Site):
    ash = site.browser("ash", Role.YOUTH_WORKER, (SITE_A,))

    reply = send(ash, form(site))

    assert reply.status_code == 303
    rid = reply.headers["location"].split("/")[2].split("?")[0]
    with site.running.engine.connect() as conn:
        holder = conn.execute(select(CASES.c.assigned_to).where(CASES.c.referral_id == rid))
        assert holder.scalar_one() == site.web.ctx.accounts.by_username("ash").id
    assert "Claimed by Ash" in ash.get(f"/referrals/{rid}").text


def test_an_unusual_age_nhs_number_and_phone_are_warned_about_then_saved_as_entered(site: Site):
    ash = site.browser("ash", Role.YOUTH_WORKER, (SITE_A,))
    unusual = form(site, age="31", nhs_number="999 000 1236", phone="12345")

    warned = send(ash, unusual)

    assert warned.status_code == 200 and referrals(site) == 0
    box = warned.text[
        warned.text.index("Check before saving") : warned.text.index(
            "</div>", warned.text.index("Check before saving")
        )
    ]
    assert "outside this site&#39;s band (11 to 25)" in box
    assert "check digit is wrong" in box and "does not look like a UK number" in box
    assert 'value="Sampleford"' in warned.text  # nothing typed is lost
    confirmed = re.search(r'name="confirmed" value="([^"]+)"', warned.text)
    assert confirmed

    saved = send(ash, unusual | {"confirmed": confirmed.group(1)})

    assert saved.status_code == 303 and referrals(site) == 1


def test_a_usual_referral_is_saved_without_a_warning(site: Site):
    ash = site.browser("ash", Role.YOUTH_WORKER, (SITE_A,))
    assert send(ash, form(site, phone="+44 7700 900123")).status_code == 303


def test_a_site_the_gateway_does_not_know_is_refused(site: Site):
    site.web.ed.stab_wound(site=SITE_A)  # the gateway has seen SITE_A, and no other
    ash = site.browser("ash", Role.YOUTH_WORKER, (SITE_A, UNKNOWN_SITE))

    reply = send(ash, form(site, site=UNKNOWN_SITE))

    assert reply.status_code == 422
    assert f"{UNKNOWN_SITE} is not a site the gateway knows" in reply.text
    assert referrals(site) == 1  # only the ED's
