"""Logging set-up for the command line: plain text lines or, with `RG_LOG_FORMAT=json`, one
JSON object a line (`ts`, `level`, `logger`, `message`, and `error` with an exception's type).

No identifiers: the gateway's own messages carry counts, ids of its own making, sender and
site codes, never a patient's details; an exception is logged by its type alone (its text and
traceback may quote a message), whichever the format. APScheduler's per-run INFO lines
("Running job ...", "... executed successfully") are kept out: the jobs log what they did.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

QUIET = {
    "alembic": logging.WARNING,
    "apscheduler": logging.WARNING,  # per-run INFO lines; misses and failures still show
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False)


class TypeOnlyFormatter(logging.Formatter):
    """Text lines; an exception shows by its type, never its text or traceback."""

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]
        return f"error: {ei[0].__name__}" if ei and ei[0] is not None else ""

    def format(self, record: logging.LogRecord) -> str:
        # logging caches a record's formatted exception (`exc_text`): a traceback another
        # handler formatted first must not be reused here
        cached, record.exc_text = record.exc_text, None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached


HANDLER_NAME = "referral-gateway"


def configure_logging(log_format: str = "text", *, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TypeOnlyFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in list(root.handlers):  # ours from an earlier call; never another's handler
        if old.get_name() == HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name, quiet in QUIET.items():
        logging.getLogger(name).setLevel(quiet)
