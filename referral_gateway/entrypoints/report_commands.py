"""Report commands of `referral-gateway`:

    report --month YYYY-MM [--site ODS] [--format csv|json|html] [--raw] [--istv] [--output F]
    report-push [--retry-refused]   freeze and push the newest finished month now (what
                       06:00 on the 1st does); --retry-refused also sends months the hub
                       refused for good
    report-reissue --site ODS --month YYYY-MM --reason "..."
                       freeze the month again as a correction (the next version) and push it
    hub                serve the programme hub alone (needs RG_HUB_KEYS_FILE); its readers
                       sign in with accounts made by `users add` on the hub's data directory

Whoever can run these can read the database, so `--raw` (exact counts) is theirs to ask for;
the output says so on every row.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from referral_gateway.config import Settings
from referral_gateway.domain.errors import ReportMonthError
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.entrypoints.commands import Command, SettingsArgs, SettingsFor

if TYPE_CHECKING:
    from referral_gateway.services.report_push import PushOutcome


def add_parsers(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    settings_args: SettingsArgs,
) -> None:
    report = sub.add_parser("report", help="a month's throughput report (suppressed counts)")
    settings_args(report)
    report.add_argument("--month", required=True, help="calendar month, YYYY-MM (London)")
    report.add_argument("--site", help="one site's ODS code (default: every site)")
    report.add_argument("--format", choices=["csv", "json", "html"], default="csv")
    report.add_argument(
        "--raw",
        action="store_true",
        help="exact counts, no disclosure control: administrators only",
    )
    report.add_argument(
        "--istv",
        action="store_true",
        help="the Cardiff Model ISTV extract (CSV) instead of the report",
    )
    report.add_argument("--output", type=Path, help="file to write (default: standard output)")

    push = sub.add_parser("report-push", help="freeze and push the newest finished month now")
    settings_args(push)
    push.add_argument(
        "--retry-refused",
        action="store_true",
        help="also send months the hub refused for good (after fixing the hub's side)",
    )

    reissue = sub.add_parser(
        "report-reissue",
        help="re-issue a frozen month as a correction (a new version, with its reason)",
    )
    settings_args(reissue)
    reissue.add_argument("--site", required=True, help="the site's ODS code")
    reissue.add_argument("--month", required=True, help="calendar month, YYYY-MM (London)")
    reissue.add_argument(
        "--reason", required=True, help="what the correction corrects (shown at the hub)"
    )

    hub = sub.add_parser("hub", help="serve the programme hub alone (signed site reports)")
    settings_args(hub)
    hub.add_argument("--http-host", help="RG_HTTP_HOST (default 127.0.0.1)")
    hub.add_argument("--http-port", type=int, help="RG_HTTP_PORT (default 8080)")
    hub.add_argument("--hub-keys-file", help="RG_HUB_KEYS_FILE: the sites' signing keys (TOML)")


def commands(settings_for: SettingsFor) -> dict[str, Command]:
    def run(args: argparse.Namespace) -> int:
        return run_report_command(args, settings_for(args))

    return {"report": run, "report-push": run, "report-reissue": run, "hub": run}


def run_report_command(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "hub_keys_file", None):
        settings = settings.with_overrides(hub_keys_file=args.hub_keys_file)
    if args.command == "report":
        return _report(args, settings)
    if args.command == "report-push":
        return _push(settings, retry_refused=args.retry_refused)
    if args.command == "report-reissue":
        return _reissue(args, settings)
    return _hub(settings)


def _now() -> datetime:
    return datetime.now(UTC)


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from referral_gateway.report_formats.files import istv_csv, reports_csv, reports_json
    from referral_gateway.web.render import make_templates
    from referral_gateway.web.report_pages import standalone_page
    from referral_gateway.wiring.database import open_database
    from referral_gateway.wiring.reports import report_service

    try:
        month = ReportMonth.parse(args.month)
    except ReportMonthError as exc:
        print(f"--month: {exc}", file=sys.stderr)
        return 2
    engine = open_database(settings)
    try:
        service = report_service(engine)
        sites = service.sites()
        if args.site:
            if args.site not in sites:
                print(f"no attendances from site {args.site}", file=sys.stderr)
                return 1
            sites = [args.site]
        if args.istv:
            if not args.site:
                print(
                    "--istv needs --site: the extract goes to one site's partnership",
                    file=sys.stderr,
                )
                return 2
            data = istv_csv(service.istv(args.site, month))
        elif args.format == "csv":
            data = reports_csv([service.published(s, month, raw=args.raw) for s in sites])
        elif args.format == "json":
            data = reports_json(
                [service.published(s, month, raw=args.raw) for s in sites], generated_at=_now()
            )
        else:
            trends = {s: service.trend(s, month, raw=args.raw) for s in sites}
            data = standalone_page(
                make_templates(ZoneInfo(settings.timezone)),
                month=month,
                reports=[trends[s][-1] for s in sites],
                trends=trends,
                generated_at=_now(),
                raw=args.raw,
            ).encode("utf-8")
    finally:
        engine.dispose()
    if args.output:
        args.output.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def _push(settings: Settings, *, retry_refused: bool = False) -> int:
    from referral_gateway.wiring.database import open_database
    from referral_gateway.wiring.reports import build_reports

    engine = open_database(settings)
    try:
        reports = build_reports(settings, engine, _now)
        outcomes = reports.push.run()
        if retry_refused:
            outcomes += reports.push.retry_unsent(force=True)
    finally:
        engine.dispose()
    return _print_outcomes(outcomes)


def _reissue(args: argparse.Namespace, settings: Settings) -> int:
    from referral_gateway.services.errors import ReissueRefused
    from referral_gateway.wiring.database import open_database
    from referral_gateway.wiring.reports import build_reports

    try:
        month = ReportMonth.parse(args.month)
    except ReportMonthError as exc:
        print(f"--month: {exc}", file=sys.stderr)
        return 2
    engine = open_database(settings)
    try:
        reports = build_reports(settings, engine, _now)
        outcome = reports.push.reissue(args.site.strip().upper(), month, reason=args.reason)
    except ReissueRefused as exc:
        print(f"not re-issued: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return _print_outcomes([outcome])


def _print_outcomes(outcomes: list[PushOutcome]) -> int:
    print(
        json.dumps(
            [
                {
                    "site": o.site,
                    "month": str(o.month),
                    "version": o.version,
                    "result": o.result.value,
                    "report_id": o.report_id,
                    "detail": o.detail,
                }
                for o in outcomes
            ],
            indent=2,
        )
    )
    return 0 if all(o.result.value not in ("failed", "refused") for o in outcomes) else 1


def _hub(settings: Settings) -> int:
    import uvicorn

    from referral_gateway.wiring.reports import build_hub_alone

    app, engine = build_hub_alone(settings, _now)
    try:
        uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level="warning")
    finally:
        engine.dispose()
    return 0
