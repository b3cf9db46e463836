"""What detection costs per message, on the attendances of the evaluation corpus.

    python3 bench/bench_detection.py [--valueset VERSION ...] [--rounds N]

Builds each corpus case's attendance once (through the HL7 and FHIR adapters, as
`referral-gateway detection evaluate` does), then times `detect` alone over all of them,
several rounds, and prints the median microseconds per message and messages per second.
With several value sets (e.g. `--valueset 2026.1 --valueset 2026.2`) the rounds alternate
between them, so a drift in the machine's speed hits both alike. Also times the texts
that hold no phrase at all (most of a real ED feed). Figures, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from referral_gateway.domain.detection import detect
from referral_gateway.domain.evaluation import read_corpus
from referral_gateway.domain.valuesets import bundled_valuesets
from referral_gateway.entrypoints.detection_commands import (
    DEFAULT_CORPUS,
    SITE,
    attendance_for,
    corpus_files,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--valueset", action="append", help="repeatable (default: latest)")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    library = bundled_valuesets()
    valuesets = [library.get(v) for v in args.valueset or [None]]
    cases = [
        case
        for path in corpus_files([DEFAULT_CORPUS])
        for case in read_corpus(path.read_text(encoding="utf-8"), source=path.name)
    ]
    attendances = [attendance_for(case) for case in cases]
    quiet = [a for a, c in zip(attendances, cases, strict=True) if c.context == "medical"]
    for name, group in (("all corpus", attendances), ("medical only", quiet)):
        per_message: dict[str, list[float]] = {v.version: [] for v in valuesets}
        for _ in range(args.rounds):
            for valueset in valuesets:
                start = time.perf_counter()
                for attendance in group:
                    detect(attendance, SITE, valueset)
                per_message[valueset.version].append((time.perf_counter() - start) / len(group))
        for version, times in per_message.items():
            median = statistics.median(times)
            print(
                f"detect, value set {version}, {name} ({len(group)} attendances x "
                f"{args.rounds} rounds): median {median * 1e6:.1f} us/message "
                f"({1 / median:,.0f} messages/s; best {min(times) * 1e6:.1f} us)"
            )


if __name__ == "__main__":
    main()
