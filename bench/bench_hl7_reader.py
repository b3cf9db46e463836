"""How fast the HL7 hot path is, next to hl7apy, on one 6-segment ADT A01.

    python3 bench/bench_hl7_reader.py

Prints messages per second for:
  ack path      decode_message + read_header + build_ack (what the listener does per frame)
  mapping       Er7Message + to_attendance_event
  hl7apy        parse_message (tolerant, find_groups=False) on the same message
Finishes in well under 20 s on the 2-core box. Figures, not a test: nothing is asserted.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from adapters.hl7.ack import ack_plan, build_ack
from adapters.hl7.er7 import Er7Message, decode_message, read_header
from adapters.hl7.mapping import to_attendance_event

# Synthetic: invented patient, NHS number from the 999 test range.
MESSAGE = "\r".join(
    [
        "MSH|^~\\&|EDIS|RXX01^Test Hospital ED^L|GATEWAY|TMRG|20240310223500||ADT^A01^ADT_A01"
        "|MSG00001|P|2.5.1",
        "EVN||20240310223000",
        "PID|1||9990000018^^^NHS^NH~LOC123456^^^RXX^MR||Testperson^Alex^Jo^^^^L||20080315|M"
        "|||1 Invented Street^Flat 2^Testtown^^ZZ99 9ZZ^GBR^H||07700900123^PRN^CP",
        "PV1|1|E|MAJ^CUB^4^RXX01^^^^^Majors||||||||||||||||V20240310001^^^RXX^VN"
        + "|" * 25
        + "20240310221500",
        "PV2|||52684005^Assault^SCT",
        "DG1|1||425322008^Stab wound^SCT||20240310222000|W",
    ]
)
DATA = MESSAGE.encode("utf-8")
NOW = datetime(2024, 3, 10, 22, 36, tzinfo=UTC)


def ack_path() -> None:
    header = read_header(decode_message(DATA))
    plan = ack_plan(header, stored_ok=True)
    build_ack(header, plan.send_now or "AA", now=NOW, control_id="ACK00001")


def mapping() -> None:
    to_attendance_event(Er7Message(MESSAGE))


def hl7apy_parse() -> None:
    parse_message(MESSAGE, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)


def rate(work: Callable[[], None], iterations: int) -> float:
    work()  # warm up (imports, caches)
    start = time.perf_counter()
    for _ in range(iterations):
        work()
    return iterations / (time.perf_counter() - start)


def main() -> None:
    figures = [
        ("decode + read_header + build_ack", rate(ack_path, 20_000)),
        ("Er7Message + to_attendance_event", rate(mapping, 10_000)),
        ("hl7apy parse_message (tolerant)", rate(hl7apy_parse, 300)),
    ]
    for label, per_second in figures:
        print(f"{label:36s} {per_second:>12,.0f} msg/s")
    print(f"ack path is {figures[0][1] / figures[2][1]:,.0f}x hl7apy parse_message")


if __name__ == "__main__":
    main()
