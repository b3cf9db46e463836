"""What the web pages raise to answer with something other than the page, in one tree.
`web.ui` turns each into a response; FastAPI's `HTTPException` answers the JSON routes.

    WebError
    ├── PageError         an error page: a status, a title and what the person can do
    ├── SignInRequired    no active session: pages redirect to sign-in, live streams get 401
    └── PasswordChangeRequired  the account must set its own password first: pages redirect
                                to the change-password page, live streams get 401

Service errors reaching a route are translated there (`services.errors.NotFound` → 404).
"""

from __future__ import annotations


class WebError(Exception):
    """Base of what the web pages raise."""


class PageError(WebError):
    """Answer with an error page: a status, a title and what the person can do."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.message = message


class SignInRequired(WebError):
    """No active session: pages redirect to the sign-in page, live streams answer 401."""


class PasswordChangeRequired(WebError):
    """The account must set its own password first: pages redirect to the change-password
    page, live streams answer 401."""
