"""Validation of incoming resources: R4 structure (R4B models) and the gateway's own checks."""

from __future__ import annotations

import pytest

from adapters.fhir.checks import check_resource
from adapters.fhir.errors import Unprocessable
from adapters.fhir.models import is_resource_type, validate_resource
from tests.fhir import builders as b


def expressions(err: Unprocessable) -> set[str]:
    return {e for issue in err.issues for e in issue.expression}


def test_uk_core_patient_encounter_condition_and_observation_are_valid_r4():
    for resource in (b.patient(), b.encounter(), b.condition(), b.injury_intent()):
        validate_resource(resource)
        assert check_resource(resource) == []


def test_r5_encounter_with_class_list_and_actual_period_is_refused_naming_both_elements():
    # R5 made Encounter.class a list of CodeableConcepts and renamed period to actualPeriod
    r5 = b.encounter()
    r5["class"] = [{"coding": [r5["class"]]}]
    r5["actualPeriod"] = r5.pop("period")
    with pytest.raises(Unprocessable) as caught:
        validate_resource(r5)
    assert {"Encounter.class", "Encounter.actualPeriod"} <= expressions(caught.value)


def test_r5_only_resource_types_are_not_r4_resource_types():
    assert not is_resource_type("Transport")  # new in R5
    assert not is_resource_type("Coding")  # a data type, not a resource
    assert is_resource_type("Encounter")


def test_an_invalid_element_deep_in_a_patient_is_named_with_its_index():
    patient = b.patient()
    patient["name"][0]["given"] = "Alex"  # must be a list
    patient["birthDate"] = "2009-13-45"
    with pytest.raises(Unprocessable) as caught:
        validate_resource(patient, where="Bundle.entry[0].resource")
    assert expressions(caught.value) == {
        "Bundle.entry[0].resource.name[0].given",
        "Bundle.entry[0].resource.birthDate",
    }


def test_diagnostics_never_quote_the_offending_value():
    patient = b.patient(birth_date="not-a-date-Testwood")
    with pytest.raises(Unprocessable) as caught:
        validate_resource(patient)
    assert all("Testwood" not in issue.diagnostics for issue in caught.value.issues)


def test_encounter_class_outside_act_code_is_refused_at_class_code():
    enc = b.encounter(klass="ED")
    with pytest.raises(Unprocessable) as caught:
        check_resource(enc)
    assert expressions(caught.value) == {"Encounter.class.code"}


def test_encounter_class_from_another_code_system_is_refused_at_class_system():
    enc = b.encounter()
    enc["class"]["system"] = "http://snomed.info/sct"
    with pytest.raises(Unprocessable) as caught:
        check_resource(enc)
    assert "Encounter.class.system" in expressions(caught.value)


def test_unknown_encounter_status_is_refused():
    # pydantic takes any code; the gateway needs the R4 status to know arrivals from voids
    with pytest.raises(Unprocessable) as caught:
        check_resource(b.encounter(status="admitted"))
    assert expressions(caught.value) == {"Encounter.status"}


def test_nhs_number_with_a_wrong_check_digit_is_a_warning_not_a_refusal():
    warnings = check_resource(b.patient(nhs=b.invalid_nhs_number()))
    assert [(w.severity, w.expression) for w in warnings] == [
        ("warning", ("Patient.identifier[0].value",))
    ]


def test_patient_without_birth_date_is_accepted_with_a_warning_about_screening():
    warnings = check_resource(b.patient(birth_date=None))
    assert [(w.severity, w.expression) for w in warnings] == [("warning", ("Patient.birthDate",))]
    assert "screen" in warnings[0].diagnostics


def test_patient_with_only_a_birth_year_is_warned_about():
    warnings = check_resource(b.patient(birth_date="2009"))
    assert [w.code for w in warnings] == ["incomplete"]


def test_an_id_longer_than_r4_allows_is_refused():
    with pytest.raises(Unprocessable) as caught:
        check_resource(b.encounter(id="x" * 65))
    assert expressions(caught.value) == {"Encounter.id"}
