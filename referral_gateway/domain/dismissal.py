"""A youth worker marks a candidate "not an assault": the rules, and the corpus rows it becomes.

Who may: a caseworker of the referral's site (the server checks role and site), on a
referral still open (new or claimed); a referral claimed by someone else only by them or a
team lead. Why: one of a fixed list of reasons (`NotAssaultReason`), each the kind of case
the labelling guide (eval/LABELLING.md) names, plus an optional note of at most
`NOTE_LIMIT` characters ("other" needs one). The referral becomes `not_assault` (it leaves
the New list and the queue's open cards), the mark is kept with its reason, and the audit
trail records who marked it and the reason (never the note).

The note is free text a person typed, so it may name someone: it is stored encrypted like
case notes and never exported. What becomes a labelled corpus row (`corpus_row`) is the ED
text that made the referral (its reason `kind` is in the row's `context`), with label
`not`, scrubbed (`scrub`): the patient's own identifiers wherever they appear, and any run
of 6 or more digits (spaces, dots, dashes and slashes between them allowed: NHS numbers,
phone and visit numbers), dates, postcodes and e-mail addresses. A person still reads each
exported row before it joins the corpus (the guide says how).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from referral_gateway.domain.accounts import StaffUser
from referral_gateway.domain.casework import Case, CaseRefusal, may_see
from referral_gateway.domain.referral import OPEN_STATUSES, ReferralStatus

NOTE_LIMIT = 500


class NotAssaultReason(enum.StrEnum):
    ACCIDENT = "accident"
    SELF_HARM = "self_harm"
    SOMEONE_ELSE_HURT = "someone_else_hurt"
    PAST_EVENT = "past_event"
    SPORT = "sport"
    ANIMAL = "animal"
    PATIENT_WAS_THE_AGGRESSOR = "patient_was_the_aggressor"
    POLICE_RESTRAINT = "police_restraint"
    NOTES_SAY_NO_ASSAULT = "notes_say_no_assault"
    NOT_AN_INJURY = "not_an_injury"
    OTHER = "other"


REASON_LABELS: dict[NotAssaultReason, str] = {
    NotAssaultReason.ACCIDENT: "An accident (nobody meant to hurt them)",
    NotAssaultReason.SELF_HARM: "Self-inflicted",
    NotAssaultReason.SOMEONE_ELSE_HURT: "Someone else was hurt, not this young person",
    NotAssaultReason.PAST_EVENT: "An old assault, not why they came in today",
    NotAssaultReason.SPORT: "Contact in sport",
    NotAssaultReason.ANIMAL: "An animal did it",
    NotAssaultReason.PATIENT_WAS_THE_AGGRESSOR: "The young person was the one hitting",
    NotAssaultReason.POLICE_RESTRAINT: "Police or security restraint",
    NotAssaultReason.NOTES_SAY_NO_ASSAULT: "The notes say it was not an assault",
    NotAssaultReason.NOT_AN_INJURY: "Not an injury at all (an illness)",
    NotAssaultReason.OTHER: "Another reason (say why)",
}

# the corpus `context` (eval/LABELLING.md) each reason is
CORPUS_CONTEXT: dict[NotAssaultReason, str] = {
    NotAssaultReason.ACCIDENT: "accidental",
    NotAssaultReason.SELF_HARM: "self_harm",
    NotAssaultReason.SOMEONE_ELSE_HURT: "experiencer",
    NotAssaultReason.PAST_EVENT: "historical",
    NotAssaultReason.SPORT: "sport",
    NotAssaultReason.ANIMAL: "animal",
    NotAssaultReason.PATIENT_WAS_THE_AGGRESSOR: "perpetrator",
    NotAssaultReason.POLICE_RESTRAINT: "police",
    NotAssaultReason.NOTES_SAY_NO_ASSAULT: "negated",
    NotAssaultReason.NOT_AN_INJURY: "medical",
    NotAssaultReason.OTHER: "other_injury",
}


@dataclass(frozen=True, slots=True)
class NotAssaultMark:
    """A youth worker's judgement on a candidate. `note` is free text: never logged,
    never exported, never in the audit trail."""

    referral_id: str
    site: str
    reason: NotAssaultReason
    note: str
    marked_by: str
    marked_at: datetime

    def __repr__(self) -> str:
        return f"NotAssaultMark(referral_id={self.referral_id!r}, reason={self.reason.value!r})"


def mark_not_assault(
    case: Case, user: StaffUser, *, reason: str, note: str, now: datetime
) -> tuple[Case, NotAssaultMark] | CaseRefusal:
    """The case marked not an assault, and the mark; or why not (by form field)."""
    if not may_see(user, case.site):
        return CaseRefusal({"action": "You do not work for this referral's site."})
    if case.status not in OPEN_STATUSES:
        return CaseRefusal(
            {"action": "Only a new or claimed referral can be marked as not an assault."}
        )
    if case.assigned_to not in (None, user.id) and not user.assigns:
        return CaseRefusal(
            {"action": "This referral is claimed by another worker. Ask them or your team lead."}
        )
    problems: dict[str, str] = {}
    try:
        chosen = NotAssaultReason(reason)
    except ValueError:
        problems["reason"] = "Choose why this is not an assault."
        chosen = NotAssaultReason.OTHER
    note = note.strip()
    if len(note) > NOTE_LIMIT:
        problems["note"] = f"Keep the note to {NOTE_LIMIT} characters."
    elif chosen is NotAssaultReason.OTHER and not note and "reason" not in problems:
        problems["note"] = "Say in a few words why this is not an assault."
    if problems:
        return CaseRefusal(problems)
    mark = NotAssaultMark(case.referral_id, case.site, chosen, note, user.id, now)
    return replace(case, status=ReferralStatus.NOT_ASSAULT), mark


# -- scrubbing and the corpus row ------------------------------------------------------------

_DIGITS = re.compile(r"\d(?:[ .\-/]?\d){5,}")  # 6+ digits, single separators between them
_DATE = re.compile(
    r"\b\d{1,2}\s*[/.\-]\s*\d{1,2}\s*[/.\-]\s*\d{2,4}\b"
    r"|\b\d{1,2}(?:st|nd|rd|th)?\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*"
    r"\.?(?:\s+\d{2,4})?\b",
    re.IGNORECASE,
)
_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.IGNORECASE)
_EMAIL = re.compile(r"\S+@\S+")
_SPACE = re.compile(r"[\t\r\n]+")


def scrub(text: str, identifiers: Iterable[str] = ()) -> str:
    """`text` without the given identifiers (names, numbers, address parts: each whole word
    or phrase, any case) and without anything shaped like a number, date, postcode or
    e-mail address that could point to a person. Tabs and line breaks become spaces (a
    corpus row is one line)."""
    out = _SPACE.sub(" ", text)
    for value in sorted({i.strip() for i in identifiers if len(i.strip()) >= 2}, key=len)[::-1]:
        out = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", "[identifier]", out, flags=re.I)
    out = _EMAIL.sub("[email]", out)
    out = _DATE.sub("[date]", out)
    out = _DIGITS.sub("[number]", out)
    out = _POSTCODE.sub("[postcode]", out)
    return out.strip()


@dataclass(frozen=True, slots=True)
class CorpusRow:
    """One new labelled case for eval/corpus: the text that made the referral, labelled
    `not`, with the kind of case the youth worker's reason names."""

    id: str
    field: str
    context: str
    text: str

    def tsv(self) -> str:
        return "\t".join((self.id, self.field, "not", "-", self.context, "-", self.text))


def corpus_row(
    row_id: str, mark: NotAssaultMark, field: str, text: str, identifiers: Iterable[str]
) -> CorpusRow | None:
    """The mark as a corpus row, the text scrubbed; None when nothing is left of it."""
    scrubbed = scrub(text, identifiers)
    if not scrubbed.replace("[identifier]", "").strip():
        return None
    return CorpusRow(row_id, field, CORPUS_CONTEXT[mark.reason], scrubbed)
