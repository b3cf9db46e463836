"""diagnose(): one value-free sentence on what is structurally wrong (hl7apy underneath)."""

from __future__ import annotations

import pytest

from adapters.hl7.diagnose import diagnose
from tests.hl7 import messages as m

BASE = m.er7(m.msh("A01"), m.evn())


def test_a_sound_message_has_no_structural_problem() -> None:
    assert diagnose(m.A01_STAB_WOUND) == "hl7apy found no structural problem."


def test_lf_separated_sound_message_has_no_structural_problem() -> None:
    assert diagnose(m.A01_LF) == "hl7apy found no structural problem."


def test_empty_text_is_said_to_be_empty() -> None:
    assert diagnose("  \r\n") == "The message is empty."


def test_text_without_msh_is_not_readable() -> None:
    assert diagnose(m.NOT_HL7) == "Not readable as HL7 v2: no MSH segment found."


def test_bad_encoding_characters_are_named() -> None:
    assert "MSH-2" in diagnose("MSH|^|EDIS|RXX01\rPID|1")


def test_missing_required_field_is_named_by_its_hl7_position() -> None:
    text = m.replace_segment(m.A01_STAB_WOUND, "PV1", "PV1|1||MAJ||||||||||||||||V1")
    said = diagnose(text)
    assert said == "Segment 4 (PV1): field PV1-2 is required but missing."


def test_missing_required_segment_is_named() -> None:
    text = m.replace_segment(m.A01_STAB_WOUND, "PID", None)
    assert diagnose(text) == "Message structure ADT_A01: segment PID is required but missing."


def test_unknown_segment_is_located() -> None:
    text = m.er7(BASE, "QQQ|1", m.pid(), m.pv1())
    assert diagnose(text) == (
        "hl7apy cannot parse the message: segment 3 (QQQ) is not a segment of version 2.5.1."
    )


def test_free_text_line_is_located_without_quoting_it() -> None:
    text = m.er7(BASE, "Stabbed by Alex Testperson at home", m.pid(), m.pv1())
    said = diagnose(text)
    assert said == "hl7apy cannot parse the message: segment 3 does not start with a segment name."


def test_unsupported_version_is_named() -> None:
    text = m.A01_STAB_WOUND.replace("|P|2.5.1", "|P|9.9", 1)
    assert "MSH-12 version 9.9" in diagnose(text)


def test_too_many_components_name_the_field_and_its_data_type() -> None:
    text = m.adt("A01", patient=m.pid(name="A^B^C^D^E^F^G^H^I^J^K^L^M^N^O^P"))
    assert diagnose(text).startswith(
        "Segment 3 (PID): field PID-5 of data type XPN has more components than its definition"
    )


def test_repeats_beyond_the_limit_are_named() -> None:
    text = m.replace_segment(m.A01_STAB_WOUND, "EVN", "EVN|A01~A02|20240310")
    assert "EVN-1 repeats more often than allowed" in diagnose(text)


def test_several_messages_are_not_one() -> None:
    assert diagnose(m.BATCH_FILE) == (
        "The text holds 2 messages (a batch or several MSH segments), not one."
    )


def test_further_problems_are_counted() -> None:
    text = m.er7(
        m.msh("A01"),
        m.evn(),
        m.pid(name="A^B^C^D^E^F^G^H^I^J^K^L^M^N^O^P"),
        "PV1|1",
    )
    assert diagnose(text).endswith("(and 1 more problem).")


@pytest.mark.parametrize(
    "text",
    [
        m.A01_WITHOUT_KEYS,
        m.er7(BASE, "Stabbed by Alex Testperson at home", m.pid()),
        m.adt("A01", patient=m.pid(birth="20080315^^^^extra", sex="M~F~U")),
        m.A01_STAB_WOUND.replace("|P|2.5.1", "|P|" + m.NHS_NUMBER, 1),
        m.replace_segment(m.A01_STAB_WOUND, "PV1", "PV1|1"),
    ],
)
def test_diagnoses_quote_no_values(text: str) -> None:
    said = diagnose(text)
    for value in m.IDENTIFIABLE_VALUES:
        assert value not in said
    assert said.endswith(".")
    assert "\r" not in said and "\n" not in said
