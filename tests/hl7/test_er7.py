"""The fast ER7 reader: bytes to text, batches, the header, segments/fields/components."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from adapters.hl7.er7 import (
    LONDON,
    Er7Message,
    Separators,
    decode_message,
    escape,
    parse_date,
    parse_timestamp,
    read_header,
    split_messages,
    unescape,
)
from adapters.hl7.errors import Hl7Error, UnreadableMessage
from tests.hl7 import messages as m

# --- decode_message ----------------------------------------------------------------------


def test_lf_crlf_and_cr_separated_messages_decode_to_the_same_text() -> None:
    expected = m.A01_STAB_WOUND
    assert decode_message(m.A01_LF.encode()) == expected
    assert decode_message(m.A01_CRLF.encode()) == expected
    assert decode_message(m.A01_STAB_WOUND.encode()) == expected


def test_utf8_byte_order_mark_is_stripped() -> None:
    text = decode_message(m.A01_BOM_BYTES)
    assert text.startswith("MSH|^~\\&|")
    assert "\ufeff" not in text


def test_latin1_name_in_a_message_declaring_8859_1_is_read_correctly() -> None:
    text = decode_message(m.LATIN1_ZOE_BYTES)
    assert Er7Message(text).get("PID", 5, 2) == "Zo\u00eb"


def test_utf8_declared_message_keeps_its_accented_name() -> None:
    text = decode_message(m.UTF8_DECLARED_BYTES)
    assert Er7Message(text).get("PID", 5, 2) == "Zo\u00eb"


def test_undeclared_bytes_that_are_not_utf8_fall_back_to_cp1252() -> None:
    msg = Er7Message(decode_message(m.UNDECLARED_CP1252_BYTES))
    assert msg.get("PID", 5, 1) == "O\u2019Neill"
    assert msg.get("PID", 5, 2) == "Zo\u00eb"


def test_ascii_declared_but_utf8_bytes_fall_back_to_utf8() -> None:
    data = m.adt("A01", charset="ASCII", patient=m.pid(name="Testperson^Zo\u00eb")).encode()
    assert Er7Message(decode_message(data)).get("PID", 5, 2) == "Zo\u00eb"


def test_utf16_with_byte_order_mark_is_decoded() -> None:
    data = m.adt("A01", patient=m.pid(name="Testperson^Zo\u00eb")).encode("utf-16")
    assert Er7Message(decode_message(data)).get("PID", 5, 2) == "Zo\u00eb"


def test_mllp_bytes_nuls_and_whitespace_around_the_message_are_stripped() -> None:
    data = b"\x0b\x00 " + m.A01_STAB_WOUND.encode() + b"\r\n\x00\x00\x1c\r"
    assert decode_message(data) == m.A01_STAB_WOUND


def test_stray_characters_before_msh_on_the_first_line_are_dropped() -> None:
    data = b"??" + m.A01_STAB_WOUND.encode()
    assert decode_message(data) == m.A01_STAB_WOUND


def test_trailing_tabs_blanks_and_blank_lines_are_removed_from_segment_ends() -> None:
    text = decode_message(m.A01_TRAILING_JUNK.encode())
    segments = text.split("\r")
    assert [s[:3] for s in segments] == ["MSH", "EVN", "PID", "PV1"]
    assert all(not s.endswith((" ", "\t", "\x00")) for s in segments)


def test_empty_input_decodes_to_empty_text() -> None:
    assert decode_message(b"") == ""
    assert decode_message(b"\x0b\x1c\r") == ""


# --- split_messages ----------------------------------------------------------------------


def test_batch_file_splits_into_its_messages_without_the_wrappers() -> None:
    parts = split_messages(m.BATCH_FILE)
    assert parts == [m.A01_STAB_WOUND, m.A08_ADDS_DIAGNOSIS]


def test_file_of_several_messages_splits_at_each_msh() -> None:
    text = "\n".join([m.A01_LF, m.A03_DISCHARGE.replace("\r", "\n"), m.A11_CANCEL_ARRIVAL])
    parts = split_messages(text)
    assert [read_header(p).control_id for p in parts] == ["MSG00001", "MSG00003", "MSG00004"]


def test_segments_before_the_first_msh_come_back_as_their_own_unreadable_part() -> None:
    parts = split_messages("ZZZ|junk\r" + m.A01_STAB_WOUND)
    assert parts == ["ZZZ|junk", m.A01_STAB_WOUND]
    with pytest.raises(UnreadableMessage):
        read_header(parts[0])


def test_a_single_message_splits_into_itself() -> None:
    assert split_messages(m.A01_STAB_WOUND) == [m.A01_STAB_WOUND]
    assert split_messages("") == []


# --- read_header -------------------------------------------------------------------------


def test_header_reads_the_msh_fields_by_their_hl7_numbers() -> None:
    header = read_header(m.ENHANCED_ACK_A01)
    assert header.field_separator == "|"
    assert header.encoding_characters == "^~\\&"
    assert header.sending_application == "EDIS"
    assert header.sending_facility == "RXX01^Test Hospital ED^L"  # kept whole, as sent
    assert header.receiving_application == "GATEWAY"
    assert header.receiving_facility == "TMRG"
    assert (header.message_type, header.trigger_event, header.message_structure) == (
        "ADT",
        "A01",
        "ADT_A01",
    )
    assert header.control_id == "ENH0001"
    assert header.processing_id == "P"
    assert header.version == "2.5.1"
    assert header.accept_ack_type == "AL"
    assert header.application_ack_type == "NE"


def test_header_reads_msh_18_charset() -> None:
    text = m.adt("A01", charset="UNICODE UTF-8")
    assert read_header(text).charset == "UNICODE UTF-8"


def test_v23_header_has_no_message_structure() -> None:
    header = read_header(m.V23_A04)
    assert (header.trigger_event, header.message_structure, header.version) == ("A04", "", "2.3")


def test_header_honours_custom_separators() -> None:
    header = read_header(m.CUSTOM_SEPARATORS)
    assert header.field_separator == "#"
    assert header.encoding_characters == "$%!@"
    assert header.sending_facility == "RXX02$Other ED"
    assert (header.message_type, header.trigger_event) == ("ADT", "A04")
    assert header.control_id == "CUST0001"
    assert header.version == "2.4"


def test_header_is_found_after_blank_lines_and_mllp_bytes() -> None:
    assert read_header("\x0b\r\n" + m.A01_LF).control_id == "MSG00001"


def test_header_of_a_message_equals_the_header_read_alone() -> None:
    assert Er7Message(m.A01_STAB_WOUND).header == read_header(m.A01_STAB_WOUND)


def test_text_without_msh_is_unreadable() -> None:
    with pytest.raises(UnreadableMessage, match="no MSH"):
        read_header(m.NOT_HL7)
    with pytest.raises(UnreadableMessage):
        Er7Message("PID|1||123")


@pytest.mark.parametrize(
    "bad_msh",
    [
        "MSH",  # no field separator at all
        "MSHA^~\\&A",  # a letter as field separator
        "MSH|^|EDIS",  # one encoding character
        "MSH|^^\\&|EDIS",  # repeated encoding character
        "MSH|ab\\&|EDIS",  # letters as encoding characters
        "MSH||EDIS",  # MSH-2 empty
    ],
)
def test_bad_field_separator_or_encoding_characters_are_unreadable(bad_msh: str) -> None:
    with pytest.raises(UnreadableMessage) as caught:
        read_header(bad_msh + "\rPID|1")
    assert caught.value.segment == "MSH"
    assert caught.value.field in (1, 2)


def test_unreadable_is_an_hl7_error() -> None:
    assert issubclass(UnreadableMessage, Hl7Error)


# --- Er7Message --------------------------------------------------------------------------


def test_fields_components_and_repetitions_are_numbered_as_in_hl7() -> None:
    msg = Er7Message(m.A01_STAB_WOUND)
    assert msg.get("MSH", 1) == "|"
    assert msg.get("MSH", 2) == "^~\\&"
    assert msg.get("MSH", 10) == "MSG00001"
    assert msg.get("MSH", 9, 2) == "A01"
    assert msg.get("PID", 3) == m.NHS_NUMBER
    assert msg.get("PID", 3, 4) == "NHS"
    assert msg.get("PID", 3, 1, repetition=2) == "LOC123456"
    assert msg.get("PID", 3, 5, repetition=2) == "MR"
    assert msg.get("PV1", 19) == "V20240310001"
    assert msg.get("PV1", 3, 9) == "Majors"


def test_subcomponents_are_read_on_demand() -> None:
    msg = Er7Message(m.A01_NHS_NUMBER_BY_OID)
    assert msg.get("PID", 3, 4) == ""
    assert msg.get("PID", 3, 4, 2) == "2.16.840.1.113883.2.1.4.1"
    assert msg.get("PID", 3, 4, 3) == "ISO"


def test_missing_segments_fields_and_components_read_as_empty() -> None:
    msg = Er7Message(m.A40_MERGE)
    assert msg.segment("PV1") is None
    assert msg.get("PV1", 19) == ""
    assert msg.get("PID", 99) == ""
    assert msg.get("PID", 5, 20) == ""
    assert msg.get("PID", 3, repetition=9) == ""


def test_repetitions_are_listed_and_read_component_by_component() -> None:
    pid = Er7Message(m.A01_STAB_WOUND).segment("PID")
    assert pid is not None
    identifiers = pid.repetitions(3)
    assert [(r.get(1), r.get(5)) for r in identifiers] == [
        (m.NHS_NUMBER, "NH"),
        ("LOC123456", "MR"),
    ]
    assert pid.repetitions(2) == ()


def test_segments_lists_every_occurrence_in_order() -> None:
    msg = Er7Message(m.A01_CHIEF_COMPLAINT_AND_INTENT)
    assert [obx.get(1) for obx in msg.segments("OBX")] == ["1", "2"]
    assert msg.segment_names == ("MSH", "EVN", "PID", "PV1", "OBX", "OBX")


def test_z_segments_are_kept_and_readable() -> None:
    msg = Er7Message(m.A01_WITH_Z_SEGMENTS)
    assert msg.segment_names == ("MSH", "EVN", "PID", "ZU1", "PV1", "ZU8")
    assert msg.get("ZU8", 3) == "No"
    assert msg.get("PV1", 19) == "V20240310001"


def test_trailing_separators_and_whitespace_junk_are_tolerated() -> None:
    msg = Er7Message(m.A01_TRAILING_JUNK)
    assert msg.segment_names == ("MSH", "EVN", "PID", "PV1")
    assert msg.get("EVN", 2) == "20240310223000"
    assert msg.get("PID", 13) == "07700900123"
    assert msg.get("PV1", 44) == "20240310221500"


def test_lf_separated_text_is_read_directly() -> None:
    assert Er7Message(m.A01_LF).segment_names == Er7Message(m.A01_STAB_WOUND).segment_names


def test_custom_separators_split_fields_components_and_repetitions() -> None:
    msg = Er7Message(m.CUSTOM_SEPARATORS)
    assert msg.separators == Separators("#", "$", "%", "!", "@")
    assert msg.get("MSH", 1) == "#"
    assert msg.get("MSH", 10) == "CUST0001"
    assert msg.get("PID", 3, 1, repetition=2) == "LOC777"
    assert msg.get("PID", 5, 1) == "Te#st"  # !F! is the escaped field separator
    assert msg.get("PV1", 19) == "V777"


def test_escape_sequences_are_resolved_where_text_is_read() -> None:
    obx = "OBX|1|TX|8661-1^^LN||A \\F\\ B \\S\\ C \\T\\ D \\R\\ E \\E\\ F \\X41\\\\.br\\G"
    msg = Er7Message(m.er7(m.msh("A01"), obx))
    assert msg.get("OBX", 5) == "A | B ^ C & D ~ E \\ F A\nG"


def test_hex_escape_is_read_as_utf8() -> None:
    msg = Er7Message(m.er7(m.msh("A01"), "NTE|1||Zo\\XC3AB\\"))
    assert msg.get("NTE", 3) == "Zo\u00eb"


def test_unknown_escape_sequences_are_left_as_sent() -> None:
    assert unescape("a\\Q\\b", Separators()) == "a\\Q\\b"


def test_escape_then_unescape_gives_back_the_text() -> None:
    seps = Separators("#", "$", "%", "!", "@")
    text = "a#b$c%d!e@f\rg"
    escaped = escape(text, seps)
    assert not set("#$%@\r") & set(escaped)
    assert unescape(escaped, seps) == text


def test_raw_field_keeps_separators_and_escapes() -> None:
    pid = Er7Message(m.CUSTOM_SEPARATORS).segment("PID")
    assert pid is not None
    assert pid.raw(5) == "Te!F!st$Sam"


def test_reprs_show_structure_but_no_values() -> None:
    msg = Er7Message(m.A01_STAB_WOUND)
    pid = msg.segment("PID")
    assert pid is not None
    shown = repr(msg) + repr(pid) + repr(pid.repetitions(3)[0])
    for value in m.IDENTIFIABLE_VALUES:
        assert value not in shown
    assert "ADT^A01" in repr(msg)


def test_lines_that_are_not_segments_are_kept_nameless() -> None:
    msg = Er7Message(m.er7(m.msh("A01"), "Stabbed in the arm", m.pid()))
    assert msg.segment_names == ("MSH", "", "PID")


# --- timestamps --------------------------------------------------------------------------


def test_naive_winter_timestamp_is_london_time_at_utc() -> None:
    parsed = parse_timestamp("20240110093000")
    assert parsed == datetime(2024, 1, 10, 9, 30, tzinfo=UTC)


def test_naive_summer_timestamp_is_london_time_one_hour_ahead_of_utc() -> None:
    parsed = parse_timestamp("20240710093000")
    assert parsed == datetime(2024, 7, 10, 8, 30, tzinfo=UTC)
    assert parsed is not None and parsed.tzinfo is LONDON


def test_offset_and_fractional_seconds_are_honoured() -> None:
    parsed = parse_timestamp("20240710093015.25-0500")
    assert parsed == datetime(2024, 7, 10, 14, 30, 15, 250000, tzinfo=UTC)
    assert parsed is not None and parsed.utcoffset() == timedelta(hours=-5)


def test_minute_precision_and_date_only_timestamps_are_accepted() -> None:
    assert parse_timestamp("202407100930") == datetime(2024, 7, 10, 9, 30, tzinfo=LONDON)
    assert parse_timestamp("20240710") == datetime(2024, 7, 10, tzinfo=LONDON)
    assert parse_timestamp("2024071009+0000") == datetime(2024, 7, 10, 9, tzinfo=UTC)


def test_empty_or_coarser_than_a_day_timestamps_are_none() -> None:
    assert parse_timestamp("") is None
    assert parse_timestamp("2024") is None
    assert parse_timestamp("202407") is None


@pytest.mark.parametrize("bad", ["2024-07-10", "20241310", "20240710256000", "yesterday", "1"])
def test_malformed_timestamps_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(bad)


def test_date_of_a_timestamp_ignores_time_and_zone() -> None:
    assert parse_date("196512131515") == date(1965, 12, 13)
    assert parse_date("20080315") == date(2008, 3, 15)
    assert parse_date("200803") is None
    with pytest.raises(ValueError):
        parse_date("2008-03-15")
