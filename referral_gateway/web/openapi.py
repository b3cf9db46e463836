"""What the JSON, CSV and page routes answer besides their success, for the OpenAPI schema
(`/openapi.json`), so the schema describes every answer a client can get; the Schemathesis
test (tests/web/test_openapi_fuzz.py) holds the routes to it.

Refusals are JSON objects: `{"detail": ...}` from the reports and operations routes (a text,
or FastAPI's list of problems for a malformed parameter), `{"outcome": "refused", ...}` from
the hub's receiver; a page's refusal is an HTML page. A page asked for without a session
answers 303 to the sign-in page.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.responses import Response

Responses = dict[int | str, dict[str, Any]]

_REFUSAL = {
    "application/json": {"schema": {"type": "object"}},
    "text/html": {"schema": {"type": "string"}},  # a page's refusal is a page
}


class CsvResponse(Response):
    media_type = "text/csv"


def refusals(*codes: int) -> Responses:
    """Error answers with a JSON object body."""
    return {code: {"description": HTTPStatus(code).phrase, "content": _REFUSAL} for code in codes}


SIGN_IN: Responses = {303: {"description": "Not signed in: to the sign-in page"}}
