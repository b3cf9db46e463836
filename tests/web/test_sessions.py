"""When a session ends under someone, through HTTP: a link opened while signed out returns
there after sign-in (and never anywhere off the site); a form posted after the session idled
out is kept for the same person, offered back after sign-in and sent again with one tap,
CSRF-checked again; "Stay signed in" starts the idle time again."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import select

from consent.policy import Role
from referral_gateway.domain.referral import ReferralStatus
from referral_gateway.storage.database import make_engine, migrate
from referral_gateway.storage.form_flash import FORM_FLASH
from tests.web.builders import PASSWORD, SITE_A, Patient
from tests.web.conftest import Web, build_web, csrf_of
from tests.web.test_live_ed_news import status_of

FROM_HERE = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
YOUNG = Patient(given="Quinlan", family="Fakename", nhs_number="9990000034", age=17)


@pytest.fixture
def ash(web: Web):  # type: ignore[no-untyped-def]
    web.account("ash", Role.YOUTH_WORKER, (SITE_A,))
    return web.signed_in("ash")


def sign_in(client, username: str = "ash", **extra: str):  # type: ignore[no-untyped-def]
    page = client.get("/sign-in", params=extra)
    return client.post(
        "/sign-in",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(page.text)} | extra,
        follow_redirects=False,
    )


def test_a_link_opened_while_signed_out_returns_there_after_sign_in(web: Web):
    web.account("ash")
    rid = web.ed.stab_wound()
    client = web.client()

    reply = client.get(f"/referrals/{rid}", follow_redirects=False)
    assert reply.headers["location"] == f"/sign-in?next=/referrals/{rid}"
    page = client.get(reply.headers["location"]).text
    assert f'name="next" value="/referrals/{rid}"' in page

    signed_in = sign_in(client, next=f"/referrals/{rid}")
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, f"/referrals/{rid}")


def test_a_queue_tab_opened_while_signed_out_keeps_its_query(web: Web):
    web.account("ash")
    client = web.client()

    reply = client.get("/queue?tab=new", follow_redirects=False)
    assert reply.headers["location"] == "/sign-in?next=" + quote("/queue?tab=new", safe="/")

    assert sign_in(client, next="/queue?tab=new").headers["location"] == "/queue?tab=new"


@pytest.mark.parametrize(
    "elsewhere",
    [
        "https://evil.example/queue",
        "//evil.example/queue",
        "/\\evil.example/queue",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/queue\r\nSet-Cookie: x=1",
        "/sign-in",
        "queue",
    ],
)
def test_sign_in_never_sends_anyone_off_the_site(web: Web, elsewhere: str):
    web.account("ash")
    client = web.client()

    assert 'name="next"' not in client.get("/sign-in", params={"next": elsewhere}).text
    reply = sign_in(client, next=elsewhere)

    assert (reply.status_code, reply.headers["location"]) == (303, "/queue")


def expire(web: Web) -> None:
    web.clock.advance(minutes=web.ctx.options.session_idle_minutes + 1)


def post_consent(web: Web, client, rid: str, token: str, headers=FROM_HERE):  # type: ignore[no-untyped-def]
    return client.post(
        f"/referrals/{rid}/consent",
        data={
            "outcome": "given",
            "giver": "young_person_16_plus",
            "young_person_age": "17",
            "csrf_token": token,
        },
        headers=headers,
        follow_redirects=False,
    )


def test_a_form_posted_after_the_session_idled_out_is_offered_back_after_sign_in(web: Web, ash):
    rid = web.ed.stab_wound(patient=YOUNG)
    stale = web.token(ash, f"/referrals/{rid}")
    expire(web)

    kept = post_consent(web, ash, rid, stale)
    assert (kept.status_code, kept.headers["location"]) == (303, "/sign-in")
    assert "rg_kept=" in kept.headers["set-cookie"]
    assert status_of(web.ctx.engine, rid) is ReferralStatus.NEW

    signed_in = sign_in(ash)
    assert signed_in.headers["location"] == "/kept-form"
    offer = ash.get("/kept-form")
    assert offer.status_code == 200 and "Send it now" in offer.text
    assert f'action="/referrals/{rid}/consent"' in offer.text
    assert 'name="young_person_age" value="17"' in offer.text
    token = csrf_of(offer.text)
    assert token != stale

    sent = ash.post(
        f"/referrals/{rid}/consent",
        data={"outcome": "given", "giver": "young_person_16_plus", "young_person_age": "17"}
        | {"csrf_token": token},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert status_of(web.ctx.engine, rid) is ReferralStatus.CONSENTED
    # offered once
    assert ash.get("/kept-form", follow_redirects=False).headers["location"] == "/"


def test_the_form_offered_back_is_csrf_checked_again(web: Web, ash):
    rid = web.ed.stab_wound()
    stale = web.token(ash, f"/referrals/{rid}")
    expire(web)
    post_consent(web, ash, rid, stale)
    sign_in(ash)

    resent_with_the_old_token = post_consent(web, ash, rid, stale, headers={})

    assert resent_with_the_old_token.status_code == 403
    assert status_of(web.ctx.engine, rid) is ReferralStatus.NEW


def test_a_kept_form_is_offered_only_to_the_person_whose_session_ended(web: Web, ash):
    web.account("birch")
    rid = web.ed.stab_wound()
    stale = web.token(ash, f"/referrals/{rid}")
    expire(web)
    post_consent(web, ash, rid, stale)

    someone_else = sign_in(ash, username="birch")

    assert someone_else.headers["location"] == "/queue"
    offer = ash.get("/kept-form", follow_redirects=False)
    assert (offer.status_code, offer.headers["location"]) == (303, "/")


def test_a_form_sent_from_another_site_or_after_signing_out_is_not_kept(web: Web, ash):
    rid = web.ed.stab_wound()
    stale = web.token(ash, f"/referrals/{rid}")
    expire(web)

    cross_site = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    reply = post_consent(web, ash, rid, stale, headers=cross_site)
    assert reply.status_code == 303 and "rg_kept" not in reply.headers.get("set-cookie", "")

    fresh = web.signed_in("ash")
    token = web.token(fresh, f"/referrals/{rid}")
    fresh.post("/sign-out", data={"csrf_token": token})
    reply = post_consent(web, fresh, rid, token)
    assert reply.status_code == 303 and "rg_kept" not in reply.headers.get("set-cookie", "")


def test_stay_signed_in_starts_the_idle_time_again(web: Web, ash):
    token = web.token(ash, "/queue")
    idle = web.ctx.options.session_idle_minutes

    web.clock.advance(minutes=idle - 2)
    refreshed = ash.post("/session/refresh", data={"csrf_token": token})
    assert refreshed.status_code == 200
    assert refreshed.json() == {"signed_in": True, "idle_seconds": idle * 60}
    web.clock.advance(minutes=idle - 2)

    assert ash.get("/queue", follow_redirects=False).status_code == 200


def test_stay_signed_in_needs_the_pages_token_and_a_live_session(web: Web, ash):
    token = web.token(ash, "/queue")

    assert ash.post("/session/refresh", data={"csrf_token": "wrong"}).status_code == 403
    expire(web)
    assert ash.post("/session/refresh", data={"csrf_token": token}).status_code == 401


def test_signed_in_pages_carry_the_idle_warning_and_the_sign_in_page_does_not(web: Web, ash):
    page = ash.get("/queue").text
    idle = web.ctx.options.session_idle_minutes * 60
    warning = web.ctx.options.session_warning_seconds

    assert f'data-idle-seconds="{idle}" data-warning-seconds="{warning}"' in page
    assert "Stay signed in" in page and '<script src="/static/session.js"' in page
    assert "session-warning" not in web.client().get("/sign-in").text


def test_a_kept_form_holds_no_password(web: Web, ash):
    token = web.token(ash, "/account/password")
    expire(web)
    ash.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": "a brand new passphrase 42",
            "confirm_password": "a brand new passphrase 42",
            "csrf_token": token,
        },
        headers=FROM_HERE,
    )
    sign_in(ash)

    offer = ash.get("/kept-form").text

    assert 'action="/account/password"' in offer
    assert PASSWORD not in offer and "brand new passphrase" not in offer


# -- kept forms wait in the database: any gateway instance offers them back -------------------


@pytest.fixture
def web_engine(database_url):  # type: ignore[no-untyped-def]
    """The kept-form tests below run on SQLite and on PostgreSQL."""
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


SAFEGUARDING = "Assessed by Dr Imaginary Fictionperson"


def test_a_form_kept_by_one_gateway_is_offered_after_signing_in_on_another(web: Web, ash, keyring):
    other = build_web(web.ctx.engine, keyring, web.clock)  # a second gateway, same database
    rid = web.ed.stab_wound(patient=YOUNG)
    stale = web.token(ash, f"/referrals/{rid}")
    expire(web)
    kept = post_consent(web, ash, rid, stale)
    assert "rg_kept=" in kept.headers["set-cookie"]

    # the load balancer sends the sign-in to the other instance
    there = other.client(cookies={"rg_kept": ash.cookies["rg_kept"]})
    signed_in = sign_in(there)

    assert signed_in.headers["location"] == "/kept-form"
    offer = there.get("/kept-form").text
    assert f'action="/referrals/{rid}/consent"' in offer
    assert 'name="young_person_age" value="17"' in offer
    # handed over once, whichever instance is asked next
    assert there.get("/kept-form", follow_redirects=False).headers["location"] == "/"
    back = web.client(cookies={"rg_session": there.cookies["rg_session"]})
    assert back.get("/kept-form", follow_redirects=False).headers["location"] == "/"


def test_a_kept_form_waits_encrypted_and_only_until_it_expires(web: Web, ash):
    rid = web.ed.stab_wound()
    stale = web.token(ash, f"/referrals/{rid}")
    expire(web)
    ash.post(
        f"/referrals/{rid}/consent",
        data={"outcome": "given", "gillick_assessment": SAFEGUARDING, "csrf_token": stale},
        headers=FROM_HERE,
        follow_redirects=False,
    )
    with web.ctx.engine.connect() as conn:
        stored = conn.execute(select(FORM_FLASH.c.page, FORM_FLASH.c.payload_enc)).all()
    assert [page for page, _ in stored] == ["/kept-form"]
    assert b"Fictionperson" not in stored[0][1] and b"gillick" not in stored[0][1]

    web.clock.advance(minutes=31)  # kept for half an hour

    assert sign_in(ash).headers["location"] == "/queue"
    assert ash.get("/kept-form", follow_redirects=False).headers["location"] == "/"
