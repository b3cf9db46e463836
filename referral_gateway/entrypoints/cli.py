"""`referral-gateway` (or `python -m referral_gateway.entrypoints.cli`).

Its own commands: serve, replay, reprocess, referrals, counts, errors, quarantine, demo. The
command modules beside it, each `add_parsers` + `commands` (`commands.py`), add tokens, report,
report-push, hub, keys, audit, users and detection. What the commands run is built through the
composition root, `referral_gateway.wiring`.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import gc
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consent.errors import KeyRingError
from referral_gateway.config import ConfigError, Settings
from referral_gateway.entrypoints import (
    account_commands,
    consent_commands,
    detection_commands,
    outbox_commands,
    report_commands,
    token_commands,
)
from referral_gateway.entrypoints.allocator import limit_malloc_arenas
from referral_gateway.entrypoints.mllp_process import ListenerStartError, MllpProcess
from referral_gateway.observability.logs import configure_logging

if TYPE_CHECKING:
    from referral_gateway.wiring.gateway import Gateway

log = logging.getLogger("referral_gateway")


def _settings_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("settings (each also an RG_* environment variable)")
    g.add_argument("--data-dir", help="RG_DATA_DIR: where the SQLite file and key ring live")
    g.add_argument("--database-url", help="RG_DATABASE_URL: e.g. postgresql+psycopg://u:p@h/db")
    g.add_argument("--config-file", help="RG_CONFIG_FILE: site configuration (TOML)")
    g.add_argument("--keyring-file", help="RG_KEYRING_FILE: field encryption key ring")


def _settings(args: argparse.Namespace) -> Settings:
    names = [
        "data_dir",
        "database_url",
        "config_file",
        "keyring_file",
        "http_host",
        "http_port",
        "mllp_host",
        "mllp_port",
    ]
    return Settings.from_env().with_overrides(**{n: getattr(args, n, None) for n in names})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="referral-gateway",
        description="Teachable-moment referral gateway: ED feeds to youth-worker referrals.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run HTTP, the MLLP listener and the scheduler")
    _settings_args(serve)
    serve.add_argument("--http-host", help="RG_HTTP_HOST (default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="RG_HTTP_PORT (default 8080)")
    serve.add_argument("--mllp-host", help="RG_MLLP_HOST (default 127.0.0.1)")
    serve.add_argument("--mllp-port", type=int, help="RG_MLLP_PORT (default 2575)")
    serve.add_argument(
        "--demo", action="store_true", help="also drive a synthetic ED feed into this gateway"
    )

    replay = sub.add_parser(
        "replay",
        help="replay or backfill HL7 files and FHIR bulk export NDJSON files (or directories "
        "of them) through the same pipeline; a second run skips what was done",
    )
    _settings_args(replay)
    replay.add_argument("files", nargs="+", type=Path, help="files or directories (recursive)")
    replay.add_argument("--site", help="the site (ODS code) NDJSON files come from")
    replay.add_argument(
        "--sender", default="bulk-export", help="the name NDJSON files are stored under"
    )
    replay.add_argument("--no-progress", action="store_true")
    replay.add_argument("--json", action="store_true", help="the summary as JSON")

    reprocess = sub.add_parser("reprocess", help="run messages in the error store again")
    _settings_args(reprocess)
    reprocess.add_argument(
        "--id", type=int, action="append", dest="ids", help="only this message id (repeatable)"
    )

    referrals = sub.add_parser("referrals", help="current referrals, no identifiable fields")
    _settings_args(referrals)
    referrals.add_argument("--json", action="store_true", help="JSON instead of a table")
    referrals.add_argument("--site")

    counts = sub.add_parser("counts", help="messages per sender per day")
    _settings_args(counts)
    counts.add_argument("--json", action="store_true")
    counts.add_argument("--since", type=date.fromisoformat)

    errors = sub.add_parser("errors", help="list the error store")
    _settings_args(errors)
    errors.add_argument("--json", action="store_true")

    held = sub.add_parser(
        "quarantine", help="HL7 messages held because their source is not one the site lists"
    )
    held_sub = held.add_subparsers(dest="quarantine_command", required=True)
    held_list = held_sub.add_parser("list", help="list the held messages")
    _settings_args(held_list)
    held_list.add_argument("--json", action="store_true")
    held_accept = held_sub.add_parser("accept", help="process held messages as if received")
    _settings_args(held_accept)
    which = held_accept.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, action="append", dest="ids", help="repeatable")
    which.add_argument("--all", action="store_true", help="every held message")

    token_commands.add_parsers(sub, _settings_args)
    report_commands.add_parsers(sub, _settings_args)

    demo = sub.add_parser("demo", help="drive a synthetic ED feed into a running gateway")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=2575)
    demo.add_argument("--count", type=int, default=200, help="attendances to send (0 = for ever)")
    demo.add_argument("--rate", type=float, default=5.0, help="messages per second")
    demo.add_argument("--seed", type=int, default=None)

    consent_commands.add_parsers(sub, _settings_args)  # keys ..., audit verify

    account_commands.add_parsers(sub, _settings_args)
    detection_commands.add_parsers(sub, _settings_args)  # detection evaluate
    outbox_commands.add_parsers(sub, _settings_args)  # services ..., outbox list|retry
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure_logging(Settings.from_env().log_format)  # RG_LOG_FORMAT: text or json
        handler = _COMMANDS[args.command]
        return handler(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyRingError as exc:
        print(f"key ring error: {exc}", file=sys.stderr)
        return 2
    except ListenerStartError as exc:
        print(f"the MLLP listener could not start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    lock = _one_serve_per_data_dir(settings.data_dir)
    if lock is None:
        print(
            f"another `referral-gateway serve` is running with the data directory "
            f"{settings.data_dir}; stop it first (two would each run a pipeline and the "
            "scheduled jobs)",
            file=sys.stderr,
        )
        return 2
    limit_malloc_arenas()  # before the listeners start their threads: see allocator.py
    try:
        import uvloop  # part of uvicorn[standard]: a faster event loop for MLLP and HTTP
    except ImportError:  # pragma: no cover - uvloop has no wheel for this platform
        asyncio.run(_serve(settings, demo=args.demo))
    else:
        uvloop.run(_serve(settings, demo=args.demo))
    os.close(lock)
    return 0


def _one_serve_per_data_dir(data_dir: Path) -> int | None:
    """An exclusive lock on `<data dir>/serve.lock`, held until the process ends (the
    kernel lets go of it even after SIGKILL); None if another `serve` holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "serve.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


