"""The NHS.UK frontend the pages are built with: its stylesheet, script and icons.

`deploy/fetch-nhsuk-frontend.sh` (run by the setup commands and the container build) fetches
the pinned `nhsuk-frontend` release with `npm pack`, checks its sha512 and unpacks what the
pages load into `nhsuk_frontend/` beside this module, a folder the repository ignores. The app
serves it at `/nhsuk` (stylesheet and script) and `/assets` (the icons, at the address its
stylesheet names). The Jinja macros that write the components' markup come from the
`nhsuk-frontend-jinja` package (`render.make_templates`).
"""

from __future__ import annotations

from pathlib import Path

from referral_gateway.config import ConfigError

NHSUK_FRONTEND = Path(__file__).with_name("nhsuk_frontend")
FETCH_COMMAND = "deploy/fetch-nhsuk-frontend.sh"
_NEEDED = ("nhsuk-frontend.min.css", "nhsuk-frontend.min.js", "assets/images")


def nhsuk_frontend(folder: Path = NHSUK_FRONTEND) -> Path:
    """The folder holding the fetched frontend; a ConfigError naming the command that fetches
    it when it is missing or incomplete."""
    missing = [name for name in _NEEDED if not (folder / name).exists()]
    if missing:
        raise ConfigError(
            f"the NHS.UK frontend is missing from {folder} ({', '.join(missing)} not found): "
            f"run {FETCH_COMMAND} from the project folder (deploy/run-demo.sh, deploy/test.sh "
            "and the container build run it)"
        )
    return folder
