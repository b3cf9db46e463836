"""ACKs built by string formatting, checked with two independent parsers (hl7apy and
python-hl7), and the acknowledgement plan for original and enhanced mode."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import hl7  # python-hl7: an independent parser to check our ACKs
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from adapters.hl7.ack import (
    AckError,
    AckMode,
    AckPlan,
    ErrorCode,
    ack_plan,
    build_ack,
    frame,
    rejection_code,
)
from adapters.hl7.er7 import MessageHeader, read_header, salvage_header
from adapters.hl7.errors import UnmappableMessage, UnreadableMessage
from tests.hl7 import messages as m

NOW = datetime(2024, 3, 10, 22, 36, 5, tzinfo=UTC)
MISSING_VISIT = AckError(
    ErrorCode.REQUIRED_FIELD_MISSING,
    "PV1-19 visit number is empty",
    segment="PV1",
    field=19,
)


def strict(text: str) -> Any:
    """hl7apy, strict validation, with groups: the pickiest reading we have."""
    message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    message.validate()
    return message


def tolerant(text: str) -> Any:
    return parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)


# --- build_ack ---------------------------------------------------------------------------


def test_accept_ack_swaps_sender_and_receiver_and_answers_the_control_id() -> None:
    ack = build_ack(read_header(m.A01_STAB_WOUND), "AA", now=NOW, control_id="ACK0001")
    parsed = strict(ack)
    assert parsed.msh.msh_3.to_er7() == "GATEWAY"
    assert parsed.msh.msh_4.to_er7() == "TMRG"
    assert parsed.msh.msh_5.to_er7() == "EDIS"
    assert parsed.msh.msh_6.to_er7() == "RXX01^Test Hospital ED^L"
    assert parsed.msh.msh_9.to_er7() == "ACK^A01^ACK"
    assert parsed.msh.msh_10.to_er7() == "ACK0001"
    assert parsed.msh.msh_11.to_er7() == "P"
    assert parsed.msh.msh_12.to_er7() == "2.5.1"
    assert parsed.msa.msa_1.to_er7() == "AA"
    assert parsed.msa.msa_2.to_er7() == "MSG00001"


def test_ack_reads_the_same_through_python_hl7() -> None:
    ack = build_ack(read_header(m.A08_ADDS_DIAGNOSIS), "AA", now=NOW, control_id="ACK0002")
    parsed = hl7.parse(ack)
    assert str(parsed.segment("MSH")[3]) == "GATEWAY"
    assert str(parsed.segment("MSH")[5]) == "EDIS"
    assert str(parsed.segment("MSH")[9]) == "ACK^A08^ACK"
    assert str(parsed.segment("MSH")[10]) == "ACK0002"
    assert str(parsed.segment("MSA")[1]) == "AA"
    assert str(parsed.segment("MSA")[2]) == "MSG00002"


def test_ack_time_is_now_with_its_offset() -> None:
    ack = build_ack(read_header(m.A01_STAB_WOUND), "AA", now=NOW, control_id="X")
    assert str(hl7.parse(ack).segment("MSH")[7]) == "20240310223605+0000"


def test_every_segment_of_the_ack_ends_with_a_carriage_return() -> None:
    ack = build_ack(
        read_header(m.A01_STAB_WOUND), "AE", now=NOW, control_id="X", error=MISSING_VISIT
    )
    assert ack.endswith("\r")
    assert [s[:3] for s in ack.split("\r")] == ["MSH", "MSA", "ERR", ""]


def test_v251_error_goes_into_err_3_err_4_and_err_8() -> None:
    ack = build_ack(
        read_header(m.A01_STAB_WOUND), "AE", now=NOW, control_id="ACK0003", error=MISSING_VISIT
    )
    parsed = strict(ack)
    assert parsed.msa.msa_1.to_er7() == "AE"
    assert parsed.err.err_2.to_er7() == "PV1^1^19"
    assert parsed.err.err_3.to_er7() == "101^Required field missing^HL70357"
    assert parsed.err.err_4.to_er7() == "E"
    assert parsed.err.err_8.to_er7() == "PV1-19 visit number is empty"
    assert parsed.err.err_1.to_er7() == ""


def test_error_text_with_separators_is_escaped_and_reads_back_unchanged() -> None:
    error = AckError(ErrorCode.DATA_TYPE_ERROR, "PID-7 must be YYYYMMDD | not ^ this & that ~")
    ack = build_ack(read_header(m.A01_STAB_WOUND), "AE", now=NOW, control_id="X", error=error)
    parsed = hl7.parse(ack)
    assert parsed.unescape(str(parsed.segment("ERR")[8])) == error.message
    assert len(parsed.segment("ERR")) == 9  # no field was split by the text


def test_v23_ack_has_no_message_structure_and_reports_the_error_in_err_1() -> None:
    ack = build_ack(
        read_header(m.V23_A04), "AE", now=NOW, control_id="ACK0004", error=MISSING_VISIT
    )
    parsed = tolerant(ack)  # hl7apy has no ACK structure for 2.3 to validate against
    assert parsed.msh.msh_9.to_er7() == "ACK^A04"
    assert parsed.msh.msh_12.to_er7() == "2.3"
    assert parsed.msa.msa_1.to_er7() == "AE"
    assert parsed.msa.msa_2.to_er7() == "OLD0001"
    assert parsed.msa.msa_3.to_er7() == "PV1-19 visit number is empty"
    assert parsed.err.err_1.to_er7() == "PV1^1^19^101&Required field missing&HL70357"
    python_hl7 = hl7.parse(ack)
    assert str(python_hl7.segment("ERR")[1][0][3][0]) == "101"


def test_v24_ack_carries_the_message_structure_and_err_1() -> None:
    header = read_header(m.CUSTOM_SEPARATORS)  # a v2.4 message
    ack = build_ack(header, "AR", now=NOW, control_id="ACK0005", error=MISSING_VISIT)
    parsed = strict(ack)
    assert parsed.msh.msh_9.to_er7() == "ACK$A04$ACK"
    assert parsed.err.err_1.to_er7() == "PV1$1$19$101@Required field missing@HL70357"


def test_ack_to_a_custom_separator_message_uses_its_separators() -> None:
    ack = build_ack(read_header(m.CUSTOM_SEPARATORS), "AA", now=NOW, control_id="ACK0006")
    assert ack.startswith("MSH#$%!@#GATEWAY#TMRG#EDIS#RXX02$Other ED#")
    parsed = hl7.parse(ack)
    assert str(parsed.segment("MSA")[2]) == "CUST0001"
    assert strict(ack).msa.msa_2.to_er7() == "CUST0001"


def test_ack_to_unreadable_input_is_minimal_with_msa_2_empty() -> None:
    error = AckError.from_exception(UnreadableMessage("no MSH segment found", segment="MSH"))
    ack = build_ack(None, "AR", now=NOW, control_id="ACK0007", error=error)
    parsed = tolerant(ack)  # strict hl7apy refuses an empty MSA-2, as HL7 requires it
    assert parsed.msh.msh_9.to_er7() == "ACK^^ACK"  # trigger unknown, structure ACK
    assert parsed.msh.msh_10.to_er7() == "ACK0007"
    assert parsed.msa.msa_1.to_er7() == "AR"
    assert parsed.msa.msa_2.to_er7() == ""
    assert parsed.err.err_3.to_er7() == "100^Segment sequence error^HL70357"
    assert str(hl7.parse(ack).segment("MSH")[3]) == ""


def test_enhanced_mode_commit_codes_are_accepted() -> None:
    header = read_header(m.ENHANCED_ACK_A01)
    for code in ("CA", "CE", "CR"):
        assert strict(build_ack(header, code, now=NOW, control_id="X")).msa.msa_1.to_er7() == code


def test_unknown_acknowledgement_code_is_refused() -> None:
    with pytest.raises(ValueError):
        build_ack(read_header(m.A01_STAB_WOUND), "OK", now=NOW, control_id="X")


def test_non_ascii_ack_declares_utf8_in_msh_18() -> None:
    header = read_header(m.A01_STAB_WOUND.replace("|TMRG|", "|H\u00f4pital|", 1))
    ack = build_ack(header, "AA", now=NOW, control_id="X")
    assert strict(ack).msh.msh_18.to_er7() == "UNICODE UTF-8"
    plain = build_ack(read_header(m.A01_STAB_WOUND), "AA", now=NOW, control_id="X")
    assert "UNICODE" not in plain


def test_naive_now_is_written_without_an_offset() -> None:
    ack = build_ack(None, "AA", now=datetime(2024, 1, 2, 3, 4, 5), control_id="X")
    assert str(hl7.parse(ack).segment("MSH")[7]) == "20240102030405"


def test_ack_error_from_an_exception_keeps_its_location_and_code() -> None:
    exc = UnmappableMessage("PV1-19 visit number is empty", segment="PV1", field=19)
    error = AckError.from_exception(exc)
    assert error == AckError(ErrorCode.REQUIRED_FIELD_MISSING, exc.message, "PV1", 1, 19)


def test_frame_wraps_utf8_text_in_mllp_block_bytes() -> None:
    assert frame("MSH|x\r") == b"\x0bMSH|x\r\x1c\r"
    assert frame("Zo\u00eb") == b"\x0bZo\xc3\xab\x1c\r"


# --- ack_plan ----------------------------------------------------------------------------


def header_with(accept: str, application: str) -> MessageHeader:
    return read_header(m.adt("A01", accept_ack=accept, application_ack=application))


def test_original_mode_sends_aa_once_stored_and_owes_nothing_later() -> None:
    plan = ack_plan(read_header(m.A01_STAB_WOUND), stored_ok=True)
    assert plan == AckPlan(mode=AckMode.ORIGINAL, send_now="AA")
    assert not plan.application_ack_wanted


def test_original_mode_sends_ae_when_storing_failed() -> None:
    plan = ack_plan(read_header(m.A01_STAB_WOUND), stored_ok=False)
    assert (plan.mode, plan.send_now) == (AckMode.ORIGINAL, "AE")


def test_unreadable_header_is_answered_in_original_mode() -> None:
    assert ack_plan(None, stored_ok=True).send_now == "AA"


@pytest.mark.parametrize(
    ("accept", "stored_ok", "send_now"),
    [
        ("AL", True, "CA"),
        ("AL", False, "CE"),
        ("NE", True, None),
        ("NE", False, None),
        ("ER", True, None),
        ("ER", False, "CE"),
        ("SU", True, "CA"),
        ("SU", False, None),
        ("al", True, "CA"),  # lower case is read as upper case
        ("XX", False, "CE"),  # unrecognised: answer always
    ],
)
def test_enhanced_mode_accept_ack_follows_msh_15(
    accept: str, stored_ok: bool, send_now: str | None
) -> None:
    plan = ack_plan(header_with(accept, "NE"), stored_ok=stored_ok)
    assert plan.mode is AckMode.ENHANCED
    assert plan.send_now == send_now


def test_enhanced_mode_with_only_msh_16_sends_an_accept_ack_anyway() -> None:
    plan = ack_plan(read_header(m.ENHANCED_APP_ACK_ON_ERROR), stored_ok=True)
    assert (plan.mode, plan.send_now, plan.application_ack) == (AckMode.ENHANCED, "CA", "ER")


@pytest.mark.parametrize(
    ("application", "processed_ok", "code"),
    [
        ("AL", True, "AA"),
        ("AL", False, "AE"),
        ("NE", True, None),
        ("NE", False, None),
        ("ER", True, None),
        ("ER", False, "AE"),
        ("SU", True, "AA"),
        ("SU", False, None),
    ],
)
def test_enhanced_mode_application_ack_follows_msh_16(
    application: str, processed_ok: bool, code: str | None
) -> None:
    plan = ack_plan(header_with("AL", application), stored_ok=True)
    assert plan.application_ack_code(processed_ok) == code
    assert plan.application_ack_wanted is (application != "NE")


def test_enhanced_mode_with_only_msh_15_wants_no_application_ack() -> None:
    plan = ack_plan(header_with("AL", ""), stored_ok=True)
    assert (plan.mode, plan.send_now, plan.application_ack_wanted) == (
        AckMode.ENHANCED,
        "CA",
        False,
    )


def test_no_application_ack_is_planned_when_storing_failed() -> None:
    plan = ack_plan(header_with("AL", "AL"), stored_ok=False)
    assert plan.send_now == "CE"
    assert not plan.application_ack_wanted
    assert plan.application_ack_code(False) is None


def test_planned_codes_build_acks_that_parse() -> None:
    header = read_header(m.ENHANCED_ACK_A01)
    plan = ack_plan(header, stored_ok=True)
    assert plan.send_now is not None
    ack = build_ack(header, plan.send_now, now=NOW, control_id="ACK0008")
    assert strict(ack).msa.msa_1.to_er7() == "CA"


@pytest.mark.parametrize(
    ("accept", "application", "code"),
    [
        ("", "", "AR"),  # original mode: the application reject
        ("AL", "", "CR"),
        ("AL", "AL", "CR"),
        ("ER", "AL", "CR"),  # accept ACK on error: a reject is one
        ("", "AL", "CR"),  # enhanced, MSH-15 empty taken as AL
        ("NE", "AL", None),  # no accept ACK at all
        ("SU", "NE", None),  # accept ACK on success only
    ],
)
def test_a_refused_message_is_answered_by_its_acknowledgement_mode(accept, application, code):
    header = read_header(m.adt(accept_ack=accept, application_ack=application))
    assert rejection_code(header) == code


def test_a_message_without_a_readable_header_is_refused_with_ar():
    assert rejection_code(None) == "AR"


def test_a_salvaged_header_lets_the_reject_echo_the_control_id_with_default_separators():
    text = m.adt(control_id="CTRL-SALVAGE").replace("MSH|^~\\&|", "MSH|^~\\\\&|", 1)
    with pytest.raises(UnreadableMessage):
        read_header(text)
    header = salvage_header(text)
    assert header is not None
    ack = build_ack(header, "AR", now=NOW, control_id="X", error=None)
    msh_line, msa_line = ack.split("\r")[:2]
    assert msh_line.startswith("MSH|^~\\&|GATEWAY|TMRG|EDIS|")
    assert msa_line == "MSA|AR|CTRL-SALVAGE"


@pytest.mark.parametrize("text", ["MSH", "MSHA^~\\&|x", "PID|1||9990000018", "MSH |^~"])
def test_nothing_is_salvaged_without_a_usable_field_separator(text):
    assert salvage_header(text) is None


def test_an_unprintable_or_huge_control_id_is_not_echoed():
    base = m.adt().replace("MSH|^~\\&|", "MSH|^~\\\\&|", 1)
    huge = salvage_header(base.replace("|MSG00001|", "|" + "9" * 500 + "|", 1))
    assert huge is not None and huge.control_id == ""