async def _serve(settings: Settings, *, demo: bool) -> None:
    import secrets

    import uvicorn

    from referral_gateway.entrypoints.jobs import start_jobs
    from referral_gateway.entrypoints.pipeline_process import PipelineProcess
    from referral_gateway.observability.metrics import build_metrics
    from referral_gateway.web.http_server import http_config
    from referral_gateway.wiring.gateway import build_gateway
    from referral_gateway.wiring.reports import build_reports
    from referral_gateway.wiring.web import build_app

    runner = PipelineProcess if settings.pipeline_process else None
    gateway = build_gateway(settings, pipeline_process=runner).start()
    metrics = build_metrics(gateway.engine, gateway.clock)
    # its own process: an HL7 ACK waits for its commit, never for this process's FHIR work
    mllp = MllpProcess(
        settings, on_stored=gateway.worker.wake, on_replied=metrics.ack_latency.observe
    )
    gateway.processed_listeners.append(mllp.completed)  # for application ACKs
    try:
        mllp.start()
    except BaseException:
        gateway.stop()
        raise
    scheduler = start_jobs(gateway)  # retention, escalation
    reports = build_reports(settings, gateway.engine, gateway.clock, scheduler=scheduler)
    reports.jobs.start()  # monthly push at 06:00 London on the 1st, catch-up, retries
    ops_token = settings.ops_token or (secrets.token_urlsafe(24) if demo else None)
    app = build_app(
        gateway,
        ops_token=ops_token,
        reports=reports,
        metrics=metrics,
        listeners={"mllp": lambda: mllp.serving},
        share_live_events=True,
    )
    server = uvicorn.Server(http_config(app, settings))
    log.info(
        "MLLP listening on %s:%d, HTTP on http://%s:%d/",
        settings.mllp_host,
        mllp.port,
        settings.http_host,
        settings.http_port,
    )
    if ops_token is None:
        log.info("/api/ops/* refuse every request: set RG_OPS_TOKEN to turn them on")
    gc.freeze()  # everything built so far lives for the whole run: keep it out of GC passes
    tasks: list[asyncio.Task[Any]] = [asyncio.create_task(server.serve())]
    stop_demo = threading.Event()
    if demo:
        from adapters.hl7.demo import run_demo_feed
        from referral_gateway.entrypoints.account_commands import ensure_demo_accounts

        print(f"\nDemo: open http://{settings.http_host}:{settings.http_port}/ and sign in as")
        for username, password in ensure_demo_accounts(settings):
            print(f"  {username:16} password {password}")
        print("A synthetic ED feed (site RXX01) is streaming in; candidates appear live.")
        if not settings.ops_token:
            print(f"Operations API for this run: Authorization: Bearer {ops_token}")
        print()
        tasks.append(
            asyncio.create_task(
                asyncio.to_thread(
                    run_demo_feed, "127.0.0.1", mllp.port, count=0, rate=2.0, stop=stop_demo
                )
            )
        )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    try:
        await tasks[0]
    finally:
        stop_demo.set()
        for t in tasks[1:]:
            t.cancel()
        await mllp.stop_async()
        scheduler.shutdown(wait=False)
        gateway.stop()


