"""Whatever a client sends, the answer is a 2xx or a 4xx OperationOutcome, never a 500:
valid UK Core Bundles with one element at a time replaced by something of the wrong shape."""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fhir import builders as b

ODD_VALUES: list[Any] = [
    None,
    0,
    -1,
    3.5,
    True,
    "",
    " ",
    "x" * 5000,
    [],
    [None],
    {},
    {"reference": 7},
    "urn:uuid:not-in-this-bundle",
    "Patient/../../etc",
    "\u0000",
    [[[]]],
    {"": {}},
]


def leaf_paths(node: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [path] + [p for k, v in node.items() for p in leaf_paths(v, (*path, k))]
    if isinstance(node, list):
        return [path] + [p for i, v in enumerate(node) for p in leaf_paths(v, (*path, i))]
    return [path]


def replaced(doc: Any, path: tuple, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    if not path:
        return value
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return doc


def test_two_hundred_malformed_bundles_get_client_errors_or_success_never_a_500(http):
    rng = random.Random(20250301)  # fixed: the same cases every run
    template = b.attendance_bundle(1)
    paths = leaf_paths(template)
    statuses = []
    for _ in range(200):
        mutant = replaced(template, rng.choice(paths), rng.choice(ODD_VALUES))
        response = http.post("/fhir", json=mutant)
        statuses.append(response.status_code)
        assert response.status_code < 500, (response.status_code, response.text[:300])
        if response.status_code >= 400:
            assert response.json()["resourceType"] == "OperationOutcome"
    assert any(s >= 400 for s in statuses) and any(s == 200 for s in statuses)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)  # what JSON can carry
    | st.text(max_size=40)
    | st.sampled_from(ODD_VALUES[:14]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bundles_with_random_json_grafted_anywhere_get_an_outcome_never_a_500(http, data):
    template = b.attendance_bundle(1)
    mutant = template
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(leaf_paths(mutant)))
        mutant = replaced(mutant, path, data.draw(json_values))
    response = http.post("/fhir", json=mutant)
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.json()["resourceType"] == "OperationOutcome"


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_any_body_bytes_get_an_outcome_never_a_500(http, body):
    response = http.post("/fhir", content=body)
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.json()["resourceType"] == "OperationOutcome"
