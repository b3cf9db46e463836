"""The leak check itself (tests/leakcheck.py) sees what it is there to see."""

from __future__ import annotations

import logging

import httpx

from tests.leakcheck import IDENTIFIERS


def test_the_leak_check_sees_identifiers_in_log_records_urls_and_error_answers(request):
    check = request.config.pluginmanager.get_plugin("leakcheck")
    logging.getLogger("tests.leakcheck.demo").info("arrival for %s", "9990000018")
    try:
        raise ValueError("bad value for TESTINGTON")
    except ValueError:
        logging.getLogger("tests.leakcheck.demo").exception("mapping failed")

    def answer(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/missing":
            return httpx.Response(404, text="no patient called Zedwardson")
        return httpx.Response(303, headers={"location": "/find?phone=07700900123"})

    with httpx.Client(transport=httpx.MockTransport(answer), base_url="http://gw") as client:
        client.get("/fhir/Patient", params={"identifier": "999 000 0026"})
        client.get("/missing")
        client.get("/ok", follow_redirects=False)
    seen = check.take(request.node.nodeid)  # taken: so this test does not fail for them
    assert {leak.where for leak in seen} >= {
        "log record of tests.leakcheck.demo (INFO)",
        "log record of tests.leakcheck.demo (ERROR)",
        "URL of GET request",
        "404 answer to GET /missing",
        "redirect from GET /ok",
    }


def test_ordinary_words_and_numbers_are_not_identifiers():
    text = "placeholder 9990 items, 1999000001234 bytes, example street-level, ZZ99"
    assert IDENTIFIERS.search(text) is None


def test_fields_a_page_shows_on_purpose_are_not_leaks_but_the_rest_of_the_page_is(request):
    check = request.config.pluginmanager.get_plugin("leakcheck")
    page = (
        '<dd class="pii">Sam Testington</dd><input name="family" value="Testington">'
        "<p>Problem with the record of Testington</p>"
    )

    def answer(req: httpx.Request) -> httpx.Response:
        return httpx.Response(422, html=page)

    with httpx.Client(transport=httpx.MockTransport(answer), base_url="http://gw") as client:
        client.post("/referrals/r-1/contacts")
    seen = check.take(request.node.nodeid)
    assert [leak.excerpt.count("Problem with the record") for leak in seen] == [1]
