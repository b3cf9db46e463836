"""`referral-gateway detection evaluate [CORPUS ...]`: detection measured on a labelled corpus.

Each case travels the way the ED would send it: its text is put in its field of an HL7 v2
ADT^A04 (PV2-3, OBX chief complaint, DG1-4, NTE) or of a FHIR Encounter / Condition
(reasonCode.text, Condition.code.text, Condition.note), read by the same adapters the
pipeline uses, folded into an Attendance and given to `detect`. So a field the adapters do
not read shows up as misses in that field's row.

CORPUS is a corpus file or a folder of them (default: the project's eval/corpus, whose
held_out.tsv is the part never used while changing rules). Each file is reported on its own.
Exit code 0; 1 with --min-precision / --min-recall when a file falls below them; 2 when a
corpus file or the value-set version cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from adapters.fhir.mapping import EncounterRecord, attendance_event
from adapters.hl7.er7 import Er7Message
from adapters.hl7.mapping import to_attendance_event
from consent.keyring import KeyRing
from referral_gateway.config import Settings
from referral_gateway.domain.attendance import Attendance, EventKind
from referral_gateway.domain.detection import Detection, detect
from referral_gateway.domain.dismissal import corpus_row
from referral_gateway.domain.errors import ValueSetError
from referral_gateway.domain.evaluation import (
    HEADER,
    Case,
    CorpusError,
    Evaluation,
    evaluate,
    read_corpus,
    render,
)
from referral_gateway.domain.sites import SiteRules
from referral_gateway.domain.valuesets import ValueSet, bundled_valuesets
from referral_gateway.entrypoints.commands import Command, SettingsArgs, SettingsFor
from referral_gateway.storage.dismissals import MarkStore
from referral_gateway.wiring.database import open_database_and_keyring

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "eval" / "corpus"
HL7_FIELDS = frozenset({"pv2_3", "obx_cc", "dg1_desc", "nte"})
SITE = SiteRules(ods_code="RXX", name="Evaluation ED")

_SYSTEM_URIS = {
    "snomed": "http://snomed.info/sct",
    "icd10": "http://hl7.org/fhir/sid/icd-10",
    "ecds": "https://fhir.nhs.uk/CodeSystem/ECDS-InjuryIntent",
}
_HL7_SYSTEMS = {"snomed": "SCT", "icd10": "I10", "ecds": "ECDS"}


def add_parsers(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    settings_args: SettingsArgs,
) -> None:
    # The evaluation reads a corpus and the bundled value sets: it needs no settings.
    detection = sub.add_parser("detection", help="detection tools (evaluate on a corpus)")
    actions = detection.add_subparsers(dest="detection_command", required=True)
    run = actions.add_parser("evaluate", help="precision, recall and errors on a labelled corpus")
    run.add_argument(
        "corpus",
        nargs="*",
        type=Path,
        help=f"corpus files or folders (default {DEFAULT_CORPUS})",
    )
    run.add_argument("--valueset", help="value-set version (default: the latest bundled)")
    run.add_argument("--no-errors", action="store_true", help="figures only, no error list")
    run.add_argument("--min-precision", type=float, help="exit 1 if a file falls below this")
    run.add_argument("--min-recall", type=float, help="exit 1 if a file falls below this")
    export = actions.add_parser(
        "export-marks",
        help="youth workers' 'not an assault' marks as new corpus rows (no identifiers)",
    )
    export.add_argument("--out", type=Path, help="write the rows here (default: standard output)")
    export.add_argument("--first-id", type=int, default=1, help="number of the first row id (m...)")
    settings_args(export)


def commands(settings_for: SettingsFor) -> dict[str, Command]:
    def run(args: argparse.Namespace) -> int:
        if args.detection_command == "export-marks":
            return export_marks(settings_for(args), args)
        return run_detection_command(args)

    return {"detection": run}


# a mark's text is replayed in its channel's main free-text field: the feed does not keep
# which field a text arrived in, so whoever adds the row to the corpus may correct it
EXPORT_FIELD = {"hl7v2": "pv2_3", "fhir": "fhir_reason", "manual": "fhir_reason"}


def export_marks(settings: Settings, args: argparse.Namespace) -> int:
    engine, keyring = open_database_and_keyring(settings)
    try:
        lines = marked_corpus_rows(engine, keyring, first_id=args.first_id)
    finally:
        engine.dispose()
    out = "\n".join(lines) + "\n"
    if args.out is not None:
        args.out.write_text(out, encoding="utf-8")
        print(f"{len(lines) - 1} rows written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(out)
    return 0


def marked_corpus_rows(engine: Engine, keyring: KeyRing, *, first_id: int = 1) -> list[str]:
    """The corpus header, then each mark's ED text that fired (holding an assault phrase
    of the latest value set), scrubbed, as a row labelled `not`. The youth worker's note
    is never read."""
    terms = bundled_valuesets().get(None).assault_terms
    lines = ["\t".join(HEADER)]
    number = first_id
    with engine.connect() as conn:
        for marked in MarkStore(keyring).marked_texts(conn):
            fired = [t for t in marked.free_text if any(x.pattern.search(t) for x in terms)]
            field = EXPORT_FIELD.get(marked.source, "fhir_reason")
            for text in fired:  # a mark on a coded signal alone has no text to export
                row = corpus_row(f"m{number:03d}", marked.mark, field, text, marked.identifiers)
                if row is not None:
                    lines.append(row.tsv())
                    number += 1
    return lines


def run_detection_command(args: argparse.Namespace) -> int:
    try:
        valueset = bundled_valuesets().get(args.valueset)
        files = corpus_files(args.corpus or [DEFAULT_CORPUS])
        evaluations = [evaluate_file(path, valueset) for path in files]
    except (CorpusError, ValueSetError, OSError) as exc:
        print(f"detection evaluate: {exc}", file=sys.stderr)
        return 2
    status = 0
    for evaluation in evaluations:
        print(render(evaluation, show_errors=not args.no_errors))
        print()
        scores = evaluation.overall
        for floor, figure, name in (
            (args.min_precision, scores.precision, "precision"),
            (args.min_recall, scores.recall, "recall"),
        ):
            if floor is not None and (figure is None or figure < floor):
                print(f"{evaluation.name}: {name} {figure} is below {floor}", file=sys.stderr)
                status = 1
    return status


def corpus_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files += sorted(path.glob("*.tsv")) if path.is_dir() else [path]
    if not files:
        raise CorpusError(f"no corpus files in {', '.join(map(str, paths))}")
    return files


def evaluate_file(path: Path, valueset: ValueSet) -> Evaluation:
    cases = read_corpus(path.read_text(encoding="utf-8"), source=path.name)
    return evaluate(cases, decider(valueset), name=path.stem)


def decider(valueset: ValueSet, rules: SiteRules = SITE) -> Callable[[Case], Detection]:
    def decide(case: Case) -> Detection:
        return detect(attendance_for(case), rules, valueset)

    return decide


# --- a case as the ED would send it ----------------------------------------------------------

ARRIVAL = "20260314143000"
BIRTH_DATE = "20090901"  # 16 at arrival


def attendance_for(case: Case) -> Attendance:
    """The attendance the gateway would hold after reading this case from its field."""
    if case.field in HL7_FIELDS:
        event = to_attendance_event(Er7Message(hl7_message(case)))
        if event is None:
            raise CorpusError(f"case {case.id}: the HL7 message was filtered")
    else:
        event = attendance_event(
            fhir_record(case), site=SITE.ods_code, kind=EventKind.ARRIVAL, message_type="Bundle"
        )
    return Attendance.from_event(event)


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\E\\")
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("&", "\\T\\")
        .replace("~", "\\R\\")
        .replace("\r", " ")
        .replace("\n", " ")
    )


def hl7_message(case: Case) -> str:
    """An ADT^A04 carrying the case's text in its field (synthetic patient, 999 number)."""
    text = _escape(case.text)
    segments = [
        f"MSH|^~\\&|EDIS|RXX|GATEWAY|TMRG|{ARRIVAL}||ADT^A04^ADT_A01|EVAL{case.id}|P|2.5.1",
        f"EVN||{ARRIVAL}",
        f"PID|1||9990000018^^^NHS^NH||Testperson^Alex||{BIRTH_DATE}|U",
        "PV1|1|E|MAJ^^4||||||||||||||||V" + case.id + "|" * 25 + ARRIVAL,
    ]
    if case.field == "pv2_3":
        segments.append(f"PV2|||^{text}")
    if case.field == "nte":
        segments.append(f"NTE|1||{text}")
    if case.field == "obx_cc":
        segments.append(f"OBX|1|TX|8661-1^Chief complaint^LN||{text}||||||F")
    for i, (system, code) in enumerate(case.codes, start=2):
        segments.append(
            f"OBX|{i}|CWE|INTENT^Injury intent^L||{code}^^{_HL7_SYSTEMS[system]}||||||F"
        )
    if case.field == "dg1_desc":
        segments.append(f"DG1|1|||{text}|{ARRIVAL}|W")
    return "\r".join(segments)


