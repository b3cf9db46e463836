"""What detection costs per message, on the attendances of the evaluation corpus.

    python3 bench/bench_detection.py [--valueset VERSION] [--rounds N]

Builds each corpus case's attendance once (through the HL7 and FHIR adapters, as
`referral-gateway detection evaluate` does), then times `detect` alone over all of them,
several rounds, and prints the median microseconds per message and messages per second.
Figures, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from referral_gateway.detection_cli import (
    DEFAULT_CORPUS,
    SITE,
    attendance_for,
    corpus_files,
)
from referral_gateway.domain.detection import detect
from referral_gateway.domain.evaluation import read_corpus
from referral_gateway.domain.valuesets import bundled_valuesets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--valueset")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    valueset = bundled_valuesets().get(args.valueset)
    cases = [
        case
        for path in corpus_files([DEFAULT_CORPUS])
        for case in read_corpus(path.read_text(encoding="utf-8"), source=path.name)
    ]
    attendances = [attendance_for(case) for case in cases]
    per_message = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for attendance in attendances:
            detect(attendance, SITE, valueset)
        per_message.append((time.perf_counter() - start) / len(attendances))
    median = statistics.median(per_message)
    print(
        f"detect, value set {valueset.version}: {len(attendances)} corpus attendances x "
        f"{args.rounds} rounds: median {median * 1e6:.1f} us/message "
        f"({1 / median:,.0f} messages/s; best {min(per_message) * 1e6:.1f} us)"
    )


if __name__ == "__main__":
    main()
