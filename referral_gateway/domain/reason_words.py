"""Why a referral is on the queue, in the words a youth worker reads on the case page.

Detection stores each reason as a rule id and a description written for the audit
("text:punched" / "free text mentions 'punched' (body_part, explicit)", "icd10:X99" /
"ICD-10 X99 in X85-Y09 Assault; X99 Assault by sharp object (assault code)"). This module
turns the stored pair into plain words ("the triage note says 'punched'", "the diagnosis
code X99 (assault by sharp object)"). It reads only what detection wrote (never patient
text: descriptions hold term labels and code displays only); anything it does not recognise
is shown as stored rather than guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_QUOTED = re.compile(r"""mentions (['"])(.*?)\1""")
_SUSPECTED = re.compile(r"^possible assault \(suspected: ([^)]*)\)")
_MEANING = re.compile(r"\s*\((?:[\w -]+) code\)$")
_SEMANTIC_TAG = re.compile(r"\s*\((?:disorder|event|finding|situation|qualifier value)\)$")
_CODE_SYSTEMS = {
    "snomed": ("SNOMED CT", "the ED coded it as {meaning} (SNOMED CT {code})"),
    "ecds_intent": (
        "ECDS injury intent",
        "the injury intent was recorded as {meaning} (ECDS {code})",
    ),
}


def plain_reason(rule: str, description: str) -> str:
    """One stored detection reason in plain words."""
    system, _, code = rule.partition(":")
    if system == "text":
        return _text_reason(code, description)
    if system == "icd10" and code:
        return f"the diagnosis code {code} ({_icd10_meaning(code, description)})"
    if system in _CODE_SYSTEMS and code:
        label, words = _CODE_SYSTEMS[system]
        display = description.removeprefix(f"{label} {code} ")
        meaning = _lower_first(_SEMANTIC_TAG.sub("", _MEANING.sub("", display)))
        return words.format(meaning=meaning or "an assault code", code=code)
    if system == "manual":
        return _lower_first(description)
    return description


def plain_reasons(reasons: Iterable[Mapping[str, str]], *, fallback: str = "") -> list[str]:
    """The reasons that put the referral on the queue (the assault signals that counted), in
    plain words; `fallback` (the deciding rule) when none was stored."""
    shown = [
        plain_reason(r.get("rule", ""), r.get("description", ""))
        for r in reasons
        if r.get("kind") == "assault"
    ]
    return shown or ([fallback] if fallback else [])


def _text_reason(term_id: str, description: str) -> str:
    quoted = _QUOTED.search(description)
    words = quoted.group(2) if quoted else term_id.replace("_", " ")
    said = f"the triage note says '{words}'"
    suspected = _SUSPECTED.match(description)
    if suspected:
        cue = suspected.group(1).replace("_", " ")
        return f"{said}, as a possible assault (suspected: {cue})"
    return said


def _icd10_meaning(code: str, description: str) -> str:
    """The display of the narrowest block naming `code` ("X99 Assault by sharp object" rather
    than "X85-Y09 Assault")."""
    within = _MEANING.sub("", description.removeprefix(f"ICD-10 {code} in "))
    parts = [p.strip() for p in within.split(";") if p.strip()]
    if not parts or parts == [description]:
        return "an assault code"
    exact = [p for p in parts if p.split(" ", 1)[0] == code]
    label, _, display = (exact or parts)[-1].partition(" ")
    return _lower_first(display or label)


def _lower_first(words: str) -> str:
    """'Assault by sharp object' -> 'assault by sharp object'; 'GSW' and 'ED staff' stay."""
    if not words or words[:2].isupper():
        return words
    return words[0].lower() + words[1:]