def _cmd_replay(args: argparse.Namespace) -> int:
    from referral_gateway.entrypoints.replay import ReplayError, run_replay

    settings = _settings(args)
    try:
        summary = run_replay(
            settings,
            args.files,
            site=args.site,
            sender=args.sender,
            progress=not args.no_progress,
        )
    except ReplayError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary.as_dict(), indent=2) if args.json else summary.text())
    return 1 if summary.files_failed else 0


@contextmanager
def _gateway(args: argparse.Namespace) -> Iterator[Gateway]:
    """The gateway for a one-off command: no listeners, no new key ring, stopped afterwards."""
    from referral_gateway.wiring.gateway import build_gateway

    gateway = build_gateway(_settings(args), create_keyring=False)
    try:
        yield gateway
    finally:
        gateway.stop()


def _print_rows(
    rows: list[dict[str, Any]],
    as_json: bool,
    line: Callable[[dict[str, Any]], str],
    header: str | None = None,
) -> None:
    """A listing command's output: the rows as JSON, or one line each under a header."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if header is not None:
        print(header)
    for row in rows:
        print(line(row))


def _cmd_reprocess(args: argparse.Namespace) -> int:
    from referral_gateway.storage.views import error_store

    with _gateway(args) as gateway:
        n = gateway.inbox.requeue_errors(ids=args.ids)
        done = gateway.local_pipeline().drain()
        left = len(error_store(gateway.engine))
    print(f"requeued {n} message(s); processed {done}; {left} still in the error store")
    return 0


def _cmd_referrals(args: argparse.Namespace) -> int:
    from referral_gateway.storage.views import referral_summaries

    with _gateway(args) as gateway:
        rows = referral_summaries(gateway.engine, site=args.site)
    _print_rows(
        rows,
        args.json,
        lambda r: (
            f"{r['id']:36}  {r['site']:8} {r['age'] or '':>3}  "
            f"{r['injury_category'] or '':12} {r['status']:14} {r['detection_rule']}"
        ),
        header=f"{'id':36}  {'site':8} {'age':>3}  {'injury':12} {'status':14} rule",
    )
    return 0


def _cmd_counts(args: argparse.Namespace) -> int:
    from referral_gateway.storage.views import METRICS, feed_counts

    with _gateway(args) as gateway:
        rows = feed_counts(gateway.engine, since=args.since)
    _print_rows(
        rows,
        args.json,
        lambda r: (
            f"{r['day']:10} {r['channel']:6} {r['sender'][:30]:30} "
            + " ".join(f"{r[m]:>9}" for m in METRICS)
        ),
        header=f"{'day':10} {'channel':6} {'sender':30} " + " ".join(f"{m:>9}" for m in METRICS),
    )
    return 0


def _cmd_errors(args: argparse.Namespace) -> int:
    from referral_gateway.storage.views import error_store

    with _gateway(args) as gateway:
        rows = error_store(gateway.engine)
    _print_rows(
        rows,
        args.json,
        lambda r: (
            f"#{r['id']} {r['received_at']} {r['sender']} {r['message_type']} "
            f"[{r['stage']}] {r['error']}"
        ),
    )
    return 0


def _cmd_quarantine(args: argparse.Namespace) -> int:
    from referral_gateway.storage.views import quarantine

    with _gateway(args) as gateway:
        if args.quarantine_command == "list":
            rows = quarantine(gateway.engine)
        else:
            n = gateway.inbox.release_quarantined(ids=None if args.all else args.ids)
            done = gateway.local_pipeline().drain()
            left = len(quarantine(gateway.engine))
    if args.quarantine_command == "list":
        _print_rows(
            rows,
            args.json,
            lambda r: (
                f"#{r['id']} {r['received_at']} site {r['site']} {r['sender']} "
                f"{r['message_type']}: {r['why']}"
            ),
        )
        return 0
    print(f"accepted {n} held message(s); processed {done}; {left} still held")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from adapters.hl7.demo import run_demo_feed

    summary = run_demo_feed(args.host, args.port, count=args.count, rate=args.rate, seed=args.seed)
    print(json.dumps(summary, indent=2))
    return 0


_COMMANDS = {
    "serve": _cmd_serve,
    "replay": _cmd_replay,
    "reprocess": _cmd_reprocess,
    "referrals": _cmd_referrals,
    "counts": _cmd_counts,
    "errors": _cmd_errors,
    "quarantine": _cmd_quarantine,
    "demo": _cmd_demo,
    # the command modules, each `add_parsers` + `commands` (see entrypoints/commands.py)
    **token_commands.commands(_settings),
    **report_commands.commands(_settings),
    **consent_commands.commands(_settings),
    **account_commands.commands(_settings),
    **detection_commands.commands(_settings),
    **outbox_commands.commands(_settings),
}

if __name__ == "__main__":
    raise SystemExit(main())
