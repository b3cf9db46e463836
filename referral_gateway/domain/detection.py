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

Context (value sets from 2026.2, ConText-style cues in the value set's `text.context`): a
phrase in the reach of an `experiencer` cue (someone else was hurt: "mum was assaulted"),
a `historical` one ("PMH: stab wound 2022"), an `accidental`, `animal` or `sport` one
("nail gun", "dog fight", "sparring") is set aside (reason kind "set_aside", naming the
cue's kind); one in the reach of an `uncertain` cue ("?assault", "query NAI", "possible")
still counts, as a *possible* signal. A candidate whose every counted signal is possible
is a possible candidate (`Detection.possible`); any code or definite phrase makes it
definite. The evaluation corpus (eval/, `referral-gateway detection evaluate`) measures
what these rules get right.

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
from collections.abc import Iterable, Mapping
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
    ContextCue,
    ContextKind,
    Direction,
    InjuryCategory,
    NegationRules,
    Strength,
    TextTerm,
    ValueSet,
    most_specific,
    normalise_coding_system,
)

__all__ = [
    "CERTAINTIES",
    "DEFINITE",
    "LONDON",
    "POSSIBLE",
    "POSSIBLE_PREFIX",
    "DecidingRule",
    "Detection",
    "DetectionReason",
    "InjuryCategory",
    "ReasonKind",
    "age_on",
    "candidate_certainty",
    "detect",
    "local_arrival_date",
]

LONDON = ZoneInfo("Europe/London")

# How a possible signal's description starts. Stored reasons are read back through
# `candidate_certainty`, so referrals stored before certainty was shown still tell.
POSSIBLE_PREFIX = "possible assault (suspected: "
# a candidate's certainty: on suspicion only ("?assault", "query NAI"), or not
DEFINITE, POSSIBLE = "definite", "possible"
CERTAINTIES = (DEFINITE, POSSIBLE)


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
    NEGATED = "negated"  # a phrase that was found but negated
    SET_ASIDE = "set_aside"  # a phrase about someone else, the past, an accident, animal, sport


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
    possible: bool = False  # a candidate on suspicion only ("?assault", "query NAI")

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
    reasons += [s.reason(ReasonKind.SET_ASIDE) for s in signals.set_aside]

    return Detection(
        is_candidate=is_candidate,
        rule=rule,
        reasons=_unique(reasons),
        injury_category=most_specific(s.category for s in counted if s.category is not None),
        age_at_arrival=age,
        valueset_version=valueset.version,
        possible=is_candidate and all(s.possible for s in counted),
    )


def candidate_certainty(reasons: Iterable[Mapping[str, str]]) -> str:
    """ "possible" or "definite" for a candidate, from its stored reasons (each with its
    "kind" and "description"): possible when it has assault signals and every one is a
    suspicion, as `Detection.possible` says. A candidate with no assault signal (a manual
    referral) is definite: a person judged it."""
    assault = [r for r in reasons if r.get("kind") == ReasonKind.ASSAULT]
    if assault and all(str(r.get("description", "")).startswith(POSSIBLE_PREFIX) for r in assault):
        return POSSIBLE
    return DEFINITE


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
    possible: bool = False

    def reason(self, kind: ReasonKind, suffix: str = "") -> DetectionReason:
        return DetectionReason(self.rule, self.description + suffix, kind)


@dataclass(slots=True)
class _Signals:
    assault: list[_Signal] = field(default_factory=list)
    self_harm: list[_Signal] = field(default_factory=list)
    negated: list[_Signal] = field(default_factory=list)
    set_aside: list[_Signal] = field(default_factory=list)


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

    scanned = [_ScannedText(text, valueset) for text in texts]
    for term, found in _scan(scanned, valueset.assault_terms, valueset):
        if found.counts:
            possible = found.possible or term.possible
            suspected = found.cue or "the phrase itself"
            signals.assault.append(
                _Signal(
                    f"text:{term.id}",
                    (f"{POSSIBLE_PREFIX}{suspected}): " if possible else "")
                    + f"free text mentions {term.label!r} "
                    f"({_value(term.category)}, {_value(term.strength)})",
                    term.category,
                    term.strength,
                    possible,
                )
            )
        else:
            _set_aside(signals, term, found)
    for term, found in _scan(scanned, valueset.self_harm_terms, valueset):
        if found.counts:
            signals.self_harm.append(
                _Signal(f"text:{term.id}", f"free text mentions {term.label!r} (self-harm)")
            )
        else:
            _set_aside(signals, term, found)
    return signals


def _from_code(match: CodeMatch) -> _Signal:
    return _Signal(match.rule, match.description, match.category, match.strength)


def _set_aside(signals: _Signals, term: TextTerm, found: _Found) -> None:
    rule = f"text:{term.id}"
    if found.kind is None:
        signals.negated.append(
            _Signal(rule, f"free text mentions {term.label!r} but negated ({found.cue})")
        )
    else:
        signals.set_aside.append(
            _Signal(
                rule,
                f"free text mentions {term.label!r} but set aside: "
                f"{_SET_ASIDE_WORDS[found.kind]} ({found.kind.value}: {found.cue})",
            )
        )


_SET_ASIDE_WORDS = {
    ContextKind.EXPERIENCER: "someone else was hurt",
    ContextKind.HISTORICAL: "a past event",
    ContextKind.ACCIDENTAL: "an accident",
    ContextKind.ANIMAL: "an animal did it",
    ContextKind.SPORT: "contact in sport",
    ContextKind.UNCERTAIN: "uncertain",
}


def _value(member: enum.StrEnum | None) -> str:
    return member.value if member is not None else "unclassified"


class _ScannedText:
    """A text whose pseudo-negation spans, clause boundaries and context cues are found once,
    when a phrase is first found in it: most texts hold no phrase and cost only the search."""

    __slots__ = ("_context_cues", "_pseudo", "_sentence_stops", "_stops", "text", "valueset")

    def __init__(self, text: str, valueset: ValueSet) -> None:
        self.text = text
        self.valueset = valueset
        self._pseudo: list[tuple[int, int]] | None = None
        self._stops: list[tuple[int, int]] | None = None
        self._sentence_stops: list[tuple[int, int]] | None = None
        self._context_cues: list[tuple[ContextCue, int, int]] | None = None

    @property
    def pseudo(self) -> list[tuple[int, int]]:
        if self._pseudo is None:
            negation = self.valueset.negation
            self._pseudo = [m.span() for p in negation.pseudo for m in p.finditer(self.text)]
        return self._pseudo

    @property
    def stops(self) -> list[tuple[int, int]]:
        if self._stops is None:
            terminators = self.valueset.negation.terminators
            self._stops = [m.span() for m in terminators.finditer(self.text)]
        return self._stops

    @property
    def sentence_stops(self) -> list[tuple[int, int]]:
        if self._sentence_stops is None:
            context = self.valueset.context
            self._sentence_stops = (
                [m.span() for m in context.sentence_terminators.finditer(self.text)]
                if context is not None
                else []
            )
        return self._sentence_stops

    @property
    def context_cues(self) -> list[tuple[ContextCue, int, int]]:
        if self._context_cues is None:
            self._context_cues = []
            context = self.valueset.context
            if context is not None:
                text = self.text
                pseudo = [(k, *m.span()) for k, p in context.pseudo for m in p.finditer(text)]
                for cue in context.cues:
                    for m in cue.pattern.finditer(text):
                        s, e = m.span()
                        if not any(k is cue.kind and ps <= s and e <= pe for k, ps, pe in pseudo):
                            self._context_cues.append((cue, s, e))
        return self._context_cues

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

    def context_of(self, start: int, end: int) -> tuple[ContextCue | None, ContextCue | None]:
        """The first cue setting text[start:end] aside, and the first uncertain cue."""
        aside: ContextCue | None = None
        uncertain: ContextCue | None = None
        for cue, cue_start, cue_end in self.context_cues:
            if cue_end <= start and cue.direction is not Direction.AFTER:
                gap = (cue_end, start)
            elif cue_start >= end and cue.direction is not Direction.BEFORE:
                gap = (end, cue_start)
            else:
                continue
            if len(_WORD.findall(self.text, *gap)) > cue.window_words:
                continue
            stops = self.sentence_stops if cue.sentence_scope else self.stops
            if any(gap[0] <= s and e <= gap[1] for s, e in stops):
                continue
            if cue.kind is ContextKind.UNCERTAIN:
                uncertain = uncertain or cue
            else:
                aside = aside or cue
        return aside, uncertain


@dataclass(frozen=True, slots=True)
class _Found:
    """How a term was found: counting (possibly only as a suspicion) or set aside."""

    counts: bool
    cue: str = ""
    kind: ContextKind | None = None  # for set-aside phrases; None means negated
    possible: bool = False

    @property
    def definite(self) -> bool:
        return self.counts and not self.possible

    def better_than(self, other: _Found | None) -> bool:
        rank = {(True, False): 3, (True, True): 2}
        return other is None or rank.get((self.counts, self.possible), 0) > rank.get(
            (other.counts, other.possible), 0
        )


def _scan(
    texts: list[_ScannedText], terms: tuple[TextTerm, ...], valueset: ValueSet
) -> list[tuple[TextTerm, _Found]]:
    """Each term found, with its best occurrence: definite, then possible, then set aside."""
    found: list[tuple[TextTerm, _Found]] = []
    for term in terms:
        best: _Found | None = None
        for scanned in texts:
            matches = list(term.pattern.finditer(scanned.text))
            if not matches:
                continue
            excluded = [m.span() for p in term.excludes for m in p.finditer(scanned.text)]
            for match in matches:
                start, end = match.span()
                if any(s <= start and end <= e for s, e in excluded):
                    continue
                here = _classify(scanned, start, end, valueset.negation)
                if here.better_than(best):
                    best = here
                if here.definite:
                    break
            if best is not None and best.definite:
                break
        if best is not None:
            found.append((term, best))
    return found


def _classify(scanned: _ScannedText, start: int, end: int, negation: NegationRules) -> _Found:
    cue = _negating_cue(scanned, start, end, negation)
    if cue is not None:
        return _Found(counts=False, cue=cue)
    aside, uncertain = scanned.context_of(start, end)
    if aside is not None:
        return _Found(counts=False, cue=aside.id, kind=aside.kind)
    if uncertain is not None:
        return _Found(counts=True, cue=uncertain.id, possible=True)
    return _Found(counts=True)


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
