"""`referral-gateway report` on a small synthetic database."""

import csv
import io
import json
from datetime import timedelta

from referral_gateway.entrypoints.cli import main
from referral_gateway.storage.database import make_engine, migrate
from tests.reporting.builders import at
from tests.reporting.spine_rows import Visit, assault, write

SITE = "RXX01"


def database(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    migrate(engine)
    write(
        engine,
        [
            *[assault(SITE, at("2024-10-02T10:00") + timedelta(hours=i)) for i in range(12)],
            assault(SITE, at("2024-10-05T21:30"), age=40, injury="firearm"),
            *[Visit(SITE, at("2024-10-06T10:00") + timedelta(minutes=i)) for i in range(30)],
        ],
    )
    engine.dispose()
    return str(tmp_path)


def run(tmp_path, *args):
    out = tmp_path / "out"
    assert (
        main(
            [
                "report",
                "--data-dir",
                database(tmp_path),
                "--month",
                "2024-10",
                "--output",
                str(out),
                *args,
            ]
        )
        == 0
    )
    return out.read_bytes()


def test_csv_report_for_a_month(tmp_path):
    rows = list(csv.DictReader(io.StringIO(run(tmp_path).decode("utf-8-sig"))))
    values = {(r["measure"], r["breakdown"], r["category"]): r["value"] for r in rows}
    assert values[("screened", "", "")] == "45"  # 12 + 1 + 30 = 43
    assert values[("candidates", "", "")] == "10"  # 12


def test_raw_json_for_administrators(tmp_path):
    data = json.loads(run(tmp_path, "--format", "json", "--raw"))
    figures = {
        f["measure"]: f["value"] for f in data["reports"][0]["figures"] if not f["breakdown"]
    }
    assert (figures["screened"], figures["candidates"]) == (43, 12)


def test_html_report_is_a_standalone_page_with_charts(tmp_path):
    page = run(tmp_path, "--format", "html").decode()
    assert page.startswith("<!doctype html>") and page.count("<svg") == 2


def test_istv_extract_for_one_site(tmp_path):
    rows = list(
        csv.DictReader(io.StringIO(run(tmp_path, "--istv", "--site", SITE).decode("utf-8-sig")))
    )
    assert len(rows) == 13  # every assault, the adult's too
    assert ("2024-10-05", "22:30", "firearm") in {
        (r["arrival_date"], r["arrival_time"], r["method"]) for r in rows
    }


def test_a_malformed_month_is_refused(tmp_path):
    assert main(["report", "--data-dir", str(tmp_path), "--month", "2024-13"]) == 2


def test_the_standalone_page_gives_its_time_in_the_configured_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("RG_TIMEZONE", "Asia/Tokyo")  # +09:00 all year; London never is
    page = run(tmp_path, "--format", "html").decode()
    generated = page.split("Generated ", 1)[1].split("<", 1)[0].split(".", 1)[0]
    assert generated.endswith("+09:00")


def test_report_reissue_refuses_a_month_never_frozen_and_says_why(tmp_path, capsys, monkeypatch):
    for name in ("RG_PROGRAMME_ENDPOINT", "RG_PROGRAMME_KEY_ID", "RG_PROGRAMME_SECRET"):
        monkeypatch.delenv(name, raising=False)
    args = ["--data-dir", database(tmp_path), "--site", SITE, "--month", "2024-10"]
    assert main(["report-reissue", *args, "--reason", "late A08 updates"]) == 1
    assert "has not been frozen yet" in capsys.readouterr().err
    assert main(["report-reissue", *args[:-1], "2024-13", "--reason", "x"]) == 2
