"""A youth worker marks a candidate "not an assault" (domain.dismissal): the form posted from
the referral page (`_not_assault.html`). Role, site and the referral's state are checked on
the server by the casework service; the note never reaches a log or a redirect."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from referral_gateway.web.referrals import CaseFormDep

router = APIRouter(include_in_schema=False)


@router.post("/referrals/{referral_id}/not-assault")
def not_assault(case: CaseFormDep) -> Response:
    reason, note = case.text("reason"), case.text("note")
    return case.answer(
        lambda rid: case.casework.mark_not_assault(case.user, rid, reason=reason, note=note),
        done="not_assault",
    )
