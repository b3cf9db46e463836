"""Value sets: the codes and phrases that say "assault" (or "self-harm"), as versioned data.

A value set is a JSON file under `referral_gateway/valuesets/`, named
`assault-<version>.json`. Each file is complete on its own: a detection records the version
it used, and that version alone explains the decision. To change what counts, copy the
latest file, bump `version`, edit, and ship the new file; old versions stay for sites that
pin them and for explaining old decisions.

File layout (format 1)::

    {
      "format": 1,
      "version": "2026.1",                 # digits and dots; "+local-name" for site variants
      "description": "...",
      "sources": ["where the codes came from"],
      "notes": ["anything uncertain"],
      "assault": {                         # codes that are an assault signal
        "snomed":      [{"code", "display", "category", "strength", "note"?}],
        "icd10":       [{"from", "to" | "code", "display", "category", "strength", "note"?}],
        "ecds_intent": [{"code", "display", "category", "strength", "note"?}]
      },
      "self_harm": {                       # codes that say the injury was self-inflicted
        "snomed": [{"code", "display"}], "icd10": [{"from", "to" | "code", "display"}],
        "ecds_intent": [{"code", "display"}]
      },
      "text": {
        "assault":   [{"id", "label", "pattern", "category", "strength", "exclude"?, "note"?}],
        "self_harm": [{"id", "label", "pattern", "exclude"?, "note"?}],
        "negation":  {"window_words", "before": [{"id", "pattern"}], "after": [{"id", "pattern"}],
                      "pseudo": [pattern], "terminators": [pattern]},
        "context":   {"window_words", "sentence_terminators": [pattern],
                      "pseudo": [{"kind", "pattern"}],
                      "cues": [{"id", "kind", "direction", "pattern", "scope"?,
                                "window_words"?, "note"?}]}          # optional (2026.2 on)
      }
    }

A term may say `"certainty": "possible"` when the phrase itself is a suspicion ("injuries not
consistent with the history").

Context (ConText-style, optional): a cue of kind `uncertain` makes a phrase a *possible*
assault signal; cues of kind `experiencer` (someone else was hurt), `historical`,
`accidental`, `animal` and `sport` set the phrase aside. A cue applies to a phrase when it lies
`before` it, `after` it (or `both`), within the cue's window of words, and no terminator
lies between the two: the negation terminators for `"scope": "clause"` (the default), only
the `sentence_terminators` for `"scope": "sentence"`. A cue inside a context `pseudo` match
of its kind is not a cue ("boyfriend hit her": a relative as the attacker, not the one hurt).

`strength` is "explicit" when the signal says another person caused the injury (an
assault code, "assaulted", "punched") and "implied" when it names a mechanism that is
usually but not necessarily an assault (stab wound, gunshot wound). Detection discounts
implied signals when the attendance also carries a self-harm signal.

Patterns are Python regular expressions matched case-insensitively. A term's `exclude`
patterns remove an occurrence when an exclude match covers it (e.g. "kicked by a horse").
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from referral_gateway.domain.errors import ValueSetError

FORMAT = 1
VALUESET_PACKAGE = "referral_gateway"
VALUESET_DIR = "valuesets"
VALUESET_PREFIX = "assault-"


class InjuryCategory(enum.StrEnum):
    """Injury categories of the programme's monthly report."""

    BODY_PART = "body_part"  # punched, kicked, head-butted: bodily force
    BLADED = "bladed"  # knife, sharp object, glass
    FIREARM = "firearm"
    SEXUAL = "sexual"
    EXPLOITATION = "exploitation"  # county lines, criminal or sexual exploitation
    OTHER = "other"  # assault with no more specific mechanism


# When an attendance carries signals of several categories, the first of these wins.
# Sexual assault first (it changes the pathway: SARC referral, specialist support), then
# weapons by severity, then exploitation (context rather than mechanism), then bodily
# force, and "other" last because it says least.
CATEGORY_PRECEDENCE: tuple[InjuryCategory, ...] = (
    InjuryCategory.SEXUAL,
    InjuryCategory.FIREARM,
    InjuryCategory.BLADED,
    InjuryCategory.EXPLOITATION,
    InjuryCategory.BODY_PART,
    InjuryCategory.OTHER,
)


