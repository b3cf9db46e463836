"""The leak check: across the whole test run, every log record (message and traceback), every
HTTP request URL, redirect target and error response (status 400 and over, body and headers)
is searched for the synthetic identifiers the tests use: test-range NHS numbers, the invented
family names, phone numbers, postcodes and street. An HTML answer is searched without the
fields a page shows on purpose (class="pii": identifiable data unlocked by consent) and, on a
form sent back for correction (422), without what the user typed. A test during which one
shows up fails in its teardown, naming where it was seen; one seen outside any test fails
the run.

Registered by tests/conftest.py. Logging is captured at INFO, as `serve` logs. HTTP is seen
through httpx (FastAPI's TestClient is an httpx client too), so requests a browser makes are
not covered here; the browser tests' pages are behind sign-in and carry no identifiers in URLs.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from adapters.hl7.synthetic import FAMILY

# Invented family names used by the tests and the synthetic feed. "Placeholder" is left out:
# the word is common in HTML and code.
FAMILY_NAMES = sorted(
    {*FAMILY, "Testwood", "Zedwardson", "Testpatient", "Testperson"} - {"Placeholder"}
)
IDENTIFIERS = re.compile(
    "|".join(
        [
            # NHS numbers of the test range, spaced or URL-encoded too
            r"(?<![0-9])999(?:[ +-]|%20)?[0-9]{3}(?:[ +-]|%20)?[0-9]{4}(?![0-9])",
            r"\b(?:" + "|".join(FAMILY_NAMES) + r")\b",
            r"\b07700 ?900[0-9]{3}\b",  # Ofcom's drama range, as the builders use
            r"\bZZ99 ?[0-9][A-Z]{2}\b|\bZZ1 ?1ZZ\b",  # pseudo-postcodes
            r"(?-i:\bExample Street\b)",
        ]
    ),
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Leak:
    test: str
    where: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.where}: ...{self.excerpt}..."


# What a page deliberately shows: identifiable fields (marked class="pii", behind the consent
# policy and audited), and on a form sent back for correction (422) what the user typed.
_SHOWN_FIELD = re.compile(
    r"<(\w+)[^>]*\bclass=\"[^\"]*\bpii\b[^\"]*\"[^>]*>.*?</\1>", re.DOTALL | re.IGNORECASE
)
_TYPED = re.compile(
    r"\bvalue=\"[^\"]*\"|<textarea\b[^>]*>.*?</textarea>", re.DOTALL | re.IGNORECASE
)


def _unshown(response: httpx.Response, text: str) -> str:
    """An HTML answer without what it deliberately shows (see above)."""
    if "text/html" not in response.headers.get("content-type", ""):
        return text
    text = _SHOWN_FIELD.sub("<pii/>", text)
    return _TYPED.sub("<typed/>", text) if response.status_code == 422 else text


def _excerpt(text: str, match: re.Match[str]) -> str:
    return text[max(0, match.start() - 60) : match.end() + 60].replace("\r", "\\r")


class _Records(logging.Handler):
    def __init__(self, check: Callable[[str, str], None]) -> None:
        super().__init__(level=logging.INFO)
        self._check = check
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken log call is not ours to judge here
            text = str(record.msg)
        if record.exc_info:
            text += "\n" + self._formatter.formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + record.stack_info
        self._check(f"log record of {record.name} ({record.levelname})", text)


class LeakCheck:
    """The plugin: collects leaks per test; the `no_identifier_leaks` fixture (tests/conftest.py)
    fails the test they were seen in."""

    def __init__(self) -> None:
        self.leaks: list[Leak] = []
        self.current = ""  # node id of the running test
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []
        self.handler: logging.Handler | None = None

    # -- searching ------------------------------------------------------------------------
    def check(self, where: str, text: str) -> None:
        for match in IDENTIFIERS.finditer(text):
            with self._lock:
                self.leaks.append(Leak(self.current, where, _excerpt(text, match)))

    def _check_exchange(self, request: httpx.Request, response: httpx.Response) -> None:
        self.check(f"URL of {request.method} request", str(request.url))
        location = response.headers.get("location")
        if location:
            self.check(f"redirect from {request.method} {request.url.path}", location)
        if response.status_code >= 400:
            where = f"{response.status_code} answer to {request.method} {request.url.path}"
            self.check(where, "\n".join(f"{k}: {v}" for k, v in response.headers.items()))
            if response.is_stream_consumed or not response.is_closed:
                with contextlib.suppress(httpx.ResponseNotRead):  # a stream left unread
                    self.check(where, _unshown(response, response.text))

    # -- wiring ---------------------------------------------------------------------------
    def install(self) -> None:
        handler = _Records(self.check)
        self.handler = handler
        root = logging.getLogger()
        level = root.level
        root.addHandler(handler)
        root.setLevel(min(level, logging.INFO))
        self._undo.append(lambda: (root.removeHandler(handler), root.setLevel(level)))
        self._wrap(httpx.Client, sync=True)
        self._wrap(httpx.AsyncClient, sync=False)

    def _wrap(self, cls: Any, *, sync: bool) -> None:
        original = cls.send
        checker = self

        if sync:

            def send(client: Any, request: httpx.Request, **kwargs: Any) -> httpx.Response:
                response = original(client, request, **kwargs)
                checker._check_exchange(request, response)
                return response
        else:

            async def send(  # type: ignore[misc]
                client: Any, request: httpx.Request, **kwargs: Any
            ) -> httpx.Response:
                response = await original(client, request, **kwargs)
                checker._check_exchange(request, response)
                return response

        cls.send = send
        self._undo.append(lambda: setattr(cls, "send", original))

    def still_listening(self) -> bool:
        """Whether log records still reach the check; if something (a test reconfiguring
        logging) took its handler away or raised the root level past INFO, put it back and
        say so, so the hole cannot stay open for the rest of the session unnoticed."""
        root = logging.getLogger()
        intact = self.handler in root.handlers and root.getEffectiveLevel() <= logging.INFO
        if self.handler not in root.handlers:
            root.addHandler(self.handler)
        if root.getEffectiveLevel() > logging.INFO:
            root.setLevel(logging.INFO)
        return intact

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    # -- pytest hooks ---------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
        self.current = item.nodeid
        yield
        self.current = ""

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.uninstall()
        stray = list(self.leaks)  # seen outside any test's own check (e.g. in module fixtures)
        if stray:
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_sep("=", "synthetic identifiers seen outside any test", red=True)
                for leak in stray[:20]:
                    reporter.write_line(str(leak))
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def take(self, test: str) -> list[Leak]:
        """The leaks seen while `test` ran, no longer counted as stray."""
        with self._lock:
            mine = [leak for leak in self.leaks if leak.test == test]
            self.leaks = [leak for leak in self.leaks if leak.test != test]
            return mine
