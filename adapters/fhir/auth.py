"""Bearer tokens of sending systems: who is sending, and for which site."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from adapters.fhir.errors import Forbidden, Unauthorized
from referral_gateway.storage.fhir_store import ApiClient, ApiClientStore, hash_token

SERVICE_PREFIX = "svc:"  # the "site" of an onward service's token: svc:<service id>


def service_site(service_id: str) -> str:
    return SERVICE_PREFIX + service_id


class TokenAuthenticator:
    """Resolves an Authorization header to an active API client.

    A sending ED's token is bound to its site; an onward service's token (made by
    `referral-gateway services add`) to `svc:<service id>`. Each is refused where the other
    belongs (403): a service cannot send ED data, an ED cannot move a service's Task.

    No bearer token: 401. A token we do not know, or a revoked one: 403. Lookups are cached
    for `cache_seconds` (so a revocation takes effect within that time) to keep a database
    read off every request.
    """

    def __init__(
        self,
        clients: ApiClientStore,
        *,
        cache_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clients = clients
        self.cache_seconds = cache_seconds
        self.monotonic = monotonic
        self._cache: dict[str, tuple[ApiClient | None, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, authorization: str | None) -> ApiClient:
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
        client = self._lookup(token)
        if client is None or not client.active:
            raise Forbidden("the token is not valid for this gateway")
        if client.site.startswith(SERVICE_PREFIX):
            raise Forbidden("an onward service's token only answers its Tasks")
        return client

    def service(self, authorization: str | None) -> str:
        """The id of the onward service holding the token (401/403 as above)."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
        client = self._lookup(token)
        if client is None or not client.active or not client.site.startswith(SERVICE_PREFIX):
            raise Forbidden("the token is not an onward service's token")
        return client.site[len(SERVICE_PREFIX) :]

    def _lookup(self, token: str) -> ApiClient | None:
        key = hash_token(token)
        now = self.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        client = self.clients.authenticate(token)
        with self._lock:
            if len(self._cache) > 10_000:  # unknown tokens must not grow this for ever
                self._cache.clear()
            self._cache[key] = (client, now + self.cache_seconds)
        return client
