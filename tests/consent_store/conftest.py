"""Fixtures for the consent store tests: an audit anchor file, assignments, the service."""

from __future__ import annotations

import pytest

from referral_gateway.services.sharing import Sharing
from referral_gateway.storage.audit_store import AuditAnchor, AuditStore
from tests.consent_store.builders import Assignments


@pytest.fixture
def anchor(tmp_path) -> AuditAnchor:
    return AuditAnchor(tmp_path / "data" / "audit-head.json")


@pytest.fixture
def audit(anchor) -> AuditStore:
    return AuditStore(anchor)


@pytest.fixture
def assignments() -> Assignments:
    return Assignments()


@pytest.fixture
def sharing(engine, keyring, audit, assignments) -> Sharing:
    return Sharing(engine, keyring, audit, assignments=assignments)
