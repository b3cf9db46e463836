"""A worker's alert settings and devices, and the installable web app (manifest, service
worker, icons), through the real pages on a bare app."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI

from consent.policy import Role
from referral_gateway.domain.alerts import AlertChannel
from referral_gateway.services.sharing import Sharing
from referral_gateway.storage.alerts import AlertStore
from referral_gateway.storage.audit_store import AuditStore
from referral_gateway.storage.casework import assigned_to
from referral_gateway.wiring.web import install_web
from tests.web.builders import FAST_HASHER, FakeEd
from tests.web.conftest import Web, web_options

VAPID_KEY = "BTestPublicKeyOfTheGateway_0123456789-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
P256DH = "B" + "x" * 86
AUTH = "y" * 22


@pytest.fixture
def web(web_engine, keyring, clock) -> Web:
    app = FastAPI()
    listeners: list = []
    ctx = install_web(
        app,
        engine=web_engine,
        keyring=keyring,
        clock=clock,
        listeners=listeners,
        sharing=Sharing(web_engine, keyring, AuditStore(), assignments=assigned_to),
        options=web_options(),
        hasher=FAST_HASHER,
        alert_store=AlertStore(web_engine),
        vapid_public_key=VAPID_KEY,
    )
    return Web(app, ctx, FakeEd(web_engine, keyring, clock), clock, listeners)


def test_a_worker_goes_on_shift_with_email_and_push_and_it_is_kept(web):
    ash = web.account("ash")
    client = web.signed_in("ash")
    page = client.get("/alerts")
    assert page.status_code == 200 and f'data-key="{VAPID_KEY}"' in page.text
    reply = client.post(
        "/alerts",
        data={
            "csrf_token": web.token(client, "/alerts"),
            "on_shift": "1",
            "channels": ["push", "email"],
            "email": "ash@example.test",
        },
        follow_redirects=False,
    )
    assert reply.status_code == 303
    assert web.ctx.alert_store.preference(ash.id) == (
        True,
        frozenset({AlertChannel.PUSH, AlertChannel.EMAIL}),
        "ash@example.test",
    )
    assert "checked" in client.get("/alerts").text


def test_email_chosen_without_an_address_is_refused_naming_the_field(web):
    ash = web.account("ash")
    client = web.signed_in("ash")
    reply = client.post(
        "/alerts",
        data={"csrf_token": web.token(client, "/alerts"), "channels": ["email"], "email": ""},
    )
    assert reply.status_code == 422
    assert 'href="#alerts-email"' in reply.text and 'id="alerts-email-error"' in reply.text
    assert web.ctx.alert_store.preference(ash.id) == (False, frozenset(), "")


def test_a_device_is_turned_on_with_the_browsers_subscription(web):
    ash = web.account("ash")
    client = web.signed_in("ash")
    reply = client.post(
        "/alerts/devices",
        data={
            "csrf_token": web.token(client, "/alerts"),
            "endpoint": "https://push.example.test/send/abc",
            "p256dh": P256DH,
            "auth": AUTH,
        },
    )
    assert reply.status_code == 204
    (sub,) = web.ctx.alert_store.push_subscriptions(ash.id)
    assert (sub.endpoint, sub.p256dh, sub.auth) == (
        "https://push.example.test/send/abc",
        P256DH,
        AUTH,
    )
    assert "on for 1 device" in client.get("/alerts").text


@pytest.mark.parametrize(
    "endpoint, p256dh",
    [
        ("http://push.example.test/send/abc", P256DH),  # push services answer on https
        ("https://push.example.test/send/abc", "not a key"),
        ("javascript:alert(1)", P256DH),
    ],
)
def test_a_device_without_a_usable_subscription_is_refused(web, endpoint, p256dh):
    ash = web.account("ash")
    client = web.signed_in("ash")
    reply = client.post(
        "/alerts/devices",
        data={
            "csrf_token": web.token(client, "/alerts"),
            "endpoint": endpoint,
            "p256dh": p256dh,
            "auth": AUTH,
        },
    )
    assert reply.status_code == 400
    assert web.ctx.alert_store.push_subscriptions(ash.id) == []


def test_a_device_cannot_be_added_without_the_forms_token(web):
    web.account("ash")
    client = web.signed_in("ash")
    reply = client.post(
        "/alerts/devices",
        data={"endpoint": "https://push.example.test/x", "p256dh": P256DH, "auth": AUTH},
    )
    assert reply.status_code == 403


def test_alerts_are_for_caseworkers_only(web):
    web.account("admin", Role.ADMINISTRATOR, ())
    assert web.signed_in("admin").get("/alerts").status_code == 403


def test_the_queue_is_an_installable_web_app(web):
    client = web.client()
    manifest = client.get("/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    data = json.loads(manifest.text)
    assert data["display"] == "standalone" and data["start_url"] == "/queue"
    sizes = {i["sizes"] for i in data["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in data["icons"]:
        image = client.get(icon["src"])
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    worker = client.get("/sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["service-worker-allowed"] == "/"
    assert 'addEventListener("push"' in worker.text
