"""Value-set files: loading, validation errors, the library of versions, coding systems."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest

from referral_gateway.domain.errors import ValueSetError
from referral_gateway.domain.valuesets import (
    InjuryCategory,
    Strength,
    ValueSet,
    ValueSetLibrary,
    bundled_valuesets,
    load_valueset,
    normalise_coding_system,
    normalise_icd10,
)

# A small, complete, hand-written value set: one code of each kind, one phrase, one cue.
MINIMAL: dict[str, Any] = {
    "format": 1,
    "version": "1.0",
    "description": "test value set",
    "sources": ["written for the tests"],
    "assault": {
        "snomed": [
            {"code": "52684005", "display": "Assault", "category": "other", "strength": "explicit"}
        ],
        "icd10": [
            {
                "from": "X85",
                "to": "Y09",
                "display": "Assault",
                "category": "other",
                "strength": "explicit",
            },
            {
                "code": "X99",
                "display": "Sharp object",
                "category": "bladed",
                "strength": "explicit",
            },
        ],
        "ecds_intent": [],
    },
    "self_harm": {"snomed": [{"code": "276853009", "display": "Self inflicted"}]},
    "text": {
        "assault": [
            {
                "id": "stabbed",
                "label": "stabbed",
                "pattern": r"\bstabbed\b",
                "category": "bladed",
                "strength": "implied",
            }
        ],
        "self_harm": [],
        "negation": {
            "window_words": 3,
            "before": [{"id": "denies", "pattern": r"\bdenies\b"}],
            "after": [],
            "pseudo": [],
            "terminators": [r"[.,]"],
        },
    },
}


def text_of(change: Callable[[dict[str, Any]], None] | None = None) -> str:
    document = copy.deepcopy(MINIMAL)
    if change is not None:
        change(document)
    return json.dumps(document)


def test_minimal_value_set_loads() -> None:
    valueset = load_valueset(text_of())

    assert valueset.version == "1.0"
    assert valueset.assault.snomed["52684005"].category is InjuryCategory.OTHER
    assert valueset.assault_terms[0].strength is Strength.IMPLIED


def test_icd10_code_inside_a_narrow_range_takes_the_narrow_category() -> None:
    valueset = load_valueset(text_of())

    match = valueset.assault_code("icd10", "X99.2")

    assert match is not None
    assert match.rule == "icd10:X99.2"
    assert match.category is InjuryCategory.BLADED
    assert "X85-Y09" in match.description


def test_codes_outside_the_lists_do_not_match() -> None:
    valueset = load_valueset(text_of())

    assert valueset.assault_code("icd10", "X84") is None
    assert valueset.assault_code("icd10", "Y10") is None
    assert valueset.assault_code("icd10", "not a code") is None
    assert valueset.assault_code("snomed", "276853009") is None
    assert valueset.self_harm_code("snomed", "276853009") is not None


def test_every_bundled_file_loads_and_is_named_after_its_version() -> None:
    folder = resources.files("referral_gateway").joinpath("valuesets")
    files = [entry for entry in folder.iterdir() if entry.name.endswith(".json")]

    assert files
    for entry in files:
        valueset = load_valueset(entry.read_text(encoding="utf-8"), source=entry.name)
        assert entry.name == f"assault-{valueset.version}.json"
    assert len(bundled_valuesets().versions) == len(files)


def test_bundled_value_set_holds_the_codes_seen_in_practice() -> None:
    valueset = bundled_valuesets().get("2026.1")

    for code in ("52684005", "283545005", "262574004", "425322008"):
        assert valueset.assault_code("snomed", code) is not None, code
    for code in ("X85", "X93", "X94", "X95", "X99", "Y05", "Y09", "T74.2"):
        assert valueset.assault_code("icd10", code) is not None, code
    assert valueset.self_harm_code("snomed", "276853009") is not None
    assert valueset.self_harm_code("icd10", "X60") is not None
    assert valueset.self_harm_code("icd10", "X84") is not None


def test_a_context_section_is_optional_and_read_when_given() -> None:
    assert load_valueset(text_of()).context is None

    with_context = load_valueset(text_of(_set(_context(), "text", "context")))

    assert with_context.context is not None
    assert [cue.id for cue in with_context.context.cues] == ["c"]


def test_bundled_value_set_records_what_is_uncertain() -> None:
    valueset = bundled_valuesets().latest

    assert valueset.sources
    assert any("UNVERIFIED" in note for note in valueset.notes)


def test_not_json_is_a_clear_error() -> None:
    with pytest.raises(ValueSetError, match=r"assault-9\.json: not valid JSON \(line 1"):
        load_valueset("{nope", source="assault-9.json")


def _drop(*path: str | int) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        node: Any = document
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return change


def _set(value: Any, *path: str | int) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        node: Any = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def _context(**cue: str) -> dict[str, Any]:
    return {
        "window_words": 4,
        "sentence_terminators": ["[.;]"],
        "pseudo": [],
        "cues": [{"id": "c", "kind": "sport", "direction": "both", "pattern": "rugby", **cue}],
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set([], "assault"), "assault: expected an object"),
        (_drop("version"), "version: missing"),
        (_set("x", "colour"), "colour: unknown key"),
        (_set(2, "format"), "format: expected 1"),
        (_set(True, "format"), "format: expected 1"),
        (_set("v1", "version"), "version: 'v1' is not digits and dots"),
        (_set("", "description"), "description: expected a non-empty string"),
        (
            _set("knife", "assault", "snomed", 0, "category"),
            "assault.snomed[0].category: 'knife' is not one of",
        ),
        (
            _set("maybe", "assault", "icd10", 1, "strength"),
            "assault.icd10[1].strength: 'maybe' is not one of",
        ),
        (_drop("assault", "snomed", 0, "strength"), "assault.snomed[0].strength: missing"),
        (
            _set("5268400X", "assault", "snomed", 0, "code"),
            "assault.snomed[0].code: '5268400X' is not a SNOMED CT",
        ),
        (
            _set(52684005, "assault", "snomed", 0, "code"),
            "assault.snomed[0].code: 52684005 is not a SNOMED CT",
        ),
        (
            _set("XX5", "assault", "icd10", 0, "from"),
            "assault.icd10[0].from: 'XX5' is not an ICD-10 code",
        ),
        (_set("X80", "assault", "icd10", 0, "to"), "assault.icd10[0]: from X85 sorts after to X80"),
        (_drop("assault", "icd10", 0, "to"), "assault.icd10[0].to: missing"),
        (
            _set("X86", "assault", "icd10", 0, "code"),
            "assault.icd10[0]: give either code or from/to",
        ),
        (_set({"snomed": [], "icd10": []}, "assault"), "assault: no assault codes at all"),
        (
            _set("([a-z", "text", "assault", 0, "pattern"),
            "text.assault[0].pattern: invalid regular expression",
        ),
        (
            _set("a*", "text", "assault", 0, "pattern"),
            "text.assault[0].pattern: pattern matches empty text",
        ),
        (_set("Stabbed!", "text", "assault", 0, "id"), "text.assault[0].id: 'Stabbed!' must be"),
        (
            _set(["(unclosed"], "text", "assault", 0, "exclude"),
            "text.assault[0].exclude[0]: invalid regular",
        ),
        (
            _set(50, "text", "negation", "window_words"),
            "text.negation.window_words: expected a whole number",
        ),
        (_set([], "text", "negation", "terminators"), "text.negation.terminators: at least one"),
        (_drop("text", "negation"), "text.negation: missing"),
        (_set("nope", "self_harm", "snomed", 0, "code"), "self_harm.snomed[0].code: 'nope'"),
        (_set([1, 2], "sources"), "sources[0]: expected a non-empty string"),
        (
            _set("maybe", "text", "assault", 0, "certainty"),
            "text.assault[0].certainty: expected definite or possible",
        ),
        (
            _set(_context(kind="family"), "text", "context"),
            "text.context.cues[0].kind: 'family' is not one of",
        ),
        (
            _set(_context(direction="forward"), "text", "context"),
            "text.context.cues[0].direction: 'forward' is not one of",
        ),
        (
            _set(_context(scope="paragraph"), "text", "context"),
            "text.context.cues[0].scope: expected clause or sentence",
        ),
        (
            _set(_context(pattern="(?:"), "text", "context"),
            "text.context.cues[0].pattern: invalid regular expression",
        ),
    ],
)
def test_bad_value_set_is_a_clear_error_naming_the_key(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    text = text_of(change)
    with pytest.raises(ValueSetError) as error:
        load_valueset(text, source="test.json")

    assert str(error.value).startswith(f"test.json: {message}")


def test_duplicate_code_is_refused() -> None:
    def twice(document: dict[str, Any]) -> None:
        document["assault"]["snomed"].append(dict(document["assault"]["snomed"][0]))

    with pytest.raises(
        ValueSetError, match=r"assault\.snomed\[1\]\.code: 52684005 is listed twice"
    ):
        load_valueset(text_of(twice))


def test_duplicate_term_id_is_refused() -> None:
    def twice(document: dict[str, Any]) -> None:
        document["text"]["assault"].append(dict(document["text"]["assault"][0]))

    with pytest.raises(ValueSetError, match=r"text\.assault\[1\]\.id: 'stabbed' is listed twice"):
        load_valueset(text_of(twice))


# --- the library ----------------------------------------------------------------------------


def a_valueset(version: str) -> ValueSet:
    return load_valueset(text_of(_set(version, "version")))


def test_library_gives_the_latest_version_when_none_is_pinned() -> None:
    library = ValueSetLibrary([a_valueset("2026.9"), a_valueset("2026.10"), a_valueset("2025.3")])

    assert library.get(None).version == "2026.10"
    assert library.get("2025.3").version == "2025.3"
    assert library.versions == ("2025.3", "2026.9", "2026.10")


def test_site_variant_is_never_the_latest() -> None:
    library = ValueSetLibrary([a_valueset("2026.1"), a_valueset("2026.1+rxx")])

    assert library.latest.version == "2026.1"
    assert library.get("2026.1+rxx").version == "2026.1+rxx"
    assert "2026.1+rxx" in library


def test_unknown_version_is_a_clear_error() -> None:
    library = ValueSetLibrary([a_valueset("2026.1")])

    with pytest.raises(
        ValueSetError, match=r"unknown value-set version '2099\.1' \(known: 2026\.1\)"
    ):
        library.get("2099.1")


def test_library_refuses_a_version_defined_twice() -> None:
    with pytest.raises(ValueSetError, match="defined twice"):
        ValueSetLibrary([a_valueset("2026.1"), a_valueset("2026.1")])


def test_library_refuses_to_be_empty() -> None:
    with pytest.raises(ValueSetError, match="no value sets"):
        ValueSetLibrary([])


# --- coding systems and ICD-10 codes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "short"),
    [
        ("snomed", "snomed"),
        ("SCT", "snomed"),
        ("SNOMED", "snomed"),
        ("SNOMEDCT", "snomed"),
        ("SNOMED-CT", "snomed"),
        ("SNOMED CT", "snomed"),
        ("http://snomed.info/sct", "snomed"),
        ("http://snomed.info/sct/", "snomed"),
        ("http://snomed.info/sct/999000011000000103/version/20250101", "snomed"),
        ("urn:oid:2.16.840.1.113883.6.96", "snomed"),
        ("icd10", "icd10"),
        ("I10", "icd10"),
        ("ICD10", "icd10"),
        ("ICD-10", "icd10"),
        ("ICD-10-UK", "icd10"),
        ("http://hl7.org/fhir/sid/icd-10", "icd10"),
        ("http://hl7.org/fhir/sid/icd-10-uk", "icd10"),
        (" i10 ", "icd10"),
        ("ecds", "ecds"),
        ("ECDS", "ecds"),
        ("https://fhir.hl7.org.uk/CodeSystem/UKCore-ECDSInjuryIntent", "ecds"),
        ("https://fhir.nhs.uk/CodeSystem/Emergency-Care-Injury-Intent", "ecds"),
        ("I9CDX", "i9cdx"),
        ("LOCAL", "local"),
        ("", ""),
        (None, ""),
    ],
)
def test_sender_coding_system_names_are_normalised(raw: str | None, short: str) -> None:
    assert normalise_coding_system(raw) == short


@pytest.mark.parametrize(
    ("raw", "compact"),
    [
        ("X99", "X99"),
        ("X99.0", "X990"),
        ("x990", "X990"),
        ("T74.2", "T742"),
        (" Y09.9 ", "Y099"),
        ("X99-", "X99"),
        ("99X", None),
        ("X9", None),
        ("", None),
    ],
)
def test_icd10_codes_are_normalised_without_the_dot(raw: str, compact: str | None) -> None:
    assert normalise_icd10(raw) == compact