def fhir_record(case: Case) -> EncounterRecord:
    """An Encounter (and a Condition) carrying the case's text where its field says."""
    coding = [{"system": _SYSTEM_URIS[s], "code": c} for s, c in case.codes]
    reason: dict[str, Any] = {}
    if coding:
        reason["coding"] = coding
    if case.field == "fhir_reason":
        reason["text"] = case.text
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": f"eval-{case.id}",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
        "identifier": [{"system": "https://example.org/ed-visit", "value": f"V{case.id}"}],
        "subject": {"reference": "Patient/eval"},
        "period": {"start": datetime.strptime(ARRIVAL, "%Y%m%d%H%M%S").isoformat() + "+00:00"},
    }
    if reason:
        encounter["reasonCode"] = [reason]
    conditions = []
    if case.field in ("condition_text", "fhir_note"):
        condition: dict[str, Any] = {
            "resourceType": "Condition",
            "id": f"eval-{case.id}-dx",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                            "code": "encounter-diagnosis",
                        }
                    ]
                }
            ],
            "subject": {"reference": "Patient/eval"},
            "encounter": {"reference": f"Encounter/eval-{case.id}"},
        }
        if case.field == "condition_text":
            condition["code"] = {"text": case.text}
        else:
            condition["note"] = [{"text": case.text}]
        conditions.append(condition)
    patient = {
        "resourceType": "Patient",
        "id": "eval",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}],
        "birthDate": f"{BIRTH_DATE[:4]}-{BIRTH_DATE[4:6]}-{BIRTH_DATE[6:]}",
        "gender": "unknown",
    }
    return EncounterRecord(encounter=encounter, patient=patient, conditions=conditions)
