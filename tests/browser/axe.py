"""An automated accessibility check: axe-core (vendored, see vendor/README.md) injected into the
page under test, run against the WCAG 2.0/2.1 A and AA rules (colour contrast included).
A serious or critical violation fails the test, naming the rule and the offending elements."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

AXE = Path(__file__).with_name("vendor") / "axe.min.js"
AXE_SHA256 = "182a40dc5d8207e626c09861ad65027d45e85e3a56d01045d068e2e88ee432ea"  # 4.9.1
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}


@cache
def _axe_source() -> str:
    data = AXE.read_bytes()
    if hashlib.sha256(data).hexdigest() != AXE_SHA256:
        raise AssertionError(f"{AXE} is not the vendored axe-core 4.9.1")
    return data.decode("utf-8")


def _run_axe(page: Any) -> list[dict[str, Any]]:  # a playwright Page
    """Every violation axe finds on the page as it is now."""
    # evaluated through the DevTools protocol, which the page's CSP (script-src 'self') does
    # not govern (a <script> tag would be refused, as it should be); loaded afresh each time
    # so that no state is carried over from an earlier document
    page.evaluate(_axe_source() + "\n;undefined")
    result = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {
                runOnly: { type: "tag", values: tags },
                resultTypes: ["violations"],
            });
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
            }));
        }""",
        TAGS,
    )
    return list(result)


def axe_violations(page: Any) -> list[dict[str, Any]]:  # a playwright Page
    """Every violation axe finds on the page as it is now; when the check every page gets as
    it loads (tests/browser/conftest.py) is still running on it, after that one ends."""
    from playwright.sync_api import Error

    for _ in range(100):
        try:
            return _run_axe(page)
        except Error as error:
            if "Axe is already running" not in str(error):
                raise
            page.wait_for_timeout(100)
    return _run_axe(page)


def assert_accessible(page: Any, where: str) -> None:
    blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING]
    described = "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(v['targets'])}" for v in blocking
    )
    assert not blocking, f"{where}: {described}"