def most_specific(categories: Iterable[InjuryCategory]) -> InjuryCategory | None:
    present = set(categories)
    return next((c for c in CATEGORY_PRECEDENCE if c in present), None)


class Strength(enum.StrEnum):
    EXPLICIT = "explicit"  # says another person caused it
    IMPLIED = "implied"  # a mechanism that is usually, not always, an assault


# --- coding systems ------------------------------------------------------------------------

SNOMED = "snomed"
ICD10 = "icd10"
ECDS = "ecds"

_SNOMED_NAMES = frozenset(
    {
        "snomed",
        "sct",
        "snomedct",
        "snomed-ct",
        "snomed ct",
        "snomed_ct",
        "snomed-ct-uk",
        "snomedctuk",
        "http://snomed.info/sct",
        "https://snomed.info/sct",
        "2.16.840.1.113883.6.96",
        "urn:oid:2.16.840.1.113883.6.96",
    }
)
_ICD10_NAMES = frozenset(
    {
        "icd10",
        "icd-10",
        "icd 10",
        "icd_10",
        "i10",
        "icd10uk",
        "icd-10-uk",
        "icd10-uk",
        "icd10cm",
        "icd-10-cm",
        "i10c",
        "http://hl7.org/fhir/sid/icd-10",
        "http://hl7.org/fhir/sid/icd-10-uk",
        "http://hl7.org/fhir/sid/icd-10-cm",
        "https://fhir.hl7.org.uk/id/icd-10",
        "http://id.who.int/icd/release/10",
        "2.16.840.1.113883.6.3",
        "urn:oid:2.16.840.1.113883.6.3",
        "2.16.840.1.113883.6.90",
        "urn:oid:2.16.840.1.113883.6.90",
    }
)
_ECDS_HINTS = ("ecds", "emergencycare", "emergency-care", "emergency_care")


def normalise_coding_system(raw: str | None) -> str:
    """The short name ("snomed", "icd10", "ecds") for a coding system as senders write it.

    Handles HL7 v2 table 0396 names ("SCT", "I10"), spelled-out names ("SNOMED CT",
    "ICD-10"), FHIR URIs (http://snomed.info/sct, http://hl7.org/fhir/sid/icd-10, with
    or without a trailing slash or version path), OIDs, and any URI or name mentioning
    ECDS / emergency care. ICD-10-CM is read as ICD-10: its assault (X92-Y09) and
    self-harm (X71-X83) blocks fall inside the WHO ranges. Anything else comes back
    stripped and lower-cased, so unknown systems stay distinguishable but never match.
    """
    if raw is None:
        return ""
    name = raw.strip().lower()
    trimmed = name.rstrip("/")
    if name in _SNOMED_NAMES or trimmed.startswith(
        ("http://snomed.info/sct", "https://snomed.info/sct")
    ):
        return SNOMED
    if name in _ICD10_NAMES or trimmed in _ICD10_NAMES:
        return ICD10
    if any(hint in name.replace(" ", "") for hint in _ECDS_HINTS):
        return ECDS
    return name


_ICD10_CODE = re.compile(r"^[A-Z][0-9]{2}[0-9A-Z]{0,4}$")
_SNOMED_ID = re.compile(r"^[1-9][0-9]{5,17}$")


def normalise_icd10(code: str) -> str | None:
    """ICD-10 code without dot, spaces or trailing dashes, upper-cased; None if not one.

    "X99.0", "x990", "X99-" and "T74.2" become "X990", "X990", "X99" and "T742".
    """
    compact = code.strip().upper().replace(".", "").replace(" ", "").rstrip("-")
    return compact if _ICD10_CODE.match(compact) else None


def display_icd10(compact: str) -> str:
    return compact if len(compact) <= 3 else f"{compact[:3]}.{compact[3:]}"


# --- the value set -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeEntry:
    code: str
    display: str
    category: InjuryCategory | None = None  # None in self-harm lists
    strength: Strength | None = None


