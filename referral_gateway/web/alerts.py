"""Each worker's alerts: the "on shift" switch, channels and e-mail address (`/alerts`), the
devices they turned Web Push on for (`/alerts/devices`, posted by static/alerts.js with the
browser's subscription), and what makes the queue an installable web app (the manifest and
the service worker, served at the root so its scope is the whole app)."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from referral_gateway.domain.alerts import PERSONAL_CHANNELS, AlertChannel
from referral_gateway.storage.alerts import AlertStore
from referral_gateway.web.errors import PageError
from referral_gateway.web.render import render
from referral_gateway.web.security import CaseworkerDep, CsrfDep, CtxDep, FormDep

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).with_name("static")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")
KEY = re.compile(r"^[A-Za-z0-9_-]{16,200}$")  # base64url, as PushSubscription.toJSON gives it
CHANNEL_LABELS = {AlertChannel.PUSH: "Push to my devices", AlertChannel.EMAIL: "E-mail"}

MANIFEST = {
    "name": "Referral gateway",
    "short_name": "Referrals",
    "start_url": "/queue",
    "scope": "/",
    "display": "standalone",
    "background_color": "#ffffff",
    "theme_color": "#005eb8",
    "icons": [
        {"src": "/static/icon-192.png", "sizes": "192x192", "type": "image/png"},
        {"src": "/static/icon-512.png", "sizes": "512x512", "type": "image/png"},
        {
            "src": "/static/icon-512.png",
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "maskable",
        },
    ],
}


def _store(ctx: CtxDep) -> AlertStore:
    if ctx.alert_store is None:
        raise PageError(404, "Alerts are not set up", "This gateway sends no alerts.")
    return ctx.alert_store


def _page(
    request: Request,
    ctx: CtxDep,
    user_id: str,
    *,
    status: int = 200,
    problems: dict[str, str] | None = None,
    values: dict[str, object] | None = None,
) -> Response:
    store = _store(ctx)
    on_shift, channels, email = store.preference(user_id)
    shown: dict[str, object] = {
        "on_shift": on_shift,
        "channels": {c.value for c in channels},
        "email": email,
    }
    shown.update(values or {})
    return render(
        ctx,
        request,
        "alerts.html",
        status=status,
        problems=problems or {},
        values=shown,
        channel_labels={c.value: CHANNEL_LABELS[c] for c in PERSONAL_CHANNELS},
        devices=len(store.push_subscriptions(user_id)),
        vapid_public_key=ctx.vapid_public_key,
    )


@router.get("/alerts")
def alerts_page(request: Request, ctx: CtxDep, user: CaseworkerDep) -> Response:
    return _page(request, ctx, user.id)


@router.post("/alerts")
def save_alerts(
    request: Request, ctx: CtxDep, user: CaseworkerDep, form: FormDep, _: CsrfDep
) -> Response:
    chosen = {str(v) for v in form.getlist("channels")}
    channels = frozenset(c for c in PERSONAL_CHANNELS if c.value in chosen)
    email = str(form.get("email") or "").strip()
    on_shift = form.get("on_shift") == "1"
    problems: dict[str, str] = {}
    if email and not EMAIL.match(email):
        problems["email"] = "Enter an e-mail address like name@nhs.net."
    elif AlertChannel.EMAIL in channels and not email:
        problems["email"] = "Enter the e-mail address to send alerts to, or untick e-mail."
    if problems:
        values = {"on_shift": on_shift, "channels": chosen, "email": email}
        return _page(request, ctx, user.id, status=422, problems=problems, values=values)
    _store(ctx).save_preference(
        user.id, on_shift=on_shift, channels=channels, email=email, now=ctx.clock()
    )
    return RedirectResponse("/alerts?done=alerts_saved", status_code=303)


def _push_endpoint(url: str) -> bool:
    """Push services answer on https; plain http only on this machine (tests, a relay)."""
    parts = urlsplit(url)
    if len(url) > 2048 or not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    try:
        return parts.scheme == "http" and ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return parts.scheme == "http" and parts.hostname == "localhost"


@router.post("/alerts/devices")
def add_device(
    request: Request, ctx: CtxDep, user: CaseworkerDep, form: FormDep, _: CsrfDep
) -> Response:
    endpoint = str(form.get("endpoint") or "")
    p256dh, auth = str(form.get("p256dh") or ""), str(form.get("auth") or "")
    if not _push_endpoint(endpoint) or not KEY.match(p256dh) or not KEY.match(auth):
        raise PageError(400, "Alerts could not be turned on", "The browser sent no usable key.")
    _store(ctx).add_push_subscription(
        user.id, endpoint=endpoint, p256dh=p256dh, auth=auth, now=ctx.clock()
    )
    return Response(status_code=204)


@router.post("/alerts/devices/forget")
def forget_devices(ctx: CtxDep, user: CaseworkerDep, form: FormDep, _: CsrfDep) -> Response:
    store = _store(ctx)
    for sub in store.push_subscriptions(user.id):
        store.remove_push_subscription(sub.id)
    return RedirectResponse("/alerts?done=devices_forgotten", status_code=303)


@router.get("/manifest.webmanifest")
def manifest() -> Response:
    return Response(json.dumps(MANIFEST), media_type="application/manifest+json")


@router.get("/sw.js")
def service_worker() -> Response:
    return FileResponse(
        STATIC / "sw.js",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )
