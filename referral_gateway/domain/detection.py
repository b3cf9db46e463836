"""Detection: is this attendance a candidate for a youth worker's approach?

An attendance is a candidate when every gate passes and an assault signal counts:

1. not cancelled                                    else "cancelled"
2. an emergency attendance                          else "not_emergency"
3. has an arrival time                              else "no_arrival_time"
4. has a date of birth                              else "no_birth_date"
5. the date of birth is not after arrival           else "implausible_birth_date"
6. age at arrival within the site's band            else "age_out_of_band"
7. an assault signal counts                         -> "assault_signal"
   otherwise, with a self-harm signal                -> "self_harm_only"
   otherwise                                         -> "no_assault_signal"

The first failing gate is the deciding `rule`. Signals are evaluated whatever the gates say,
so `reasons`, `injury_category` and `age_at_arrival` explain every decision.

Emergency: `is_emergency` True or patient class E / EMER (HL7 PV1-2, FHIR Encounter.class)
is an emergency attendance. When the message says nothing (no flag, class empty or "U"),
`SiteRules.assume_emergency_when_unknown` decides; it defaults to True because ED-only feeds
(syndromic feeds in particular) often leave PV1-2 empty.

Age: whole years on the arrival's local date in Europe/London (an aware arrival is
converted; a naive one is taken as London wall-clock time, the HL7 v2 convention). A
birthday on the day of arrival counts as the new age. Someone born on 29 February turns a
year older on 1 March in non-leap years, the usual reading in English law.

Signals come from codings (SNOMED CT, ICD-10, ECDS injury intent, as listed in the value
set) and from free text. Free text is the attendance's free-text fields plus the display
text of codings in systems the value set does not know (local codes); displays of SNOMED,
ICD-10 and ECDS codings are not scanned, because the code is authoritative and some
displays of accidental codes read like assaults (ICD-10 W50 "...kicked... by another
person"). A negated phrase ("denies assault", "no evidence of assault") does not count;
a suspected one ("?assault", "query assault", "alleged assault") does.

Self-harm is not assault. With a self-harm signal present, *implied* assault signals (a
stab wound, a gunshot wound, "stabbed", "shot": mechanisms that may be self-inflicted) are
discounted and the decision is "self_harm_only"; *explicit* assault signals (an assault
code, "assaulted", "punched") still make the attendance a candidate, and the self-harm
signal is kept in the reasons for the youth worker to see. A young person who was
assaulted and also self-harms is still someone the programme exists for.

Injury category: the most specific category among the counted assault signals, in the
order sexual, firearm, bladed, exploitation, body_part, other (see CATEGORY_PRECEDENCE).

Reasons never quote the patient's text: a text reason shows the value set's label for
the phrase ("stabbed"), not the words around it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from referral_gateway.domain.attendance import Attendance, AttendanceStatus
from referral_gateway.domain.sites import SiteRules
from referral_gateway.domain.valuesets import (
    ECDS,
    ICD10,
    SNOMED,
    CodeMatch,
    InjuryCategory,
    NegationRules,
    Strength,
    TextTerm,
    ValueSet,
    most_specific,
    normalise_coding_system,
)

__all__ = [
    "LONDON",
    "DecidingRule",
    "Detection",
    "DetectionReason",
    "InjuryCategory",
    "ReasonKind",
    "age_on",
    "detect",
    "local_arrival_date",
]

LONDON = ZoneInfo("Europe/London")


class DecidingRule(enum.StrEnum):
    ASSAULT_SIGNAL = "assault_signal"
    CANCELLED = "cancelled"
    NOT_EMERGENCY = "not_emergency"
    NO_ARRIVAL_TIME = "no_arrival_time"
    NO_BIRTH_DATE = "no_birth_date"
    IMPLAUSIBLE_BIRTH_DATE = "implausible_birth_date"
    AGE_OUT_OF_BAND = "age_out_of_band"
    SELF_HARM_ONLY = "self_harm_only"
    NO_ASSAULT_SIGNAL = "no_assault_signal"


class ReasonKind(enum.StrEnum):
    GATE = "gate"  # a gate the attendance failed
    ASSAULT = "assault"  # an assault signal that counts
    DISCOUNTED = "discounted"  # an implied assault signal set aside because of self-harm
    SELF_HARM = "self_harm"  # a self-harm signal
    NEGATED = "negated"  # a phrase that was found but negated or historical


@dataclass(frozen=True, slots=True)
class DetectionReason:
    """One piece of evidence. `rule` is e.g. "snomed:425322008", "icd10:X99", "text:stabbed",
    or a gate id such as "age_out_of_band"; `description` is for people and holds no
    patient text."""

    rule: str
    description: str
    kind: ReasonKind


@dataclass(frozen=True, slots=True)
class Detection:
    is_candidate: bool
    rule: DecidingRule
    reasons: tuple[DetectionReason, ...]
    injury_category: InjuryCategory | None
    age_at_arrival: int | None
    valueset_version: str

    def reasons_of(self, kind: ReasonKind) -> tuple[DetectionReason, ...]:
        return tuple(reason for reason in self.reasons if reason.kind is kind)


def age_on(birth_date: date, on: date) -> int:
    """Age in whole years on the date `on`. A birthday on `on` counts; 29 February birthdays
    are reached on 1 March in non-leap years. Raises ValueError if `on` precedes birth."""
    if on < birth_date:
        raise ValueError("date is before the date of birth")
    before_birthday = (on.month, on.day) < (birth_date.month, birth_date.day)
    return on.year - birth_date.year - (1 if before_birthday else 0)


def local_arrival_date(arrival: datetime) -> date:
    """The calendar date of `arrival` in Europe/London. Naive times are London wall-clock."""
    if arrival.tzinfo is None or arrival.utcoffset() is None:
        return arrival.date()
    return arrival.astimezone(LONDON).date()


def detect(attendance: Attendance, rules: SiteRules, valueset: ValueSet) -> Detection:
    signals = _find_signals(attendance, valueset)
    age, gate = _gates(attendance, rules)

    if signals.self_harm:
        counted = [s for s in signals.assault if s.strength is Strength.EXPLICIT]
        discounted = [s for s in signals.assault if s.strength is not Strength.EXPLICIT]
    else:
        counted, discounted = list(signals.assault), []

    if gate is not None:
        rule, is_candidate = gate.rule, False
    elif counted:
        rule, is_candidate = DecidingRule.ASSAULT_SIGNAL, True
    elif signals.self_harm:
        rule, is_candidate = DecidingRule.SELF_HARM_ONLY, False
    else:
        rule, is_candidate = DecidingRule.NO_ASSAULT_SIGNAL, False

    reasons: list[DetectionReason] = []
    if gate is not None:
        reasons.append(DetectionReason(gate.rule.value, gate.description, ReasonKind.GATE))
    reasons += [s.reason(ReasonKind.ASSAULT) for s in counted]
    reasons += [
        s.reason(ReasonKind.DISCOUNTED, " - discounted: self-harm is also recorded")
        for s in discounted
    ]
    reasons += [s.reason(ReasonKind.SELF_HARM) for s in signals.self_harm]
    reasons += [s.reason(ReasonKind.NEGATED) for s in signals.negated]

    return Detection(
        is_candidate=is_candidate,
        rule=rule,
        reasons=_unique(reasons),
        injury_category=most_specific(s.category for s in counted if s.category is not None),
        age_at_arrival=age,
        valueset_version=valueset.version,
    )


# --- gates ---------------------------------------------------------------------------------

_EMERGENCY_CLASSES = frozenset({"E", "EMER", "EMERGENCY"})
_UNKNOWN_CLASSES = frozenset({"", "U", "UNK", "UNKNOWN"})


@dataclass(frozen=True, slots=True)
class _Gate:
    rule: DecidingRule
    description: str


def _gates(attendance: Attendance, rules: SiteRules) -> tuple[int | None, _Gate | None]:
    age: int | None = None
    age_problem: _Gate | None = None
    birth = attendance.patient.birth_date
    if attendance.arrival is None:
        age_problem = _Gate(DecidingRule.NO_ARRIVAL_TIME, "no arrival time, so no age at arrival")
    elif birth is None:
        age_problem = _Gate(DecidingRule.NO_BIRTH_DATE, "no date of birth, so no age at arrival")
    else:
        arrival_day = local_arrival_date(attendance.arrival)
        if birth > arrival_day:
            age_problem = _Gate(
                DecidingRule.IMPLAUSIBLE_BIRTH_DATE, "the date of birth is after the arrival"
            )
        else:
            age = age_on(birth, arrival_day)
            if not rules.age_in_band(age):
                age_problem = _Gate(
                    DecidingRule.AGE_OUT_OF_BAND,
                    f"age {age} at arrival is outside the site's band "
                    f"{rules.min_age}-{rules.max_age}",
                )

    if attendance.status is AttendanceStatus.CANCELLED:
        return age, _Gate(DecidingRule.CANCELLED, "the attendance was cancelled")
    emergency = _emergency_gate(attendance, rules)
    if emergency is not None:
        return age, emergency
    return age, age_problem


def _emergency_gate(attendance: Attendance, rules: SiteRules) -> _Gate | None:
    patient_class = (attendance.patient_class or "").strip().upper()
    if attendance.is_emergency is True or patient_class in _EMERGENCY_CLASSES:
        return None
    if attendance.is_emergency is False:
        return _Gate(DecidingRule.NOT_EMERGENCY, "the sender marks this as not an emergency")
    if patient_class in _UNKNOWN_CLASSES:
        if rules.assume_emergency_when_unknown:
            return None
        return _Gate(
            DecidingRule.NOT_EMERGENCY,
            "patient class not given and this site does not assume emergency",
        )
    return _Gate(
        DecidingRule.NOT_EMERGENCY,
        f"patient class {patient_class[:8]!r} is not an emergency attendance",
    )


# --- signals -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Signal:
    rule: str
    description: str
    category: InjuryCategory | None = None
    strength: Strength | None = None

    def reason(self, kind: ReasonKind, suffix: str = "") -> DetectionReason:
        return DetectionReason(self.rule, self.description + suffix, kind)


@dataclass(slots=True)
class _Signals:
    assault: list[_Signal] = field(default_factory=list)
    self_harm: list[_Signal] = field(default_factory=list)
    negated: list[_Signal] = field(default_factory=list)


_KNOWN_SYSTEMS = frozenset({SNOMED, ICD10, ECDS})


def _find_signals(attendance: Attendance, valueset: ValueSet) -> _Signals:
    signals = _Signals()
    texts = list(attendance.free_text)
    for coding in attendance.codings:
        assault = valueset.assault_code(coding.system, coding.code)
        if assault is not None:
            signals.assault.append(_from_code(assault))
        self_harm = valueset.self_harm_code(coding.system, coding.code)
        if self_harm is not None:
            signals.self_harm.append(_from_code(self_harm))
        if normalise_coding_system(coding.system) not in _KNOWN_SYSTEMS and coding.display:
            texts.append(coding.display)

    scanned = [_ScannedText(text, valueset.negation) for text in texts]
    found_assault = _scan(scanned, valueset.assault_terms, valueset.negation)
    found_self_harm = _scan(scanned, valueset.self_harm_terms, valueset.negation)
    for term, cue in found_assault:
        if cue is None:
            signals.assault.append(
                _Signal(
                    f"text:{term.id}",
                    f"free text mentions {term.label!r} "
                    f"({_value(term.category)}, {_value(term.strength)})",
                    term.category,
                    term.strength,
                )
            )
        else:
            signals.negated.append(_negated(term, cue))
    for term, cue in found_self_harm:
        if cue is None:
            signals.self_harm.append(
                _Signal(f"text:{term.id}", f"free text mentions {term.label!r} (self-harm)")
            )
        else:
            signals.negated.append(_negated(term, cue))
    return signals


def _from_code(match: CodeMatch) -> _Signal:
    return _Signal(match.rule, match.description, match.category, match.strength)


def _negated(term: TextTerm, cue: str) -> _Signal:
    return _Signal(f"text:{term.id}", f"free text mentions {term.label!r} but negated ({cue})")


def _value(member: enum.StrEnum | None) -> str:
    return member.value if member is not None else "unclassified"


class _ScannedText:
    """A text with its pseudo-negation spans and clause boundaries worked out once."""

    __slots__ = ("pseudo", "stops", "text")

    def __init__(self, text: str, negation: NegationRules) -> None:
        self.text = text
        self.pseudo = [m.span() for p in negation.pseudo for m in p.finditer(text)]
        self.stops = [m.span() for m in negation.terminators.finditer(text)]

    def clause(self, start: int, end: int) -> tuple[int, int]:
        """Where the clause holding text[start:end] begins and ends."""
        clause_start, clause_end = 0, len(self.text)
        for stop_start, stop_end in self.stops:
            if stop_end <= start:
                clause_start = stop_end
            elif stop_start >= end:
                clause_end = stop_start
                break
        return clause_start, clause_end

    def in_pseudo(self, span: tuple[int, int]) -> bool:
        return any(s <= span[0] and span[1] <= e for s, e in self.pseudo)


def _scan(
    texts: list[_ScannedText], terms: tuple[TextTerm, ...], negation: NegationRules
) -> list[tuple[TextTerm, str | None]]:
    """Each term found, with None if some occurrence counts or else the negating cue id."""
    found: list[tuple[TextTerm, str | None]] = []
    for term in terms:
        negated_by: str | None = None
        counts = False
        for scanned in texts:
            matches = list(term.pattern.finditer(scanned.text))
            if not matches:
                continue
            excluded = [m.span() for p in term.excludes for m in p.finditer(scanned.text)]
            for match in matches:
                start, end = match.span()
                if any(s <= start and end <= e for s, e in excluded):
                    continue
                cue = _negating_cue(scanned, start, end, negation)
                if cue is None:
                    counts = True
                    break
                negated_by = negated_by or cue
            if counts:
                break
        if counts:
            found.append((term, None))
        elif negated_by is not None:
            found.append((term, negated_by))
    return found


_WORD = re.compile(r"\w+")


def _negating_cue(
    scanned: _ScannedText, start: int, end: int, negation: NegationRules
) -> str | None:
    text = scanned.text
    clause_start, clause_end = scanned.clause(start, end)
    for cue in negation.before:
        for found in cue.pattern.finditer(text, clause_start, start):
            if scanned.in_pseudo(found.span()):
                continue
            if len(_WORD.findall(text, found.end(), start)) <= negation.window_words:
                return cue.id
    for cue in negation.after:
        for found in cue.pattern.finditer(text, end, clause_end):
            if scanned.in_pseudo(found.span()):
                continue
            if len(_WORD.findall(text, end, found.start())) <= negation.window_words:
                return cue.id
    return None


def _unique(reasons: list[DetectionReason]) -> tuple[DetectionReason, ...]:
    seen: set[tuple[str, ReasonKind]] = set()
    unique = []
    for reason in reasons:
        key = (reason.rule, reason.kind)
        if key not in seen:
            seen.add(key)
            unique.append(reason)
    return tuple(unique)
