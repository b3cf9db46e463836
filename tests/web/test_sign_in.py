"""Signing in and out: memory-hard password hashes, session cookies, throttling, idle expiry."""

from __future__ import annotations

from sqlalchemy import select

from consent.policy import Role
from referral_gateway.storage.accounts import SESSIONS, USERS
from tests.web.builders import PASSWORD
from tests.web.conftest import Web, csrf_of


def attempt(web: Web, client, username: str, password: str):  # type: ignore[no-untyped-def]
    token = csrf_of(client.get("/sign-in").text)
    return client.post(
        "/sign-in",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


def test_passwords_are_stored_as_argon2id_hashes_and_sessions_as_token_hashes(web: Web):
    web.account("ash")
    client = web.signed_in("ash")
    with web.ctx.engine.connect() as conn:
        stored = conn.execute(select(USERS.c.password_hash)).scalar_one()
        session_ids = conn.execute(select(SESSIONS.c.id_hash)).scalars().all()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    cookie = client.cookies.get("rg_session")
    assert cookie and session_ids and cookie not in session_ids


def test_the_session_cookie_is_http_only_same_site_strict_and_has_no_lifetime(web: Web):
    web.account("ash")
    reply = attempt(web, web.client(), "ash", PASSWORD)
    assert reply.status_code == 303 and reply.headers["location"] == "/queue"
    cookie = next(c for c in reply.headers.get_list("set-cookie") if c.startswith("rg_session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert not any(f.startswith(("max-age", "expires")) for f in flags)
    assert "secure" not in flags  # plain http in this test


def test_over_https_the_cookie_is_secure_with_the_host_prefix(web: Web):
    web.account("ash")
    reply = attempt(web, web.client(base_url="https://testserver"), "ash", PASSWORD)
    cookie = next(c for c in reply.headers.get_list("set-cookie") if "rg_session=" in c)
    assert cookie.startswith("__Host-rg_session=") and "secure" in cookie.lower()


def test_a_wrong_password_says_so_without_saying_which_part_was_wrong(web: Web):
    web.account("ash")
    client = web.client()
    wrong = attempt(web, client, "ash", "not the password at all")
    unknown = attempt(web, client, "nobody", "not the password at all")
    assert wrong.status_code == unknown.status_code == 400
    assert "username or password is not right" in wrong.text
    assert "username or password is not right" in unknown.text
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_five_failures_lock_the_username_even_against_the_right_password(web: Web):
    web.account("ash")
    client = web.client()
    for _ in range(5):
        attempt(web, client, "ash", "guess guess guess")
    locked = attempt(web, client, "ash", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text and "15 minutes" in locked.text
    web.clock.advance(minutes=15)
    assert attempt(web, client, "ash", PASSWORD).status_code == 303


def test_a_session_ends_after_thirty_idle_minutes_but_activity_keeps_it(web: Web):
    web.account("ash")
    client = web.signed_in("ash")
    for _ in range(3):
        web.clock.advance(minutes=20)
        assert client.get("/queue", follow_redirects=False).status_code == 200
    web.clock.advance(minutes=31)
    reply = client.get("/queue", follow_redirects=False)
    assert (reply.status_code, reply.headers["location"]) == (303, "/sign-in?next=/queue")


def test_the_queues_automatic_refreshes_do_not_keep_an_idle_session_alive(web: Web):
    web.account("ash")
    client = web.signed_in("ash")
    for minutes in (10, 10, 9):
        web.clock.advance(minutes=minutes)
        live = client.get("/queue/cards", headers={"X-Live-Update": "1"})
        assert live.status_code == 200
    web.clock.advance(minutes=2)  # 31 minutes since the person last did anything
    assert client.get("/queue/cards", headers={"X-Live-Update": "1"}).status_code == 401


def test_signing_out_ends_the_session_on_the_server_too(web: Web):
    web.account("ash")
    client = web.signed_in("ash")
    cookie = client.cookies.get("rg_session")
    token = web.token(client, "/queue")
    out = client.post("/sign-out", data={"csrf_token": token}, follow_redirects=False)
    assert out.headers["location"] == "/sign-in?done=signed_out"
    replay = web.client()
    replay.cookies.set("rg_session", cookie)
    assert replay.get("/queue", follow_redirects=False).status_code == 303


def test_disabling_an_account_ends_its_sessions(web: Web):
    ash = web.account("ash")
    web.account("admin", Role.ADMINISTRATOR, ())
    client = web.signed_in("ash")
    admin = web.signed_in("admin")
    token = web.token(admin, "/admin/users")
    reply = admin.post(f"/admin/users/{ash.id}", data={"csrf_token": token, "action": "disable"})
    assert reply.status_code == 200 and "Account updated." in reply.text
    assert client.get("/queue", follow_redirects=False).status_code == 303
    assert attempt(web, web.client(), "ash", PASSWORD).status_code == 400


def test_each_role_lands_on_its_own_start_page(web: Web):
    web.account("lead", Role.TEAM_LEAD)
    web.account("prog", Role.PROGRAMME_LEAD)
    web.account("admin", Role.ADMINISTRATOR, ())
    for username, page in (("lead", "/queue"), ("prog", "/overview"), ("admin", "/admin/users")):
        assert attempt(web, web.client(), username, PASSWORD).headers["location"] == page