@dataclass(frozen=True, slots=True)
class Icd10Range:
    """Inclusive range of ICD-10 codes compared on their leading characters.

    X85-Y09 holds every code whose first three characters sort between X85 and Y09, with
    any fourth or fifth character; T74.2-T74.2 holds T74.2 and its subdivisions only.
    """

    first: str  # normalised, no dot
    last: str
    display: str
    category: InjuryCategory | None = None
    strength: Strength | None = None

    def contains(self, compact: str) -> bool:
        return compact[: len(self.first)] >= self.first and compact[: len(self.last)] <= self.last

    @property
    def label(self) -> str:
        first, last = display_icd10(self.first), display_icd10(self.last)
        return first if first == last else f"{first}-{last}"


@dataclass(frozen=True, slots=True)
class CodeLists:
    snomed: Mapping[str, CodeEntry]
    icd10: tuple[Icd10Range, ...]
    ecds_intent: Mapping[str, CodeEntry]


@dataclass(frozen=True, slots=True)
class TextTerm:
    """A phrase in free text. `label` is what a reason may show: never the patient's words."""

    id: str
    label: str
    pattern: re.Pattern[str]
    excludes: tuple[re.Pattern[str], ...] = ()
    category: InjuryCategory | None = None  # None for self-harm terms
    strength: Strength | None = None
    possible: bool = False  # the phrase is itself a suspicion


@dataclass(frozen=True, slots=True)
class NegationCue:
    id: str
    pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class NegationRules:
    """NegEx-style negation: a cue within `window_words` words of a term, in the same clause.

    `before` cues precede the term ("denies assault"), `after` cues follow it ("assault
    denied"). A cue inside a `pseudo` match is not a cue ("not ruled out"). `terminators`
    end a clause ("no LOC after assault": "after" ends the scope of "no").
    """

    window_words: int
    before: tuple[NegationCue, ...]
    after: tuple[NegationCue, ...]
    pseudo: tuple[re.Pattern[str], ...]
    terminators: re.Pattern[str]


class ContextKind(enum.StrEnum):
    UNCERTAIN = "uncertain"  # a suspicion: the signal counts as a possible assault
    EXPERIENCER = "experiencer"  # someone else was hurt
    HISTORICAL = "historical"  # an old event, not this attendance's
    ACCIDENTAL = "accidental"
    ANIMAL = "animal"
    SPORT = "sport"


class Direction(enum.StrEnum):
    BEFORE = "before"  # the cue precedes the phrase
    AFTER = "after"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class ContextCue:
    id: str
    kind: ContextKind
    direction: Direction
    pattern: re.Pattern[str]
    sentence_scope: bool  # only sentence terminators end its reach
    window_words: int


@dataclass(frozen=True, slots=True)
class ContextRules:
    cues: tuple[ContextCue, ...]
    pseudo: tuple[tuple[ContextKind, re.Pattern[str]], ...]  # cues of the kind inside are none
    sentence_terminators: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class CodeMatch:
    rule: str  # e.g. "snomed:425322008", "icd10:X99", "ecds_intent:52684005"
    description: str
    category: InjuryCategory | None
    strength: Strength | None


@dataclass(frozen=True, slots=True, eq=False)
class ValueSet:
    version: str
    description: str
    sources: tuple[str, ...]
    notes: tuple[str, ...]
    assault: CodeLists
    self_harm: CodeLists
    assault_terms: tuple[TextTerm, ...]
    self_harm_terms: tuple[TextTerm, ...]
    negation: NegationRules
    context: ContextRules | None = None  # None: negation only (value sets before 2026.2)

    def __repr__(self) -> str:
        return f"ValueSet(version={self.version!r})"

    def assault_code(self, system: str, code: str) -> CodeMatch | None:
        """The assault signal a coded reason or diagnosis carries, if any."""
        return _match(self.assault, system, code, "assault")

    def self_harm_code(self, system: str, code: str) -> CodeMatch | None:
        """The self-harm signal a coded reason or diagnosis carries, if any."""
        return _match(self.self_harm, system, code, "self-harm")


