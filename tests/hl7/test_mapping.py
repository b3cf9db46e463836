"""ADT messages to AttendanceEvent."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from adapters.hl7.er7 import Er7Message, decode_message
from adapters.hl7.errors import UnmappableMessage
from adapters.hl7.mapping import (
    to_attendance_event,
)
from referral_gateway.domain.attendance import (
    AttendanceEvent,
    Coding,
    EdLocation,
    EventKind,
    Sex,
    Source,
)
from tests.hl7 import messages as m


def event_of(text: str, *, site: str | None = None) -> AttendanceEvent:
    event = to_attendance_event(Er7Message(text), site=site)
    assert event is not None
    return event


# --- the attendances ---------------------------------------------------------------------


def test_a01_stab_wound_becomes_an_arrival_with_its_snomed_diagnosis() -> None:
    event = event_of(m.A01_STAB_WOUND)
    assert event.kind is EventKind.ARRIVAL
    assert event.source is Source.HL7V2
    assert event.message_type == "ADT^A01"
    assert event.site == "RXX01"
    assert event.visit_number == "V20240310001"
    assert Coding("snomed", "425322008", "Stab wound") in event.codings
    assert Coding("snomed", "52684005", "Assault") in event.codings  # PV2-3 admit reason


def test_a01_reads_the_patient() -> None:
    patient = event_of(m.A01_STAB_WOUND).patient
    assert patient.nhs_number == m.NHS_NUMBER
    assert patient.local_ids == ("LOC123456",)
    assert (patient.family_name, patient.given_names) == (m.FAMILY, "Alex Jo")
    assert patient.birth_date == date(2008, 3, 15)
    assert patient.address == "1 Invented Street, Flat 2, Testtown, ZZ99 9ZZ, GBR"
    assert patient.phone == "07700900123"


def test_a01_reads_sex_class_location_and_times() -> None:
    event = event_of(m.A01_STAB_WOUND)
    assert event.sex is Sex.MALE
    assert (event.patient_class, event.is_emergency) == ("E", True)
    assert event.location == EdLocation(area="MAJ", bay="CUB/4")
    # 10 March 2024 is before the clocks change: London time equals UTC.
    assert event.arrival == datetime(2024, 3, 10, 22, 15, tzinfo=UTC)
    assert event.occurred_at == datetime(2024, 3, 10, 22, 30, tzinfo=UTC)  # EVN-2
    assert event.discharge is None
    assert event.flags == ()


def test_a08_adding_a_diagnosis_becomes_an_update_with_an_icd10_coding() -> None:
    event = event_of(m.A08_ADDS_DIAGNOSIS)
    assert event.kind is EventKind.UPDATE
    assert event.codings == (Coding("icd10", "X99.9", "Assault by sharp object"),)
    assert event.visit_number == "V20240310001"


def test_a03_becomes_a_discharge_with_its_offset_time() -> None:
    event = event_of(m.A03_DISCHARGE)
    assert event.kind is EventKind.DISCHARGE
    assert event.discharge == datetime(2024, 3, 11, 0, 30, tzinfo=UTC)  # 01:30 at +0100


def test_a11_cancels_the_arrival_and_a13_cancels_the_discharge() -> None:
    assert event_of(m.A11_CANCEL_ARRIVAL).kind is EventKind.CANCEL_ARRIVAL
    assert event_of(m.A13_CANCEL_DISCHARGE).kind is EventKind.CANCEL_DISCHARGE


def test_a04_registration_is_an_arrival() -> None:
    assert event_of(m.V23_A04).kind is EventKind.ARRIVAL


def test_a40_merge_without_pv1_lists_the_prior_identifiers() -> None:
    event = event_of(m.A40_MERGE)
    assert event.kind is EventKind.MERGE
    assert event.merged_from == ("OLD98765", "V20230101009")
    assert event.visit_number is None
    assert event.patient.nhs_number == m.NHS_NUMBER
    assert event.is_emergency is None


def test_a40_without_mrg_cannot_be_mapped() -> None:
    with pytest.raises(UnmappableMessage) as caught:
        to_attendance_event(Er7Message(m.A40_WITHOUT_MRG))
    assert caught.value.segment == "MRG"


def test_v23_trigger_only_in_evn_1_is_used() -> None:
    event = event_of(m.V23_TRIGGER_ONLY_IN_EVN)
    assert (event.kind, event.message_type) == (EventKind.ARRIVAL, "ADT^A01")


# --- filtered and unmappable -------------------------------------------------------------


def test_messages_we_do_not_care_about_map_to_none() -> None:
    assert to_attendance_event(Er7Message(m.A28_ADD_PERSON)) is None
    assert to_attendance_event(Er7Message(m.ORU_RESULT)) is None
    transfer = m.adt("A02", structure="ADT_A02")
    assert to_attendance_event(Er7Message(transfer)) is None


def test_a01_with_neither_visit_number_nor_patient_identifier_is_unmappable() -> None:
    with pytest.raises(UnmappableMessage) as caught:
        to_attendance_event(Er7Message(m.A01_WITHOUT_KEYS))
    assert (caught.value.segment, caught.value.field, caught.value.code) == ("PV1", 19, "101")
    assert "PV1-19" in str(caught.value)


def test_a01_without_visit_number_but_with_nhs_number_is_mapped() -> None:
    event = event_of(m.A01_WITHOUT_VISIT_NUMBER)
    assert event.visit_number is None
    assert event.patient.nhs_number == m.NHS_NUMBER


def test_no_sending_facility_and_no_configured_site_is_unmappable() -> None:
    text = m.A01_STAB_WOUND.replace("|RXX01^Test Hospital ED^L|", "||", 1)
    with pytest.raises(UnmappableMessage, match="MSH-4"):
        to_attendance_event(Er7Message(text))
    assert event_of(text, site="RYY99").site == "RYY99"


def test_empty_message_type_is_unmappable() -> None:
    text = m.er7(m.msh("", message_type="", structure=""), m.pid(), m.pv1())
    with pytest.raises(UnmappableMessage, match="MSH-9"):
        to_attendance_event(Er7Message(text))


def test_unmappable_messages_name_fields_but_quote_no_values() -> None:
    texts = [
        m.A01_WITHOUT_KEYS,
        m.A40_WITHOUT_MRG,
        m.A01_STAB_WOUND.replace("|RXX01^Test Hospital ED^L|", "||", 1),
    ]
    for text in texts:
        with pytest.raises(UnmappableMessage) as caught:
            to_attendance_event(Er7Message(text))
        for value in m.IDENTIFIABLE_VALUES:
            assert value not in str(caught.value)


# --- site --------------------------------------------------------------------------------


def test_configured_site_overrides_msh_4() -> None:
    assert event_of(m.A01_STAB_WOUND, site="RZZ42").site == "RZZ42"


def test_site_is_the_first_component_of_msh_4() -> None:
    assert event_of(m.CUSTOM_SEPARATORS).site == "RXX02"


# --- identifiers -------------------------------------------------------------------------


def test_nhs_number_recognised_by_type_nh_alone() -> None:
    text = m.adt("A01", patient=m.pid(identifiers=f"{m.OTHER_NHS_NUMBER}^^^^NH"))
    assert event_of(text).patient.nhs_number == m.OTHER_NHS_NUMBER


def test_nhs_number_recognised_by_assigning_authority_nhs_alone() -> None:
    text = m.adt("A01", patient=m.pid(identifiers=f"{m.OTHER_NHS_NUMBER}^^^NHS"))
    assert event_of(text).patient.nhs_number == m.OTHER_NHS_NUMBER


def test_nhs_number_recognised_by_its_oid() -> None:
    assert event_of(m.A01_NHS_NUMBER_BY_OID).patient.nhs_number == m.NHS_NUMBER


def test_spaced_nhs_number_is_normalised() -> None:
    text = m.adt("A01", patient=m.pid(identifiers="999 000 0018^^^NHS^NH"))
    event = event_of(text)
    assert event.patient.nhs_number == "9990000018"
    assert "invalid_nhs_number" not in event.flags


def test_invalid_nhs_number_is_kept_and_flagged() -> None:
    event = event_of(m.A01_BAD_NHS_NUMBER)
    assert event.patient.nhs_number == m.BAD_NHS_NUMBER
    assert "invalid_nhs_number" in event.flags


def test_v23_nhs_number_in_pid_2_is_read() -> None:
    text = m.adt(
        "A01", patient=f"PID|1|{m.NHS_NUMBER}^^^NHS^NH|LOC1^^^RXX^MR||{m.FAMILY}^{m.GIVEN}"
    )
    patient = event_of(text).patient
    assert (patient.nhs_number, patient.local_ids) == (m.NHS_NUMBER, ("LOC1",))


def test_identifiers_other_than_nhs_numbers_are_local_ids() -> None:
    text = m.adt("A01", patient=m.pid(identifiers="A1^^^RXX^MR~B2^^^RYY^PI~A1^^^RXX^MR"))
    patient = event_of(text).patient
    assert (patient.nhs_number, patient.local_ids) == (None, ("A1", "B2"))


# --- demographics ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "sex"),
    [
        ("M", Sex.MALE),
        ("F", Sex.FEMALE),
        ("U", Sex.UNKNOWN),
        ("O", Sex.OTHER),
        ("1", Sex.MALE),  # NHS codes
        ("2", Sex.FEMALE),
        ("9", Sex.OTHER),  # indeterminate
        ("0", Sex.UNKNOWN),  # not known
        ("", Sex.UNKNOWN),
        ("f", Sex.FEMALE),
    ],
)
def test_sex_codes_hl7_and_nhs(code: str, sex: Sex) -> None:
    assert event_of(m.adt("A01", patient=m.pid(sex=code))).sex is sex


def test_birth_date_with_time_keeps_only_the_date() -> None:
    event = event_of(m.adt("A01", patient=m.pid(birth="200803152330+0100")))
    assert event.patient.birth_date == date(2008, 3, 15)


def test_partial_birth_date_is_none_and_flagged() -> None:
    event = event_of(m.adt("A01", patient=m.pid(birth="2008")))
    assert event.patient.birth_date is None
    assert "partial_birth_date" in event.flags


def test_malformed_birth_date_is_none_and_flagged() -> None:
    event = event_of(m.adt("A01", patient=m.pid(birth="15/03/2008")))
    assert event.patient.birth_date is None
    assert "invalid_birth_date" in event.flags


def test_legal_name_is_preferred_and_empty_names_are_skipped() -> None:
    names = f"^^^^^^~Nickname^Al^^^^^N~{m.FAMILY}^{m.GIVEN}^^^^^L"
    patient = event_of(m.adt("A01", patient=m.pid(name=names))).patient
    assert (patient.family_name, patient.given_names) == (m.FAMILY, m.GIVEN)


def test_empty_name_reads_as_none() -> None:
    patient = event_of(m.adt("A01", patient=m.pid(name="^^^^^^~^^^^^^S"))).patient
    assert (patient.family_name, patient.given_names) == (None, None)


def test_email_repetitions_are_not_taken_as_the_phone() -> None:
    phones = "alex@example.invalid^NET^Internet~^PRN^PH^^44^7700^900456"
    patient = event_of(m.adt("A01", patient=m.pid(phone=phones))).patient
    assert patient.phone == "44 7700 900456"


def test_latin1_name_survives_decoding_and_mapping() -> None:
    event = event_of(decode_message(m.LATIN1_ZOE_BYTES))
    assert event.patient.given_names == "Zo\u00eb"


# --- visit -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patient_class", "is_emergency"), [("E", True), ("I", False), ("O", False), ("", None)]
)
def test_patient_class_e_is_emergency_other_classes_are_not_empty_is_unknown(
    patient_class: str, is_emergency: bool | None
) -> None:
    event = event_of(m.adt("A01", visit=m.pv1(patient_class=patient_class)))
    assert event.is_emergency is is_emergency
    assert event.patient_class == (patient_class or None)


def test_location_falls_back_to_the_description_in_component_9() -> None:
    event = event_of(m.adt("A01", visit=m.pv1(location="^^^^^^^^Paeds ED")))
    assert event.location == EdLocation(area="Paeds ED", bay=None)


def test_location_with_room_only_gives_the_room_as_bay() -> None:
    event = event_of(m.adt("A01", visit=m.pv1(location="RESUS^R2")))
    assert event.location == EdLocation(area="RESUS", bay="R2")


def test_naive_summer_arrival_is_london_summer_time() -> None:
    event = event_of(m.adt("A01", visit=m.pv1(arrival="20240715143000")))
    assert event.arrival == datetime(2024, 7, 15, 13, 30, tzinfo=UTC)
    assert event.arrival is not None and event.arrival.utcoffset() == timedelta(hours=1)


def test_arrival_with_seconds_fraction_and_offset() -> None:
    event = event_of(m.adt("A01", visit=m.pv1(arrival="20240715143000.5+0000")))
    assert event.arrival == datetime(2024, 7, 15, 14, 30, 0, 500000, tzinfo=UTC)


def test_malformed_arrival_is_none_and_flagged() -> None:
    event = event_of(m.adt("A01", visit=m.pv1(arrival="tonight")))
    assert event.arrival is None
    assert "invalid_timestamp" in event.flags


def test_occurred_at_falls_back_to_msh_7_without_evn() -> None:
    text = m.replace_segment(m.A01_STAB_WOUND, "EVN", None)
    assert event_of(text).occurred_at == datetime(2024, 3, 10, 22, 35, tzinfo=UTC)


# --- clinical content --------------------------------------------------------------------


def test_uncoded_admit_reason_text_goes_to_free_text() -> None:
    text = m.with_segments(m.A01_WITHOUT_VISIT_NUMBER, "PV2|||^Assaulted outside club")
    event = event_of(text)
    assert event.free_text == ("Assaulted outside club",)
    assert event.codings == ()


def test_coded_admit_reason_keeps_its_text_as_display_not_free_text() -> None:
    event = event_of(m.A01_STAB_WOUND)
    assert "Assault" not in event.free_text


def test_alternate_coding_in_components_4_to_6_is_kept() -> None:
    text = m.with_segments(m.A01_WITHOUT_VISIT_NUMBER, "DG1|1||X99^Sharp object^I10^SW^Stab^L")
    assert event_of(text).codings == (
        Coding("icd10", "X99", "Sharp object"),
        Coding("l", "SW", "Stab"),
    )


def test_diagnosis_description_in_dg1_4_is_free_text_when_dg1_3_is_empty() -> None:
    text = m.with_segments(m.A01_WITHOUT_VISIT_NUMBER, "DG1|1|||Stab wound to thigh")
    assert event_of(text).free_text == ("Stab wound to thigh",)


def test_chief_complaint_text_and_coded_injury_intent_come_from_obx() -> None:
    event = event_of(m.A01_CHIEF_COMPLAINT_AND_INTENT)
    assert event.free_text == ("Stabbed in left arm outside school",)
    assert event.codings == (Coding("ecds", "52684005", "Assault"),)


def test_chief_complaint_as_cwe_original_text_with_empty_patient_class() -> None:
    event = event_of(m.A03_EMPTY_CLASS_CHIEF_COMPLAINT_CWE)
    assert event.free_text == ("Fell off bike, knee pain",)
    assert event.is_emergency is None


def test_coded_obx_values_outside_clinical_code_systems_are_ignored() -> None:
    text = m.with_segments(
        m.A01_WITHOUT_VISIT_NUMBER,
        "OBX|1|CE|ID123||CODE6^Made up^CODE_SYSTEM||||||F",
        "OBX|2|NM|21612-7^Age^LN||15|a||||||F",
        "OBX|3|CWE|MOI^Mechanism^L||283545005^Gunshot wound^SCT||||||F",
    )
    assert event_of(text).codings == (Coding("snomed", "283545005", "Gunshot wound"),)
    assert event_of(text).free_text == ()


def test_escaped_text_in_a_chief_complaint_is_unescaped() -> None:
    obx = "OBX|1|ST|8661-1^^LN||Hit with bat \\T\\ kicked||||||F"
    assert event_of(m.with_segments(m.A01_WITHOUT_VISIT_NUMBER, obx)).free_text == (
        "Hit with bat & kicked",
    )


# --- wire oddities reach the same event --------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [m.A01_LF, m.A01_CRLF, m.A01_TRAILING_JUNK, m.A01_WITH_Z_SEGMENTS],
    ids=["lf", "crlf", "trailing-junk", "z-segments"],
)
def test_wire_oddities_map_like_the_clean_message(text: str) -> None:
    clean = event_of(m.adt("A01"))
    odd = event_of(text)
    assert (odd.kind, odd.visit_number, odd.arrival, odd.location, odd.patient) == (
        clean.kind,
        clean.visit_number,
        clean.arrival,
        clean.location,
        clean.patient,
    )


def test_batch_messages_map_one_by_one() -> None:
    from adapters.hl7.er7 import split_messages

    kinds = [event_of(part).kind for part in split_messages(m.BATCH_FILE)]
    assert kinds == [EventKind.ARRIVAL, EventKind.UPDATE]


def test_event_repr_shows_no_patient_data() -> None:
    shown = repr(event_of(m.A01_CHIEF_COMPLAINT_AND_INTENT))
    for value in m.IDENTIFIABLE_VALUES:
        assert value not in shown


def test_nte_comments_reach_free_text_for_detection() -> None:
    text = m.with_segments(
        m.A01_WITHOUT_VISIT_NUMBER, "NTE|1||Set upon by 3 males on way home~kicked to head"
    )
    assert event_of(text).free_text == ("Set upon by 3 males on way home", "kicked to head")
