"""The automated accessibility check can fail: axe-core, injected as the journey injects it,
flags faint text and a missing page title (a check that passes everything proves nothing);
and the check the `phone` runs on every page it loads sees each of them."""

from __future__ import annotations

import pytest

from tests.browser.axe import assert_accessible
from tests.browser.conftest import AxeOnEveryPage

pytestmark = pytest.mark.browser

# light grey on white (1.6:1, WCAG AA wants 4.5:1), and no <title>
FAINT_PAGE = (
    "<!doctype html><html lang='en'><body><main>"
    "<p style='color:#cccccc;background:#ffffff'>Claim the referral</p>"
    "</main></body></html>"
)
FINE_PAGE = (
    "<!doctype html><html lang='en'><head><title>Queue</title></head><body><main>"
    "<h1>Queue</h1><p style='color:#0b0c0c;background:#ffffff'>Claim the referral</p>"
    "</main></body></html>"
)


def test_faint_text_and_a_missing_title_fail_the_check(phone):
    phone.set_content(FAINT_PAGE)
    with pytest.raises(AssertionError) as failed:
        assert_accessible(phone, "a faint page")
    assert "color-contrast (serious)" in str(failed.value)
    assert "document-title (serious)" in str(failed.value)


def test_a_plain_readable_page_passes(phone):
    phone.set_content(FINE_PAGE)
    assert_accessible(phone, "a plain page")


def test_every_page_a_phone_loads_is_checked_as_it_loads(browser):
    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    checked = AxeOnEveryPage(page)
    pages = {"http://pages.test/fine": FINE_PAGE, "http://pages.test/faint": FAINT_PAGE}
    page.route(
        "http://pages.test/**",
        lambda route: route.fulfill(body=pages[route.request.url], content_type="text/html"),
    )

    page.goto("http://pages.test/fine")
    page.goto("http://pages.test/faint")
    page.goto("http://pages.test/fine")
    checked.finish(page)
    context.close()

    assert set(checked.pages) == set(pages)
    with pytest.raises(AssertionError) as failed:
        checked.assert_accessible()
    assert "http://pages.test/faint: color-contrast (serious)" in str(failed.value)
    assert "pages.test/fine:" not in str(failed.value)