def _match(lists: CodeLists, system: str, code: str, meaning: str) -> CodeMatch | None:
    short = normalise_coding_system(system)
    code = code.strip()
    if short == ICD10:
        return _match_icd10(lists.icd10, code, meaning)
    if short == SNOMED:
        return _match_concept(lists.snomed, code, "snomed", "SNOMED CT", meaning) or (
            _match_concept(lists.ecds_intent, code, "ecds_intent", "ECDS injury intent", meaning)
        )
    if short == ECDS:
        # ECDS fields carry SNOMED CT concepts: try the intent list, then plain SNOMED.
        return _match_concept(
            lists.ecds_intent, code, "ecds_intent", "ECDS injury intent", meaning
        ) or _match_concept(lists.snomed, code, "snomed", "SNOMED CT", meaning)
    return None


def _match_concept(
    table: Mapping[str, CodeEntry], code: str, prefix: str, system_label: str, meaning: str
) -> CodeMatch | None:
    entry = table.get(code)
    if entry is None:
        return None
    return CodeMatch(
        rule=f"{prefix}:{entry.code}",
        description=f"{system_label} {entry.code} {entry.display} ({meaning} code)",
        category=entry.category,
        strength=entry.strength,
    )


def _match_icd10(ranges: Sequence[Icd10Range], code: str, meaning: str) -> CodeMatch | None:
    compact = normalise_icd10(code)
    if compact is None:
        return None
    hits = [r for r in ranges if r.contains(compact)]
    if not hits:
        return None
    categories = [r.category for r in hits if r.category is not None]
    strengths = {r.strength for r in hits}
    shown = display_icd10(compact)
    within = "; ".join(f"{r.label} {r.display}" for r in hits)
    return CodeMatch(
        rule=f"icd10:{shown}",
        description=f"ICD-10 {shown} in {within} ({meaning} code)",
        category=most_specific(categories),
        strength=(
            Strength.EXPLICIT
            if Strength.EXPLICIT in strengths
            else (Strength.IMPLIED if Strength.IMPLIED in strengths else None)
        ),
    )


# --- loading and validation ----------------------------------------------------------------

_VERSION = re.compile(r"^[0-9]+(?:\.[0-9]+)*(?:\+[a-z0-9][a-z0-9-]*)?$")
_TERM_ID = re.compile(r"^[a-z0-9][a-z0-9_]*$")


