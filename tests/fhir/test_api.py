"""The /fhir endpoint over HTTP (FastAPI's test client): what is stored, what is answered."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, text

from adapters.fhir.auth import TokenAuthenticator
from adapters.fhir.models import validate_resource
from adapters.fhir.routes import fhir_router
from adapters.fhir.writer import FhirWriter
from referral_gateway.storage.database import make_engine, migrate
from referral_gateway.storage.fhir_store import RESOURCE, ApiClientStore, FhirResourceStore
from referral_gateway.storage.inbox import INBOX
from tests.fhir import builders as b


def inbox_rows(engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            select(
                INBOX.c.sender, INBOX.c.message_key, INBOX.c.message_type, INBOX.c.site
            ).order_by(INBOX.c.id)
        ).all()


def resource_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("select count(*) from fhir_resource")).scalar_one()


def outcome_of(response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    validate_resource(body)  # a valid R4 OperationOutcome
    return body


def expressions(response) -> set[str]:
    return {e for i in outcome_of(response)["issue"] for e in i.get("expression", [])}


# -- transactions -----------------------------------------------------------------------
def test_transaction_bundle_is_stored_before_the_transaction_response(http, engine):
    response = http.post("/fhir", json=b.attendance_bundle(1))
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "transaction-response"
    validate_resource(body)
    assert [e["response"]["status"] for e in body["entry"]] == ["201 Created"] * 3
    keys = [row.message_key for row in inbox_rows(engine)]
    locations = [e["response"]["location"] for e in body["entry"]]
    assert keys == locations  # "Type/id/_history/1", one inbox row per resource version
    assert {row.sender for row in inbox_rows(engine)} == {"rxx-ed-epr"}
    assert {row.site for row in inbox_rows(engine)} == {"RXX01"}


def test_urn_uuid_references_in_a_transaction_point_at_the_ids_given(http, store, engine):
    body = http.post("/fhir", json=b.attendance_bundle(1)).json()
    patient_loc, encounter_loc, condition_loc = (
        e["response"]["location"].split("/_history")[0] for e in body["entry"]
    )
    with engine.connect() as conn:
        condition = store.current(conn, "RXX01", *condition_loc.split("/"))
        encounter = store.current(conn, "RXX01", *encounter_loc.split("/"))
    assert condition.content["encounter"]["reference"] == encounter_loc
    assert encounter.content["subject"]["reference"] == patient_loc


def test_one_invalid_entry_fails_the_whole_transaction_and_stores_nothing(http, engine):
    bad = b.attendance_bundle(1)
    bad["entry"][1]["resource"]["period"]["start"] = "yesterday"
    bad["entry"][2]["resource"]["flavour"] = "R5"
    response = http.post("/fhir", json=bad)
    assert response.status_code == 422
    assert expressions(response) == {
        "Bundle.entry[1].resource.period.start",
        "Bundle.entry[2].resource.flavour",
    }
    assert inbox_rows(engine) == [] and resource_count(engine) == 0


def test_a_failed_if_match_fails_the_whole_transaction(http, engine):
    http.put("/fhir/Patient/p1", json=b.patient(id="p1"))
    tx = b.bundle(
        b.post(b.encounter(subject="Patient/p1")),
        b.put(b.patient(id="p1", family="Changed"), if_match='W/"7"'),
    )
    response = http.post("/fhir", json=tx)
    assert response.status_code == 412
    outcome_of(response)
    assert len(inbox_rows(engine)) == 1  # only the first PUT


def test_batch_entries_stand_alone(http, engine):
    batch = b.bundle(
        b.post(b.patient()),
        b.post({**b.encounter(), "status": "admitted"}),  # not an R4 status
        b.post(b.condition()),
        type="batch",
    )
    response = http.post("/fhir", json=batch)
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created", "422 Unprocessable Entity", "201 Created"]
    failed = body["entry"][1]["response"]["outcome"]["issue"][0]
    assert failed["expression"] == ["Bundle.entry[1].resource.status"]
    assert len(inbox_rows(engine)) == 2


def test_collection_bundle_is_taken_like_a_transaction(http, engine):
    collection = b.bundle(type="collection")
    collection["entry"] = [
        {"fullUrl": "https://ed.example/fhir/Patient/p1", "resource": b.patient(id="p1")},
        {"resource": b.encounter(subject="Patient/p1")},
    ]
    response = http.post("/fhir", json=collection)
    assert response.status_code == 200
    assert response.json()["type"] == "transaction-response"
    keys = sorted(row.message_key for row in inbox_rows(engine))
    assert keys[1] == "Patient/p1/_history/1" and keys[0].startswith("Encounter/")


def test_delete_and_read_entries_are_not_supported_in_a_transaction(http, engine):
    tx = b.bundle(b.post(b.patient()))
    tx["entry"].append({"request": {"method": "DELETE", "url": "Patient/p1"}})
    response = http.post("/fhir", json=tx)
    assert response.status_code == 405
    assert expressions(response) == {"Bundle.entry[1].request.method"}
    assert inbox_rows(engine) == []


def test_a_document_bundle_is_refused_with_its_type_named(http):
    response = http.post("/fhir", json=b.bundle(type="document"))
    assert response.status_code == 422
    assert expressions(response) == {"Bundle.type"}


def test_unsupported_resource_type_in_a_bundle_is_named(http):
    tx = b.bundle(b.post({"resourceType": "Location", "name": "Majors"}))
    response = http.post("/fhir", json=tx)
    assert response.status_code == 422
    assert expressions(response) == {"Bundle.entry[0].request.url"}


# -- create and update ----------------------------------------------------------------------
def test_create_answers_201_with_location_etag_and_the_stored_resource(http):
    response = http.post("/fhir/Encounter", json=b.encounter())
    assert response.status_code == 201
    body = response.json()
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"].endswith(f"/fhir/Encounter/{body['id']}/_history/1")
    assert body["meta"]["versionId"] == "1"
    validate_resource(body)


def test_conditional_create_is_201_new_200_match_412_several(http):
    nhs = b.nhs_number(4)
    condition = {"If-None-Exist": f"identifier={b.NHS}|{nhs}"}
    first = http.post("/fhir/Patient", json=b.patient(nhs=nhs), headers=condition)
    again = http.post("/fhir/Patient", json=b.patient(nhs=nhs), headers=condition)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    http.post("/fhir/Patient", json=b.patient(nhs=nhs))  # a second Patient, unconditionally
    several = http.post("/fhir/Patient", json=b.patient(nhs=nhs), headers=condition)
    assert several.status_code == 412
    outcome_of(several)


def test_conditional_create_takes_only_the_identifier_parameter(http):
    response = http.post(
        "/fhir/Patient", json=b.patient(), headers={"If-None-Exist": "birthdate=2009-04-12"}
    )
    assert response.status_code == 400
    outcome_of(response)


def test_update_creates_then_versions_and_if_match_guards_the_version(http, engine):
    created = http.put("/fhir/Encounter/e1", json=b.encounter(id="e1"))
    assert (created.status_code, created.headers["etag"]) == (201, 'W/"1"')
    stale = http.put(
        "/fhir/Encounter/e1",
        json=b.encounter(id="e1", status="finished"),
        headers={"If-Match": 'W/"2"'},
    )
    assert stale.status_code == 412
    outcome_of(stale)
    fresh = http.put(
        "/fhir/Encounter/e1",
        json=b.encounter(id="e1", status="finished"),
        headers={"If-Match": 'W/"1"'},
    )
    assert (fresh.status_code, fresh.headers["etag"]) == (200, 'W/"2"')
    assert [r.message_key for r in inbox_rows(engine)] == [
        "Encounter/e1/_history/1",
        "Encounter/e1/_history/2",
    ]


def test_a_repeat_of_the_same_content_is_acknowledged_and_not_stored_again(http, engine):
    first = http.put("/fhir/Encounter/e1", json=b.encounter(id="e1"))
    repeat = http.put("/fhir/Encounter/e1", json=b.encounter(id="e1"))
    assert repeat.status_code == 200
    assert repeat.headers["etag"] == first.headers["etag"] == 'W/"1"'
    assert len(inbox_rows(engine)) == 1
    with engine.connect() as conn:
        dupes = conn.execute(
            text("select n from feed_count where channel='fhir' and metric='duplicate'")
        ).scalar_one()
    assert dupes == 1


def test_a_finished_encounter_made_in_progress_again_is_marked_reopened(http, engine):
    http.put("/fhir/Encounter/e1", json=b.encounter(id="e1", status="finished"))
    http.put("/fhir/Encounter/e1", json=b.encounter(id="e1", status="in-progress"))
    assert [r.message_type for r in inbox_rows(engine)] == ["Encounter", "Encounter:reopened"]


def test_update_with_an_id_that_differs_from_the_url_is_400(http):
    response = http.put("/fhir/Encounter/e1", json=b.encounter(id="e2"))
    assert response.status_code == 400
    outcome_of(response)


def test_body_of_another_type_is_400(http):
    response = http.post("/fhir/Patient", json=b.encounter())
    assert response.status_code == 400
    outcome_of(response)


def test_invalid_nhs_number_is_accepted_and_the_warning_is_given_back(http, engine):
    response = http.post(
        "/fhir/Patient",
        json=b.patient(nhs=b.invalid_nhs_number()),
        headers={"Prefer": "return=OperationOutcome"},
    )
    assert response.status_code == 201
    [issue] = outcome_of(response)["issue"]
    assert issue["severity"] == "warning"
    assert issue["expression"] == ["Patient.identifier[0].value"]
    assert len(inbox_rows(engine)) == 1


def test_prefer_return_minimal_answers_without_a_body(http):
    response = http.post(
        "/fhir/Encounter", json=b.encounter(), headers={"Prefer": "return=minimal"}
    )
    assert response.status_code == 201 and response.content == b""
    assert response.headers["location"]


def raw_column_bytes(engine) -> dict[str, list[bytes]]:
    """Every value of every column of every table, as the bytes the database holds: binary
    columns whole, text as UTF-8 (never `str(row)`, which shortens long values)."""
    found: dict[str, list[bytes]] = {}
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f'select * from "{table}"')):
                for column, value in row._mapping.items():
                    if value is None:
                        continue
                    if isinstance(value, bytes | bytearray | memoryview):
                        raw = bytes(value)
                    else:
                        raw = str(value).encode("utf-8")
                    found.setdefault(f"{table}.{column}", []).append(raw)
    return found


def test_resources_are_encrypted_at_rest(http, engine):
    nhs = b.nhs_number(9)
    secrets = [nhs, "Zedwardson", "Quillon", "07700 900123", "ZZ99 3AZ", "2009-04-12"]
    response = http.post(
        "/fhir",
        json=b.bundle(b.post(b.patient(nhs=nhs, family="Zedwardson", given=("Quillon",)))),
    )
    assert response.status_code == 200
    columns = raw_column_bytes(engine)
    # the content columns are there and hold something: the search below is not vacuous
    assert columns["fhir_resource.content_enc"] and columns["inbound_message.payload_enc"]
    for secret in secrets:
        for encoded in {secret.encode("utf-8"), secret.encode("utf-16-le")}:
            leaks = [name for name, values in columns.items() if any(encoded in v for v in values)]
            assert leaks == [], f"a synthetic identifier is stored in the clear in {leaks}"


# -- errors: always an OperationOutcome, never a 500 ----------------------------------------
def test_no_token_is_401_with_a_bearer_challenge(http):
    response = http.post("/fhir/Encounter", json=b.encounter(), headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    outcome_of(response)


def test_an_unknown_or_revoked_token_is_403(http, clients, clock):
    unknown = http.post(
        "/fhir/Encounter", json=b.encounter(), headers={"Authorization": "Bearer rgf_not-a-token"}
    )
    assert unknown.status_code == 403
    clients.revoke("rxx-ed-epr", clock())
    revoked = http.post("/fhir/Encounter", json=b.encounter())
    assert revoked.status_code == 403
    outcome_of(revoked)


@pytest.mark.parametrize(
    "content_type",
    ["application/fhir+xml", "text/plain", "application/fhir+json; fhirVersion=5.0", None],
)
def test_anything_but_fhir_json_r4_is_415(http, content_type):
    headers = {"Content-Type": content_type} if content_type else {"Content-Type": ""}
    response = http.post("/fhir/Encounter", content=json.dumps(b.encounter()), headers=headers)
    assert response.status_code == 415
    outcome_of(response)


def test_plain_application_json_with_fhir_version_4_is_taken(http):
    response = http.post(
        "/fhir/Encounter",
        content=json.dumps(b.encounter()),
        headers={"Content-Type": "application/json; fhirVersion=4.0"},
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b"\xff\xfe", b"[1, 2, 3]", b"42", b'"Encounter"', b"null"],
)
def test_unparseable_bodies_are_400(http, body):
    response = http.post("/fhir/Encounter", content=body)
    assert response.status_code == 400
    outcome_of(response)


@pytest.mark.parametrize(
    "bundle",
    [
        {"resourceType": "Bundle"},
        {"resourceType": "Bundle", "type": "transaction", "entry": "not a list"},
        {"resourceType": "Bundle", "type": "transaction", "entry": [None, 1, "x"]},
        {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": []}]},
        {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "POST"}}]},
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "request": {"method": "POST", "url": "Patient"},
                    "resource": {"resourceType": "Patient", "contained": [{"x": 1}]},
                }
            ],
        },
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "request": {"method": "PUT", "url": "Encounter?identifier=x"},
                    "resource": b.encounter(),
                }
            ],
        },
    ],
)
def test_malformed_bundles_are_client_errors_not_server_errors(http, bundle):
    response = http.post("/fhir", json=bundle)
    assert 400 <= response.status_code < 500
    outcome_of(response)


def test_deeply_nested_bodies_are_client_errors(http):
    assert http.post("/fhir/Patient", content=b"[" * 100_000).status_code == 400
    nested: Any = {"url": "https://example.org/x"}
    for _ in range(400):
        nested = {"url": "https://example.org/x", "extension": [nested]}
    response = http.post("/fhir/Patient", json={"resourceType": "Patient", "extension": [nested]})
    assert 400 <= response.status_code < 500
    outcome_of(response)


def test_unknown_and_r5_only_types_are_404(http):
    response = http.post("/fhir/Transport", json={"resourceType": "Transport"})
    assert response.status_code == 404
    outcome_of(response)


def test_read_search_and_delete_are_405(http):
    for method, path in [
        ("GET", "/fhir/Patient/p1"),
        ("GET", "/fhir/Encounter"),
        ("DELETE", "/fhir/Encounter/e1"),
    ]:
        response = http.request(method, path)
        assert response.status_code == 405, path
        outcome_of(response)


def test_a_body_over_the_limit_is_413(writer, clients, clock, token):
    small = FastAPI()
    small.include_router(
        fhir_router(
            writer=writer,
            authenticate=TokenAuthenticator(clients),
            clock=clock,
            max_body_bytes=100,
        )
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    with TestClient(small, headers=headers) as client:
        response = client.post("/fhir/Patient", content=json.dumps(b.patient()))
    assert response.status_code == 413
    outcome_of(response)


def test_metadata_is_an_r4_capability_statement_that_lists_what_is_taken(http):
    response = http.get("/fhir/metadata", headers={"Authorization": ""})
    assert response.status_code == 200
    statement = response.json()
    validate_resource(statement)
    assert statement["fhirVersion"] == "4.0.1"
    [rest] = statement["rest"]
    assert {r["type"] for r in rest["resource"]} == {
        "Patient",
        "Encounter",
        "Condition",
        "Observation",
    }
    for resource in rest["resource"]:
        assert {i["code"] for i in resource["interaction"]} == {"create", "update"}
        assert resource["conditionalCreate"] is True
        assert resource["versioning"] == "versioned-update"
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch"}


def test_stored_row_keeps_the_encounter_status_in_the_clear_and_nothing_else(http, engine):
    http.put("/fhir/Encounter/e1", json=b.encounter(id="e1", status="triaged"))
    with engine.connect() as conn:
        row = conn.execute(select(RESOURCE.c.status, RESOURCE.c.version)).one()
    assert (row.status, row.version) == ("triaged", 1)


def test_a_database_that_cannot_be_reached_is_a_503_not_a_500(tmp_path, keyring, clock):
    """The token check reads the database: with it gone (a server stopped, a dead mount)
    the sender is told to try again, as for a write the database refused."""
    data = tmp_path / "data"
    data.mkdir()
    engine = make_engine(f"sqlite:///{data / 'gateway.db'}")
    migrate(engine)
    clients = ApiClientStore(engine)
    _, token = clients.create(name="rxx-ed-epr", site=b.SITE, now=clock())
    writer = FhirWriter(FhirResourceStore(engine, keyring), clock).start()
    app = FastAPI()
    app.include_router(
        fhir_router(
            writer=writer, authenticate=TokenAuthenticator(clients, cache_seconds=0), clock=clock
        )
    )
    data.rename(tmp_path / "moved")  # the database is out of reach from now on
    engine.dispose()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    try:
        with TestClient(app, headers=headers) as http:
            answer = http.post("/fhir/Patient", content=json.dumps(b.patient()))
    finally:
        writer.stop()
    assert answer.status_code == 503
    assert answer.json()["resourceType"] == "OperationOutcome"
