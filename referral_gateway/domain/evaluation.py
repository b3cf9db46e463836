"""Detection measured like a classifier: a labelled corpus, precision, recall and F1.

A corpus is a tab-separated file of cases (see eval/LABELLING.md): where the text arrives
(`field`), its `label` (assault, possible, not), its injury `category`, the kind of case
(`context`), optional `codes` and the `text`. A case is *positive* when labelled assault or
possible: both should reach the youth workers' queue. A detection is positive when it makes
the attendance a candidate.

`evaluate(cases, decide)` runs each case through `decide` (the caller turns a case into an
attendance the way the wire would, and runs detection) and keeps the outcomes;
`Evaluation` gives the scores overall, by field, by category, by context, the confusion
table, the errors with the reasons that fired, and which decisions rest on codes the value
set marks unverified (the ECDS injury-intent concepts). `render` writes it for people.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from referral_gateway.domain.detection import Detection, ReasonKind
from referral_gateway.domain.errors import CorpusError
from referral_gateway.domain.valuesets import InjuryCategory

__all__ = [
    "FIELDS",
    "Case",
    "CorpusError",
    "Evaluation",
    "Label",
    "Outcome",
    "Scores",
    "evaluate",
    "read_corpus",
    "render",
]

FIELDS = (
    "pv2_3",
    "obx_cc",
    "dg1_desc",
    "nte",
    "fhir_reason",
    "condition_text",
    "fhir_note",
)
CODE_SYSTEMS = ("ecds", "snomed", "icd10")
HEADER = ("id", "field", "label", "category", "context", "codes", "text")
UNVERIFIED_PREFIX = "ecds_intent:"
DETECTED = ("definite", "possible", "not")


class Label(enum.StrEnum):
    ASSAULT = "assault"  # an assault on this patient, stated
    POSSIBLE = "possible"  # a suspected assault on this patient
    NOT = "not"

    @property
    def positive(self) -> bool:
        return self is not Label.NOT


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    field: str
    label: Label
    category: InjuryCategory | None
    context: str
    codes: tuple[tuple[str, str], ...]
    text: str


def read_corpus(text: str, *, source: str = "corpus") -> tuple[Case, ...]:
    """Parse a corpus file. Raises CorpusError naming the line for anything malformed."""
    lines = text.splitlines()
    if not lines or tuple(lines[0].split("\t")) != HEADER:
        raise CorpusError(f"{source}: line 1: expected the header {' '.join(HEADER)}")
    cases: list[Case] = []
    seen: set[str] = set()
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"{source}: line {number}"
        parts = line.split("\t")
        if len(parts) != len(HEADER):
            raise CorpusError(f"{where}: expected {len(HEADER)} tab-separated columns")
        case_id, field, label, category, context, codes, case_text = (p.strip() for p in parts)
        if not case_id or case_id in seen:
            raise CorpusError(f"{where}: id {case_id!r} is empty or repeated")
        seen.add(case_id)
        if field not in FIELDS:
            raise CorpusError(f"{where}: field {field!r} is not one of {', '.join(FIELDS)}")
        try:
            parsed_label = Label(label)
        except ValueError:
            raise CorpusError(f"{where}: label {label!r} is not assault, possible or not") from None
        parsed_category: InjuryCategory | None = None
        if parsed_label.positive:
            try:
                parsed_category = InjuryCategory(category)
            except ValueError:
                raise CorpusError(f"{where}: category {category!r} is not known") from None
        elif category != "-":
            raise CorpusError(f"{where}: a case labelled 'not' has category '-'")
        if not context or not case_text:
            raise CorpusError(f"{where}: context and text must not be empty")
        cases.append(
            Case(
                id=case_id,
                field=field,
                label=parsed_label,
                category=parsed_category,
                context=context,
                codes=_codes(codes, where),
                text=case_text,
            )
        )
    return tuple(cases)


def _codes(raw: str, where: str) -> tuple[tuple[str, str], ...]:
    if raw == "-":
        return ()
    codes = []
    for item in raw.split(";"):
        system, _, code = item.strip().partition(":")
        if system not in CODE_SYSTEMS or not code:
            raise CorpusError(f"{where}: code {item!r} is not system:code ({CODE_SYSTEMS})")
        codes.append((system, code))
    return tuple(codes)


# --- scores ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scores:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    true_negatives: int = 0

    @property
    def cases(self) -> int:
        return (
            self.true_positives + self.false_positives + self.false_negatives + self.true_negatives
        )

    @property
    def precision(self) -> float | None:
        called = self.true_positives + self.false_positives
        return self.true_positives / called if called else None

    @property
    def recall(self) -> float | None:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None
        return 2 * p * r / (p + r)


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    detection: Detection

    @property
    def predicted(self) -> bool:
        return self.detection.is_candidate

    @property
    def detected(self) -> str:
        """Definite, possible (a candidate on suspicion only) or not."""
        if not self.detection.is_candidate:
            return "not"
        return "possible" if self.detection.possible else "definite"

    @property
    def correct(self) -> bool:
        return self.predicted == self.case.label.positive

    @property
    def fired(self) -> tuple[str, ...]:
        """The reasons that fired, as "kind rule" (gates, assault, negated, self-harm...)."""
        return tuple(f"{r.kind.value} {r.rule}" for r in self.detection.reasons)

    @property
    def rests_on_unverified(self) -> bool:
        """A candidate whose every counted assault signal is an unverified ECDS intent code."""
        counted = self.detection.reasons_of(ReasonKind.ASSAULT)
        return (
            self.predicted
            and bool(counted)
            and all(r.rule.startswith(UNVERIFIED_PREFIX) for r in counted)
        )


def _scores(outcomes: Iterable[Outcome]) -> Scores:
    tp = fp = fn = tn = 0
    for outcome in outcomes:
        actual, predicted = outcome.case.label.positive, outcome.predicted
        tp += actual and predicted
        fp += predicted and not actual
        fn += actual and not predicted
        tn += not actual and not predicted
    return Scores(tp, fp, fn, tn)


@dataclass(frozen=True, slots=True)
class Evaluation:
    name: str
    valueset_version: str
    outcomes: tuple[Outcome, ...]

    @property
    def overall(self) -> Scores:
        return _scores(self.outcomes)

    def by(self, key: Callable[[Outcome], str]) -> dict[str, Scores]:
        groups: dict[str, list[Outcome]] = {}
        for outcome in self.outcomes:
            groups.setdefault(key(outcome), []).append(outcome)
        return {name: _scores(group) for name, group in sorted(groups.items())}

    def by_field(self) -> dict[str, Scores]:
        return self.by(lambda o: o.case.field)

    def by_context(self) -> dict[str, Scores]:
        return self.by(lambda o: o.case.context)

    def by_category(self) -> dict[str, Scores]:
        """Positives grouped by their labelled category; negatives under "-"."""
        return self.by(lambda o: o.case.category.value if o.case.category else "-")

    def confusion(self) -> dict[Label, dict[str, int]]:
        """Labelled (assault, possible, not) by detected (definite, possible, not)."""
        table = {label: dict.fromkeys(DETECTED, 0) for label in Label}
        for outcome in self.outcomes:
            table[outcome.case.label][outcome.detected] += 1
        return table

    def category_agreement(self) -> tuple[int, int]:
        """Of the positives detected, how many got the labelled category."""
        hits = [o for o in self.outcomes if o.predicted and o.case.label.positive]
        same = sum(o.detection.injury_category == o.case.category for o in hits)
        return same, len(hits)

    @property
    def errors(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if not o.correct)

    @property
    def resting_on_unverified(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.rests_on_unverified)


def evaluate(
    cases: Sequence[Case], decide: Callable[[Case], Detection], *, name: str
) -> Evaluation:
    outcomes = tuple(Outcome(case, decide(case)) for case in cases)
    versions = sorted({o.detection.valueset_version for o in outcomes})
    return Evaluation(name=name, valueset_version=", ".join(versions), outcomes=outcomes)


# --- the report ------------------------------------------------------------------------------


def _figure(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def _score_line(name: str, scores: Scores) -> str:
    return (
        f"  {name:<16} {scores.cases:>4}  TP {scores.true_positives:>3}  FP "
        f"{scores.false_positives:>3}  FN {scores.false_negatives:>3}  TN "
        f"{scores.true_negatives:>3}   P {_figure(scores.precision)}  R "
        f"{_figure(scores.recall)}  F1 {_figure(scores.f1)}"
    )


def render(evaluation: Evaluation, *, show_errors: bool = True) -> str:
    lines = [
        f"== {evaluation.name}: {len(evaluation.outcomes)} cases, "
        f"value set {evaluation.valueset_version}",
        _score_line("overall", evaluation.overall),
        "by field:",
        *(_score_line(k, v) for k, v in evaluation.by_field().items()),
        "by labelled category (- = labelled not):",
        *(_score_line(k, v) for k, v in evaluation.by_category().items()),
        "by context:",
        *(_score_line(k, v) for k, v in evaluation.by_context().items()),
        "confusion (labelled \\ detected):    definite  possible   not",
    ]
    for label, row in evaluation.confusion().items():
        lines.append(
            f"  {label.value:<31} {row['definite']:>9} {row['possible']:>9} {row['not']:>5}"
        )
    same, hits = evaluation.category_agreement()
    lines.append(f"injury category agrees with the label on {same} of {hits} detected positives")
    unverified = evaluation.resting_on_unverified
    lines.append(
        f"decisions resting only on unverified ECDS injury-intent codes: {len(unverified)}"
        + (f" ({', '.join(o.case.id for o in unverified)})" if unverified else "")
    )
    if show_errors:
        errors = evaluation.errors
        lines.append(f"errors: {len(errors)}")
        for outcome in errors:
            case = outcome.case
            kind = "FN" if case.label.positive else "FP"
            fired = "; ".join(outcome.fired) or "nothing fired"
            lines.append(
                f"  {kind} {case.id} [{case.field}, {case.context}, {case.label.value}] "
                f"{case.text!r}\n      fired: {fired}"
            )
    return "\n".join(lines)