def load_valueset(text: str, *, source: str = "value set") -> ValueSet:
    """Parse and validate a value-set JSON document. Raises ValueSetError naming the key."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueSetError(
            f"{source}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})"
        ) from None
    return _Reader(source).valueset(data)


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> ValueSetError:
        return ValueSetError(f"{self.source}: {where}: {problem}")

    def table(
        self, value: Any, where: str, required: set[str], optional: set[str]
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where or "top level", "expected an object")
        missing = sorted(required - set(value))
        if missing:
            raise self.fail(_join(where, missing[0]), "missing")
        unknown = sorted(set(value) - required - optional)
        if unknown:
            raise self.fail(_join(where, unknown[0]), "unknown key")
        return value

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, "expected a non-empty string")
        return value.strip()

    def strings(self, value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(where, "expected a list of strings")
        return tuple(self.string(item, f"{where}[{i}]") for i, item in enumerate(value))

    def items(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, "expected a list")
        return value

    def enum_value(self, enum_type: type[enum.StrEnum], value: Any, where: str) -> Any:
        allowed = ", ".join(member.value for member in enum_type)
        if not isinstance(value, str):
            raise self.fail(where, f"expected one of {allowed}")
        try:
            return enum_type(value)
        except ValueError:
            raise self.fail(where, f"{value!r} is not one of {allowed}") from None

    def regex(self, value: Any, where: str) -> re.Pattern[str]:
        text = self.string(value, where)
        try:
            pattern = re.compile(text, re.IGNORECASE)
        except re.error as exc:
            raise self.fail(where, f"invalid regular expression ({exc})") from None
        if pattern.fullmatch(""):
            raise self.fail(where, "pattern matches empty text")
        return pattern

    # -- the document --

    def valueset(self, data: Any) -> ValueSet:
        top = self.table(
            data,
            "",
            {"format", "version", "description", "sources", "assault", "self_harm", "text"},
            {"notes"},
        )
        if top["format"] != FORMAT or isinstance(top["format"], bool):
            raise self.fail("format", f"expected {FORMAT}, got {top['format']!r}")
        version = self.string(top["version"], "version")
        if not _VERSION.match(version):
            raise self.fail(
                "version", f"{version!r} is not digits and dots with an optional +local-name"
            )
        text = self.table(top["text"], "text", {"assault", "self_harm", "negation"}, {"context"})
        assault = self.code_lists(top["assault"], "assault", classified=True)
        if not (assault.snomed or assault.icd10 or assault.ecds_intent):
            raise self.fail("assault", "no assault codes at all")
        return ValueSet(
            version=version,
            description=self.string(top["description"], "description"),
            sources=self.strings(top["sources"], "sources"),
            notes=self.strings(top.get("notes", []), "notes"),
            assault=assault,
            self_harm=self.code_lists(top["self_harm"], "self_harm", classified=False),
            assault_terms=self.terms(text["assault"], "text.assault", classified=True),
            self_harm_terms=self.terms(text["self_harm"], "text.self_harm", classified=False),
            negation=self.negation(text["negation"], "text.negation"),
            context=self.context(text["context"], "text.context") if "context" in text else None,
        )

    def code_lists(self, value: Any, where: str, *, classified: bool) -> CodeLists:
        lists = self.table(value, where, set(), {"snomed", "icd10", "ecds_intent"})
        return CodeLists(
            snomed=self.concepts(lists.get("snomed", []), f"{where}.snomed", classified),
            icd10=tuple(
                self.icd10_range(item, f"{where}.icd10[{i}]", classified)
                for i, item in enumerate(self.items(lists.get("icd10", []), f"{where}.icd10"))
            ),
            ecds_intent=self.concepts(
                lists.get("ecds_intent", []), f"{where}.ecds_intent", classified
            ),
        )

    def classification(
        self, entry: dict[str, Any], where: str, classified: bool
    ) -> tuple[InjuryCategory | None, Strength | None]:
        if not classified:
            return None, None
        return (
            self.enum_value(InjuryCategory, entry["category"], f"{where}.category"),
            self.enum_value(Strength, entry["strength"], f"{where}.strength"),
        )

    def concepts(self, value: Any, where: str, classified: bool) -> dict[str, CodeEntry]:
        required = {"code", "display"} | ({"category", "strength"} if classified else set())
        table: dict[str, CodeEntry] = {}
        for i, item in enumerate(self.items(value, where)):
            here = f"{where}[{i}]"
            entry = self.table(item, here, required, {"note"})
            code = entry["code"]
            if not isinstance(code, str) or not _SNOMED_ID.match(code):
                raise self.fail(f"{here}.code", f"{code!r} is not a SNOMED CT concept id")
            if code in table:
                raise self.fail(f"{here}.code", f"{code} is listed twice")
            category, strength = self.classification(entry, here, classified)
            table[code] = CodeEntry(
                code=code,
                display=self.string(entry["display"], f"{here}.display"),
                category=category,
                strength=strength,
            )
        return table

    def icd10_range(self, value: Any, where: str, classified: bool) -> Icd10Range:
        required = {"display"} | ({"category", "strength"} if classified else set())
        entry = self.table(value, where, required, {"code", "from", "to", "note"})
        if "code" in entry:
            if "from" in entry or "to" in entry:
                raise self.fail(where, "give either code or from/to, not both")
            first = last = self.icd10_code(entry["code"], f"{where}.code")
        elif "from" in entry and "to" in entry:
            first = self.icd10_code(entry["from"], f"{where}.from")
            last = self.icd10_code(entry["to"], f"{where}.to")
            if first[: len(last)] > last:
                raise self.fail(where, f"from {entry['from']} sorts after to {entry['to']}")
        elif "from" in entry:
            raise self.fail(f"{where}.to", "missing")
        elif "to" in entry:
            raise self.fail(f"{where}.from", "missing")
        else:
            raise self.fail(where, "needs code, or from and to")
        category, strength = self.classification(entry, where, classified)
        return Icd10Range(
            first=first,
            last=last,
            display=self.string(entry["display"], f"{where}.display"),
            category=category,
            strength=strength,
        )

    def icd10_code(self, value: Any, where: str) -> str:
        compact = normalise_icd10(value) if isinstance(value, str) else None
        if compact is None:
            raise self.fail(where, f"{value!r} is not an ICD-10 code")
        return compact

    def terms(self, value: Any, where: str, *, classified: bool) -> tuple[TextTerm, ...]:
        required = {"id", "label", "pattern"} | ({"category", "strength"} if classified else set())
        terms: list[TextTerm] = []
        seen: set[str] = set()
        for i, item in enumerate(self.items(value, where)):
            here = f"{where}[{i}]"
            entry = self.table(item, here, required, {"exclude", "note", "certainty"})
            term_id = self.string(entry["id"], f"{here}.id")
            certainty = entry.get("certainty", "definite")
            if certainty not in ("definite", "possible"):
                raise self.fail(f"{here}.certainty", "expected definite or possible")
            if not _TERM_ID.match(term_id):
                raise self.fail(f"{here}.id", f"{term_id!r} must be lower-case letters, digits, _")
            if term_id in seen:
                raise self.fail(f"{here}.id", f"{term_id!r} is listed twice")
            seen.add(term_id)
            category, strength = self.classification(entry, here, classified)
            terms.append(
                TextTerm(
                    id=term_id,
                    label=self.string(entry["label"], f"{here}.label"),
                    pattern=self.regex(entry["pattern"], f"{here}.pattern"),
                    excludes=tuple(
                        self.regex(p, f"{here}.exclude[{j}]")
                        for j, p in enumerate(
                            self.items(entry.get("exclude", []), f"{here}.exclude")
                        )
                    ),
                    category=category,
                    strength=strength,
                    possible=certainty == "possible",
                )
            )
        return tuple(terms)

    def negation(self, value: Any, where: str) -> NegationRules:
        entry = self.table(
            value, where, {"window_words", "before", "after", "pseudo", "terminators"}, set()
        )
        window = entry["window_words"]
        if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= 20:
            raise self.fail(f"{where}.window_words", "expected a whole number from 0 to 20")
        terminators = [
            self.regex(p, f"{where}.terminators[{i}]")
            for i, p in enumerate(self.items(entry["terminators"], f"{where}.terminators"))
        ]
        if not terminators:
            raise self.fail(f"{where}.terminators", "at least one terminator is needed")
        return NegationRules(
            window_words=window,
            before=self.cues(entry["before"], f"{where}.before"),
            after=self.cues(entry["after"], f"{where}.after"),
            pseudo=tuple(
                self.regex(p, f"{where}.pseudo[{i}]")
                for i, p in enumerate(self.items(entry["pseudo"], f"{where}.pseudo"))
            ),
            terminators=re.compile(
                "|".join(f"(?:{p.pattern})" for p in terminators), re.IGNORECASE
            ),
        )

    def patterns(self, value: Any, where: str) -> tuple[re.Pattern[str], ...]:
        return tuple(self.regex(p, f"{where}[{i}]") for i, p in enumerate(self.items(value, where)))

    def window(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20:
            raise self.fail(where, "expected a whole number from 0 to 20")
        return value

    def context(self, value: Any, where: str) -> ContextRules:
        entry = self.table(
            value, where, {"window_words", "sentence_terminators", "pseudo", "cues"}, set()
        )
        window = self.window(entry["window_words"], f"{where}.window_words")
        stops = self.patterns(entry["sentence_terminators"], f"{where}.sentence_terminators")
        if not stops:
            raise self.fail(f"{where}.sentence_terminators", "at least one terminator is needed")
        cues = []
        seen: set[str] = set()
        for i, item in enumerate(self.items(entry["cues"], f"{where}.cues")):
            here = f"{where}.cues[{i}]"
            cue = self.table(
                item,
                here,
                {"id", "kind", "direction", "pattern"},
                {"scope", "window_words", "note"},
            )
            cue_id = self.string(cue["id"], f"{here}.id")
            if cue_id in seen:
                raise self.fail(f"{here}.id", f"{cue_id!r} is listed twice")
            seen.add(cue_id)
            scope = cue.get("scope", "clause")
            if scope not in ("clause", "sentence"):
                raise self.fail(f"{here}.scope", "expected clause or sentence")
            cues.append(
                ContextCue(
                    id=cue_id,
                    kind=self.enum_value(ContextKind, cue["kind"], f"{here}.kind"),
                    direction=self.enum_value(Direction, cue["direction"], f"{here}.direction"),
                    pattern=self.regex(cue["pattern"], f"{here}.pattern"),
                    sentence_scope=scope == "sentence",
                    window_words=self.window(
                        cue.get("window_words", window), f"{here}.window_words"
                    ),
                )
            )
        pseudo = []
        for i, item in enumerate(self.items(entry["pseudo"], f"{where}.pseudo")):
            here = f"{where}.pseudo[{i}]"
            fake = self.table(item, here, {"kind", "pattern"}, {"note"})
            pseudo.append(
                (
                    self.enum_value(ContextKind, fake["kind"], f"{here}.kind"),
                    self.regex(fake["pattern"], f"{here}.pattern"),
                )
            )
        return ContextRules(
            cues=tuple(cues),
            pseudo=tuple(pseudo),
            sentence_terminators=re.compile(
                "|".join(f"(?:{p.pattern})" for p in stops), re.IGNORECASE
            ),
        )

    def cues(self, value: Any, where: str) -> tuple[NegationCue, ...]:
        cues = []
        for i, item in enumerate(self.items(value, where)):
            here = f"{where}[{i}]"
            entry = self.table(item, here, {"id", "pattern"}, {"note"})
            cues.append(
                NegationCue(
                    id=self.string(entry["id"], f"{here}.id"),
                    pattern=self.regex(entry["pattern"], f"{here}.pattern"),
                )
            )
        return tuple(cues)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


# --- the library of versions ---------------------------------------------------------------


def _version_key(version: str) -> tuple[tuple[int, ...], str]:
    number, _, local = version.partition("+")
    return tuple(int(part) for part in number.split(".")), local


class ValueSetLibrary:
    """Every value-set version the gateway knows. `get(None)` is the latest.

    "Latest" is the highest version without a +local suffix: a site variant such as
    "2026.1+rxx" is used only by the sites that pin it.
    """

    def __init__(self, valuesets: Iterable[ValueSet]) -> None:
        by_version: dict[str, ValueSet] = {}
        for valueset in valuesets:
            if valueset.version in by_version:
                raise ValueSetError(f"value-set version {valueset.version} is defined twice")
            by_version[valueset.version] = valueset
        if not by_version:
            raise ValueSetError("no value sets: at least one version is needed")
        self._by_version = by_version
        general = [v for v in by_version if "+" not in v] or list(by_version)
        self._latest = by_version[max(general, key=_version_key)]

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_version, key=_version_key))

    @property
    def latest(self) -> ValueSet:
        return self._latest

    def get(self, version: str | None = None) -> ValueSet:
        if version is None:
            return self._latest
        try:
            return self._by_version[version]
        except KeyError:
            raise ValueSetError(
                f"unknown value-set version {version!r} (known: {', '.join(self.versions)})"
            ) from None

    def __contains__(self, version: object) -> bool:
        return version in self._by_version

    def __iter__(self) -> Iterator[ValueSet]:
        return iter(self._by_version[v] for v in self.versions)

    def __repr__(self) -> str:
        return f"ValueSetLibrary(versions={self.versions})"


def bundled_valuesets() -> ValueSetLibrary:
    """Every `assault-<version>.json` shipped in the `referral_gateway/valuesets/` package data."""
    folder = resources.files(VALUESET_PACKAGE).joinpath(VALUESET_DIR)
    loaded = []
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".json"):
            continue
        valueset = load_valueset(entry.read_text(encoding="utf-8"), source=entry.name)
        expected = f"{VALUESET_PREFIX}{valueset.version}.json"
        if entry.name != expected:
            raise ValueSetError(
                f"{entry.name}: holds version {valueset.version}, so it must be named {expected}"
            )
        loaded.append(valueset)
    return ValueSetLibrary(loaded)
