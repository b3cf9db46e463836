"""The FHIR R4B Consent an outside case system receives: the basis, never the free text."""

from __future__ import annotations

import json
from datetime import timedelta

from fhir.resources.R4B.consent import Consent

from adapters.fhir.consent_export import consent_json
from consent.records import ConsentRecord, Refusal, record_consent
from tests.consent_store.builders import (
    AUTHORISER,
    GILLICK_NOTE,
    LEAD,
    OVERRIDE_REASON,
    SITE,
    T0,
    by_parent,
    declined,
    gillick,
    given,
    not_approached,
    override,
    withdrawn,
)

RID = "ref-7f3a"
PATIENT = "Patient/case-system-123"


def history(*proposals, start=T0) -> list[ConsentRecord]:
    records: list[ConsentRecord] = []
    for i, p in enumerate(proposals):
        record = record_consent(records, p, now=start + timedelta(minutes=10 * i))
        assert not isinstance(record, Refusal), record
        records.append(record)
    return records


def as_json(records) -> dict:
    body = consent_json(records, site=SITE, patient_reference=PATIENT)
    assert body is not None
    Consent.model_validate(body)  # what we send is valid R4B
    return body


def test_consent_given_by_the_young_person_is_an_active_permit_from_that_moment():
    body = as_json(history(given(RID)))

    assert body["status"] == "active"
    assert body["provision"]["type"] == "permit"
    assert body["provision"]["period"] == {"start": "2026-03-14T22:30:00Z"}
    assert body["performer"] == [{"reference": PATIENT, "type": "Patient"}]
    assert body["identifier"] == [{"system": "urn:referral-gateway:referral-id", "value": RID}]
    assert body["organization"][0]["identifier"]["value"] == SITE
    assert body["policyRule"]["coding"][0]["code"] == "OPTIN"
    assert "aged 16 or over" in body["policyRule"]["text"]


def test_a_parent_is_the_performer_by_type_only():
    body = as_json(history(by_parent(RID)))
    assert body["performer"] == [{"type": "RelatedPerson", "display": "parent or guardian"}]


def test_a_withdrawal_makes_it_inactive_with_the_period_ending_at_the_withdrawal():
    body = as_json(history(given(RID), withdrawn(RID)))

    assert body["status"] == "inactive"
    assert body["provision"]["period"] == {
        "start": "2026-03-14T22:30:00Z",
        "end": "2026-03-14T22:40:00Z",
    }


def test_a_declined_approach_is_rejected():
    body = as_json(history(declined(RID)))
    assert (body["status"], body["provision"]["type"]) == ("rejected", "deny")


def test_no_decision_means_no_consent_json():
    assert consent_json([], site=SITE) is None
    assert consent_json(history(not_approached(RID)), site=SITE) is None


def test_an_override_says_so_and_names_the_authoriser_by_role_only():
    body = as_json(history(override(RID, by=LEAD)))

    assert body["status"] == "active"
    assert "Safeguarding override" in body["policyRule"]["text"]
    assert body["performer"] == [
        {"type": "Practitioner", "display": "Named nurse for safeguarding"}
    ]


def test_no_free_text_from_the_records_leaves_the_gateway():
    text = json.dumps(as_json(history(gillick(RID)))) + json.dumps(
        as_json(history(override(RID, by=LEAD)))
    )
    assert GILLICK_NOTE not in text and OVERRIDE_REASON not in text and AUTHORISER not in text


def test_the_consent_in_force_at_a_past_moment_can_be_exported():
    records = history(given(RID), withdrawn(RID))
    body = consent_json(records, site=SITE, at=T0 + timedelta(minutes=5))
    assert body is not None and body["status"] == "active"
