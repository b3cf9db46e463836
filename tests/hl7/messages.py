"""Synthetic HL7 v2 messages for the HL7 adapter tests.

Everything here is invented: people, addresses, sites. NHS numbers come from the 999 test
range, phone numbers from Ofcom's drama range (07700 900xxx). Each message says what it
exercises. Builders return text with ``\\r`` between segments unless they say otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

# NHS numbers. Check digit worked by hand: weights 10..2 over the first nine digits,
# check = 11 - (sum mod 11).
NHS_NUMBER = "9990000018"  # 9*10 + 9*9 + 9*8 + 1*2 = 245; 245 mod 11 = 3; 11 - 3 = 8
OTHER_NHS_NUMBER = "9990000026"  # 243 + 2*2 = 247; 247 mod 11 = 5; 11 - 5 = 6
BAD_NHS_NUMBER = "9990000017"  # same digits as NHS_NUMBER with the wrong check digit (7, not 8)

FAMILY = "Testperson"
GIVEN = "Alex"
SITE = "RXX01"


def er7(*segments: str, terminator: str = "\r") -> str:
    """Join segments into one message."""
    return terminator.join(segments)


def msh(
    trigger: str = "A01",
    *,
    message_type: str = "ADT",
    structure: str = "ADT_A01",
    version: str = "2.5.1",
    control_id: str = "MSG00001",
    facility: str = f"{SITE}^Test Hospital ED^L",
    accept_ack: str = "",
    application_ack: str = "",
    charset: str = "",
    sent_at: str = "20240310223500",
) -> str:
    """An MSH segment with the usual separators; fields past MSH-12 only when needed."""
    msg_type = "^".join(part for part in (message_type, trigger, structure) if part)
    fields = [
        "MSH",
        "^~\\&",
        "EDIS",  # MSH-3 sending application
        facility,  # MSH-4 sending facility
        "GATEWAY",  # MSH-5 receiving application
        "TMRG",  # MSH-6 receiving facility
        sent_at,  # MSH-7
        "",  # MSH-8 security
        msg_type,  # MSH-9
        control_id,  # MSH-10
        "P",  # MSH-11
        version,  # MSH-12
        "",  # MSH-13 sequence number
        "",  # MSH-14 continuation pointer
        accept_ack,  # MSH-15
        application_ack,  # MSH-16
        "GBR",  # MSH-17 country
        charset,  # MSH-18
    ]
    if not (accept_ack or application_ack or charset):
        del fields[12:]  # stop after MSH-12, as most senders do
    return "|".join(fields)


def pid(
    *,
    identifiers: str = f"{NHS_NUMBER}^^^NHS^NH~LOC123456^^^RXX^MR",
    name: str = f"{FAMILY}^{GIVEN}^Jo^^^^L",
    birth: str = "20080315",
    sex: str = "M",
    address: str = "1 Invented Street^Flat 2^Testtown^^ZZ99 9ZZ^GBR^H",
    phone: str = "07700900123^PRN^CP",
) -> str:
    return f"PID|1||{identifiers}||{name}||{birth}|{sex}|||{address}||{phone}"


def pv1(
    *,
    patient_class: str = "E",
    location: str = "MAJ^CUB^4^RXX01^^^^^Majors",
    visit_number: str = "V20240310001^^^RXX^VN",
    arrival: str = "20240310221500",
    discharge: str = "",
) -> str:
    fields = ["PV1", "1", patient_class, location] + [""] * 42
    fields[19] = visit_number  # PV1-19
    fields[44] = arrival  # PV1-44 admit date/time
    fields[45] = discharge  # PV1-45 discharge date/time
    while fields[-1] == "":
        fields.pop()
    return "|".join(fields)


def evn(trigger: str = "", recorded: str = "20240310223000") -> str:
    return f"EVN|{trigger}|{recorded}"


def adt(
    trigger: str = "A01",
    *more: str,
    structure: str = "ADT_A01",
    version: str = "2.5.1",
    control_id: str = "MSG00001",
    accept_ack: str = "",
    application_ack: str = "",
    charset: str = "",
    patient: str | None = None,
    visit: str | None = None,
) -> str:
    """MSH, EVN, PID, PV1 and then `more` segments."""
    return er7(
        msh(
            trigger,
            structure=structure,
            version=version,
            control_id=control_id,
            accept_ack=accept_ack,
            application_ack=application_ack,
            charset=charset,
        ),
        evn(),
        patient if patient is not None else pid(),
        visit if visit is not None else pv1(),
        *more,
    )


# --- The attendances ----------------------------------------------------------------------

# A01, v2.5.1, six segments: a 15-year-old brought into Majors with a stab wound. Exercises
# the whole mapping: NHS number + local id, PV1-2 "E", location, PV2-3 coded admit reason,
# DG1-3 SNOMED (coding system "SCT"). Also the benchmark message.
A01_STAB_WOUND = adt(
    "A01",
    "PV2|||52684005^Assault^SCT",
    "DG1|1||425322008^Stab wound^SCT||20240310222000|W",
)

# A08, v2.5.1: the same attendance later gains an ICD-10 diagnosis (coding system "I10").
A08_ADDS_DIAGNOSIS = adt(
    "A08",
    "DG1|1||X99.9^Assault by sharp object^I10||20240310230000|F",
    control_id="MSG00002",
)

# A03, v2.5.1: discharge, with PV1-45 discharge time carrying an explicit +0100 offset.
A03_DISCHARGE = adt(
    "A03",
    structure="ADT_A03",
    control_id="MSG00003",
    visit=pv1(discharge="20240311013000+0100"),
)

# A11: the arrival is cancelled (structure ADT_A09, as NHS senders send it).
A11_CANCEL_ARRIVAL = adt("A11", structure="ADT_A09", control_id="MSG00004")

# A13: the discharge is cancelled.
A13_CANCEL_DISCHARGE = adt("A13", control_id="MSG00005")

# A40: two patient records merged. No PV1 at all; MRG-1 prior local id, MRG-5 prior visit.
A40_MERGE = er7(
    msh("A40", structure="ADT_A39", control_id="MSG00006"),
    evn(),
    pid(),
    "MRG|OLD98765^^^RXX^MR||||V20230101009^^^RXX^VN",
)

# A40 without MRG: a merge with nothing to merge from.
A40_WITHOUT_MRG = er7(msh("A40", structure="ADT_A39"), evn(), pid())

# v2.3 sender: MSH-9 without a message structure, and the trigger only in EVN-1 for one of them.
V23_A04 = er7(
    msh("A04", structure="", version="2.3", control_id="OLD0001"),
    evn("A04"),
    pid(),
    pv1(),
)
V23_TRIGGER_ONLY_IN_EVN = er7(
    msh("", structure="", version="2.3", control_id="OLD0002"),
    evn("A01"),
    pid(),
    pv1(),
)

# Enhanced acknowledgement mode: MSH-15 AL (accept ack always), MSH-16 NE (no app ack).
ENHANCED_ACK_A01 = adt("A01", accept_ack="AL", application_ack="NE", control_id="ENH0001")

# Enhanced mode asking only for an application ack on error (MSH-15 empty, MSH-16 ER).
ENHANCED_APP_ACK_ON_ERROR = adt("A01", application_ack="ER", control_id="ENH0002")

# An A01 without PV1-19 and without any PID-3 identifier: nothing to correlate it by.
A01_WITHOUT_KEYS = adt(
    "A01",
    patient=pid(identifiers=""),
    visit=pv1(visit_number=""),
)

# An A01 without a visit number but with an NHS number: mappable, visit_number None.
A01_WITHOUT_VISIT_NUMBER = adt("A01", visit=pv1(visit_number=""))

# An A01 whose NHS number fails the check digit: still mapped, flagged.
A01_BAD_NHS_NUMBER = adt("A01", patient=pid(identifiers=f"{BAD_NHS_NUMBER}^^^NHS^NH"))

# PID-3 with the NHS number identified only by the NHS number OID as assigning authority.
A01_NHS_NUMBER_BY_OID = adt(
    "A01", patient=pid(identifiers=f"{NHS_NUMBER}^^^&2.16.840.1.113883.2.1.4.1&ISO")
)

# Chief complaint as free text in OBX (LOINC 8661-1, TX), and a coded ECDS injury intent.
A01_CHIEF_COMPLAINT_AND_INTENT = adt(
    "A01",
    "OBX|1|TX|8661-1^Chief complaint^LN||Stabbed in left arm outside school||||||F",
    "OBX|2|CWE|INTENT^Injury intent^L||52684005^Assault^ECDS||||||F",
)

# NIST-style syndromic message: empty PV1-2, chief complaint only as CWE original text (.9).
A03_EMPTY_CLASS_CHIEF_COMPLAINT_CWE = adt(
    "A03",
    "OBX|1|CWE|8661-1^^LN||^^^^^^^^Fell off bike, knee pain||||||F",
    structure="ADT_A03",
    visit=pv1(patient_class=""),
)

# --- Wire-format oddities ------------------------------------------------------------------

# LF between segments (files edited on Unix).
A01_LF = A01_STAB_WOUND.replace("\r", "\n")

# CRLF between segments, and a trailing CRLF (files edited on Windows).
A01_CRLF = A01_STAB_WOUND.replace("\r", "\r\n") + "\r\n"

# UTF-8 bytes with a byte-order mark in front of MSH.
A01_BOM_BYTES = b"\xef\xbb\xbf" + A01_STAB_WOUND.encode("utf-8")

# MSH-18 "8859/1" and the name "Zoë" encoded in latin-1 (byte 0xEB, not valid UTF-8).
LATIN1_ZOE_BYTES = adt("A01", charset="8859/1", patient=pid(name="Testperson^Zo\u00eb")).encode(
    "latin-1"
)

# No MSH-18 and cp1252 bytes (a Windows sender): falls back from UTF-8 to cp1252.
UNDECLARED_CP1252_BYTES = adt("A01", patient=pid(name="O\u2019Neill^Zo\u00eb")).encode("cp1252")

# MSH-18 "UNICODE UTF-8" with UTF-8 bytes for "Zoë".
UTF8_DECLARED_BYTES = adt(
    "A01", charset="UNICODE UTF-8", patient=pid(name="Testperson^Zo\u00eb")
).encode("utf-8")

# Custom separators: field "#", component "$", repetition "%", escape "!", subcomponent "@";
# the family name holds an escaped field separator (!F!) and PID-3 two repetitions.
CUSTOM_SEPARATORS = er7(
    "MSH#$%!@#EDIS#RXX02$Other ED#GATEWAY#TMRG#20240310223500##ADT$A04$ADT_A01#CUST0001#P#2.4",
    "EVN##20240310223000",
    f"PID#1##{NHS_NUMBER}$$$NHS$NH%LOC777$$$RXX$MR##Te!F!st$Sam##20100101#F",
    "PV1#1#E#RESUS$$2" + "#" * 16 + "V777",  # PV1-19 visit number
)

# Z-segments in the middle and at the end (NHS feeds carry ZU1..ZU8).
A01_WITH_Z_SEGMENTS = er7(
    msh("A01"),
    evn(),
    pid(),
    "ZU1|20240310|1|C",
    pv1(),
    "ZU8|Z|1|No",
)

# Trailing separators everywhere, TABs/blanks at segment ends, a trailing NUL and blank lines.
A01_TRAILING_JUNK = (
    er7(
        msh("A01") + "|||",
        evn() + "||\t\t",
        pid() + "|||||   ",
        "",
        pv1() + "|||^^^\t",
    )
    + "\r\x00"
)

# A batch file: FHS/BHS wrappers around two messages, BTS/FTS trailers, LF line ends.
BATCH_FILE = er7(
    "FHS|^~\\&|EDIS|RXX01|GATEWAY|TMRG|20240311000000",
    "BHS|^~\\&|EDIS|RXX01|GATEWAY|TMRG|20240311000000",
    A01_STAB_WOUND,
    A08_ADDS_DIAGNOSIS,
    "BTS|2",
    "FTS|1",
    terminator="\n",
)

# --- Messages we do not care about -------------------------------------------------------

# An ADT A28 (add person, no attendance): filtered.
A28_ADD_PERSON = er7(msh("A28", structure="ADT_A05"), evn(), pid())

# A lab result (ORU^R01): filtered.
ORU_RESULT = er7(
    msh("R01", message_type="ORU", structure="ORU_R01"),
    pid(),
    "OBR|1||LAB1|CBC",
    "OBX|1|NM|718-7^Haemoglobin^LN||140|g/L",
)

# Not HL7 at all.
NOT_HL7 = "Dear colleague, please see the attached referral."


def with_segments(message: str, *segments: str) -> str:
    """The message with more segments appended."""
    return er7(message, *segments)


def replace_segment(message: str, name: str, replacement: str | None) -> str:
    """The message with its first `name` segment replaced (or removed when None)."""
    out: list[str] = []
    done = False
    for segment in message.split("\r"):
        if not done and segment.startswith(name + "|"):
            done = True
            if replacement is not None:
                out.append(replacement)
            continue
        out.append(segment)
    return "\r".join(out)


IDENTIFIABLE_VALUES: Sequence[str] = (
    NHS_NUMBER,
    BAD_NHS_NUMBER,
    FAMILY,
    GIVEN,
    "20080315",
    "Invented Street",
    "07700900123",
    "LOC123456",
    "Stabbed",
)
"""Values that must never appear in exception messages, diagnoses or reprs."""
