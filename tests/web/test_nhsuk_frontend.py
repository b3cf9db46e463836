"""The NHS.UK frontend: its stylesheet, script and icons served by the app from the folder the
setup fetched, its Jinja macros in the one environment (escaping what they are given), the
page frame built from them, and a clear error when the folder was never fetched."""

from __future__ import annotations

import re
from datetime import UTC
from importlib.metadata import version
from pathlib import Path

import pytest

from consent.policy import Role
from referral_gateway.config import ConfigError
from referral_gateway.web.frontend import NHSUK_FRONTEND, nhsuk_frontend
from referral_gateway.web.render import make_templates
from tests.web.builders import SITE_A
from tests.web.conftest import Web, csrf_of


def test_the_frontend_stylesheet_script_and_icons_are_served_to_anyone(web: Web):
    client = web.client()
    css = client.get("/nhsuk/nhsuk-frontend.min.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ".nhsuk-header" in css.text and ".nhsuk-error-summary" in css.text
    # nothing from another host: its @font-face rules (Frutiger from assets.nhs.uk, refused by
    # the content security policy) are left out when it is fetched
    assert "@font-face" not in css.text and "://" not in css.text
    script = client.get("/nhsuk/nhsuk-frontend.min.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "initAll" in script.text
    # every image the stylesheet names on this site is there (it names them under /assets)
    named = set(re.findall(r"url\((/[^)]+)\)", css.text))
    assert named, "the stylesheet names no icons"
    for path in named:
        assert client.get(path).status_code == 200, path


def test_every_page_loads_the_frontend_and_starts_it_from_this_site(web: Web):
    web.account("ash", Role.YOUTH_WORKER, (SITE_A,))
    ash = web.signed_in("ash")
    for path in ("/sign-in", "/queue", "/alerts"):
        page = ash.get(path).text
        assert '<link rel="stylesheet" href="/nhsuk/nhsuk-frontend.min.css">' in page, path
        assert '<script type="module" src="/static/nhsuk-init.js"></script>' in page, path
    starter = ash.get("/static/nhsuk-init.js")
    assert starter.status_code == 200
    assert 'from "/nhsuk/nhsuk-frontend.min.js"' in starter.text and "initAll()" in starter.text


def test_the_header_shows_the_roles_navigation_and_signs_out_with_the_csrf_token(web: Web):
    web.account("ash", Role.YOUTH_WORKER, (SITE_A,))
    ash = web.signed_in("ash")
    page = ash.get("/alerts").text
    header = page.split('<header class="nhsuk-header"', 1)[1].split("</header>", 1)[0]
    links = re.findall(r'<a class="nhsuk-header__navigation-link" href="([^"]+)"', header)
    assert links == ["/queue", "/follow-ups", "/referrals/new", "/alerts"]
    assert re.search(r'href="/alerts"\s+aria-current="page"', header)
    assert "/reports" not in header and "/admin/users" not in header
    assert 'action="/sign-out"' in header and csrf_of(header) == csrf_of(page)

    web.account("pat", Role.PROGRAMME_LEAD, (SITE_A,))
    lead = web.signed_in("pat").get("/overview").text
    header = lead.split('<header class="nhsuk-header"', 1)[1].split("</header>", 1)[0]
    links = re.findall(r'<a class="nhsuk-header__navigation-link" href="([^"]+)"', header)
    assert links == ["/overview", "/reports"]


def test_signed_out_pages_have_the_header_without_navigation_or_sign_out(web: Web):
    page = web.client().get("/sign-in").text
    assert '<header class="nhsuk-header"' in page and "Referral gateway" in page
    assert "nhsuk-header__navigation" not in page and 'action="/sign-out"' not in page


def test_the_component_macros_escape_what_they_are_given():
    env = make_templates(UTC)
    page = env.from_string(
        '{% import "_macros.html" as m with context %}'
        '{{ m.error_summary("f") }}{{ m.error("f", "name") }}'
    ).render(problems={"name": "<script>x</script> is not a name"}, form_name="f")
    assert "<script>" not in page
    assert page.count("&lt;script&gt;x&lt;/script&gt; is not a name") == 2
    assert 'class="nhsuk-error-summary"' in page and 'href="#f-name"' in page
    assert 'class="nhsuk-error-message" id="f-name-error"' in page


def test_the_fetched_frontend_is_the_release_the_macros_are_made_for():
    # nhsuk-frontend-jinja's README pairs 0.10.2 with nhsuk-frontend 10.6.1
    assert version("nhsuk-frontend-jinja") == "0.10.2"
    stamp = (nhsuk_frontend() / "VERSION").read_text()
    assert stamp.startswith("nhsuk-frontend 10.6.1 sha512:")


def test_a_missing_frontend_is_a_configuration_error_naming_the_command_that_fetches_it(
    tmp_path: Path,
):
    with pytest.raises(ConfigError, match=r"run deploy/fetch-nhsuk-frontend\.sh"):
        nhsuk_frontend(tmp_path / "nhsuk_frontend")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "nhsuk-frontend.min.css").write_text("")
    with pytest.raises(ConfigError, match=r"nhsuk-frontend\.min\.js"):
        nhsuk_frontend(tmp_path / "half")
    assert nhsuk_frontend() == NHSUK_FRONTEND
