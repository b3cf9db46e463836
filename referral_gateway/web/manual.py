"""The manual referral form: a young person an ED clinician identified directly."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from referral_gateway.domain.casework import CaseRefusal
from referral_gateway.domain.manual import CONCERN_LABELS, check_manual_referral, manual_warnings
from referral_gateway.web.referrals import _date, _local_datetime
from referral_gateway.web.render import SEX_LABELS, render
from referral_gateway.web.security import CaseworkerDep, CsrfDep, CtxDep, FormDep

router = APIRouter(include_in_schema=False)

FIELDS = (
    "site",
    "ed_area",
    "bay",
    "sex",
    "age",
    "concern",
    "concern_detail",
    "referrer",
    "given_names",
    "family_name",
    "nhs_number",
    "address",
    "phone",
)


def _form_page(
    request: Request,
    ctx: CtxDep,
    user: CaseworkerDep,
    *,
    status: int = 200,
    problems: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    warnings: dict[str, str] | None = None,
) -> Response:
    now = ctx.clock().astimezone(ctx.options.zone).strftime("%Y-%m-%dT%H:%M")
    defaults = {"arrival": now, "birth_date": "", "site": sorted(user.sites)[0]}
    return render(
        ctx,
        request,
        "manual.html",
        status=status,
        sites=sorted(user.sites),
        concerns=CONCERN_LABELS,
        sexes=SEX_LABELS,
        problems=problems or {},
        values=defaults | (values or {}),
        warnings=warnings or {},
    )


@router.get("/referrals/new")
def manual_form(request: Request, ctx: CtxDep, user: CaseworkerDep) -> Response:
    return _form_page(request, ctx, user)


@router.post("/referrals/new")
def manual_create(
    request: Request, ctx: CtxDep, user: CaseworkerDep, form: FormDep, _: CsrfDep
) -> Response:
    fields = {name: str(form.get(name) or "") for name in FIELDS}
    arrival = _local_datetime(form.get("arrival"), ctx.options.zone)
    birth_date: date | None = _date(form.get("birth_date"))
    result = check_manual_referral(
        user,
        fields,
        arrival=arrival,
        birth_date=birth_date,
        now=ctx.clock(),
        today=ctx.casework.today(),
    )
    values = fields | {
        "arrival": str(form.get("arrival") or ""),
        "birth_date": str(form.get("birth_date") or ""),
    }
    if isinstance(result, CaseRefusal):
        return _form_page(
            request, ctx, user, status=422, problems=dict(result.problems), values=values
        )
    site = result.attendance.site
    if ctx.unknown_sites([site]):
        problem = (
            f"{site} is not a site the gateway knows: choose another, or ask an administrator."
        )
        return _form_page(request, ctx, user, status=422, problems={"site": problem}, values=values)
    warnings = manual_warnings(result, ctx.sites.rules_for(site))
    confirmed = set(str(form.get("confirmed") or "").split(","))
    if set(warnings) - confirmed:  # unusual, not wrong: shown once, then saved as entered
        return _form_page(request, ctx, user, values=values, warnings=warnings)
    referral_id = ctx.casework.create_manual(user, result)
    return RedirectResponse(f"/referrals/{referral_id}?done=created", status_code=303)
