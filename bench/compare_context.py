"""The gateway's context rules against medspaCy's ConText, on the evaluation corpus.

    .venv/bin/pip install medspacy        # not a dependency of the gateway
    python3 bench/compare_context.py [--valueset VERSION]

medspaCy 1.3 runs offline here: `medspacy.load()` builds a blank English pipeline (its own
tokenizer, the PyRuSH sentence splitter, a target matcher and ConText) and downloads no
spaCy model. Three deciders share one lexicon (the value set's phrases and their
excludes) and one code list, and differ only in how context is judged:

  gateway              detect() as shipped: the value set's negation and context cues
  context-default      medspaCy ConText with its default rules (negation, uncertainty,
                       historical, family, hypothetical) in place of the value set's cues
  context-valueset     medspaCy ConText with its default rules plus the value set's context
                       cues turned into ConText rules (experiencer -> FAMILY, historical ->
                       HISTORICAL, uncertain -> POSSIBLE_EXISTENCE; accidental, animal, sport
                       as categories of their own)

A phrase ConText finds negated, historical, about a family member, hypothetical, or in an
accidental / animal / sport context is blanked out of the text; the rest goes to detect()
with a copy of the value set that has no negation or context cues, so gates, codes,
self-harm and categories are judged as the gateway judges them. Prints precision, recall
and F1 per corpus part and the median cost per message of each decider. Figures, not a
test.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from referral_gateway.domain.attendance import Attendance
from referral_gateway.domain.detection import Detection, detect
from referral_gateway.domain.evaluation import Case, evaluate, read_corpus
from referral_gateway.domain.valuesets import (
    ContextKind,
    Direction,
    NegationRules,
    ValueSet,
    bundled_valuesets,
)
from referral_gateway.entrypoints.detection_commands import (
    DEFAULT_CORPUS,
    SITE,
    attendance_for,
    corpus_files,
)

SET_ASIDE = {"NEGATED_EXISTENCE", "HISTORICAL", "FAMILY", "HYPOTHETICAL"}
OWN = {
    ContextKind.EXPERIENCER: "FAMILY",
    ContextKind.HISTORICAL: "HISTORICAL",
    ContextKind.UNCERTAIN: "POSSIBLE_EXISTENCE",
    ContextKind.ACCIDENTAL: "ACCIDENTAL",
    ContextKind.ANIMAL: "ANIMAL",
    ContextKind.SPORT: "SPORT",
}
DIRECTIONS = {
    Direction.BEFORE: "FORWARD",
    Direction.AFTER: "BACKWARD",
    Direction.BOTH: "BIDIRECTIONAL",
}


def context_pipeline(valueset: ValueSet, *, with_valueset_cues: bool) -> Callable[[str], str]:
    """A function that blanks out the phrases ConText sets aside."""
    for name in ("PyRuSH", "medspacy", "spacy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from loguru import logger  # PyRuSH logs every sentence at DEBUG through loguru

        logger.remove()
    except ImportError:
        pass
    import medspacy
    from medspacy.context import ConTextRule

    nlp = medspacy.load(enable=["medspacy_pyrush", "medspacy_context"])
    context = nlp.get_pipe("medspacy_context")
    if with_valueset_cues and valueset.context is not None:
        rules = []
        for cue in valueset.context.cues:
            category = OWN[cue.kind]
            rules.append(
                ConTextRule(
                    cue.id,
                    category,
                    pattern=cue.pattern.pattern,
                    direction=DIRECTIONS[cue.direction],
                    max_scope=max(cue.window_words, 1),
                )
            )
        context.add(rules)
    set_aside = SET_ASIDE | ({"ACCIDENTAL", "ANIMAL", "SPORT"} if with_valueset_cues else set())
    terms = valueset.assault_terms + valueset.self_harm_terms
    splitter = nlp.get_pipe("medspacy_pyrush")

    def blank(text: str) -> str:
        spans = []
        for term in terms:
            excluded = [m.span() for p in term.excludes for m in p.finditer(text)]
            for m in term.pattern.finditer(text):
                if not any(s <= m.start() and m.end() <= e for s, e in excluded):
                    spans.append(m.span())
        if not spans:
            return text
        doc = splitter(nlp.make_doc(text))
        ents, seen = [], set()
        for start, end in sorted(spans):
            span = doc.char_span(start, end, label="ASSAULT", alignment_mode="expand")
            if span is not None and not (set(range(span.start, span.end)) & seen):
                seen |= set(range(span.start, span.end))
                ents.append(span)
        doc.ents = ents
        doc = context(doc)
        out = list(text)
        for ent in doc.ents:
            if {m.category for m in ent._.modifiers} & set_aside:
                out[ent.start_char : ent.end_char] = " " * (ent.end_char - ent.start_char)
        return "".join(out)

    return blank


def bare(valueset: ValueSet) -> ValueSet:
    """The value set without negation or context cues (ConText judges context instead)."""
    negation = NegationRules(
        window_words=0,
        before=(),
        after=(),
        pseudo=(),
        terminators=valueset.negation.terminators,
    )
    return dataclasses.replace(valueset, negation=negation, context=None)


def with_text(attendance: Attendance, blank: Callable[[str], str]) -> Attendance:
    return dataclasses.replace(attendance, free_text=tuple(blank(t) for t in attendance.free_text))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--valueset")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    valueset = bundled_valuesets().get(args.valueset)
    parts = {
        path.stem: read_corpus(path.read_text(encoding="utf-8"), source=path.name)
        for path in corpus_files([DEFAULT_CORPUS])
    }
    built = {case.id: attendance_for(case) for cases in parts.values() for case in cases}
    plain = bare(valueset)
    started = time.perf_counter()
    default_blank = context_pipeline(valueset, with_valueset_cues=False)
    own_blank = context_pipeline(valueset, with_valueset_cues=True)
    print(f"medspaCy pipelines built in {time.perf_counter() - started:.1f} s")

    deciders: dict[str, Callable[[Case], Detection]] = {
        "gateway": lambda c: detect(built[c.id], SITE, valueset),
        "context-default": lambda c: detect(with_text(built[c.id], default_blank), SITE, plain),
        "context-valueset": lambda c: detect(with_text(built[c.id], own_blank), SITE, plain),
    }
    every = [case for cases in parts.values() for case in cases]
    print(f"value set {valueset.version}")
    for name, decide in deciders.items():
        for part, cases in parts.items():
            scores = evaluate(cases, decide, name=part).overall
            print(
                f"  {name:<17} {part:<9} P {scores.precision:.3f}  R {scores.recall:.3f}  "
                f"F1 {scores.f1:.3f}  (FP {scores.false_positives}, FN {scores.false_negatives})"
            )
        costs = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            for case in every:
                decide(case)
            costs.append((time.perf_counter() - start) / len(every))
        print(f"  {name:<17} cost: median {statistics.median(costs) * 1e6:,.0f} us/message")


if __name__ == "__main__":
    main()
