"""API tokens for sending systems (stored hashed, printed once) and the configuration of
the FHIR servers the gateway fetches from."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.fhir.auth import TokenAuthenticator
from adapters.fhir.errors import Forbidden, SourceConfigError, Unauthorized
from adapters.fhir.sources import SOURCE_KEYS, parse_fhir_sources
from referral_gateway.entrypoints.cli import main
from referral_gateway.storage.database import make_engine


def test_tokens_create_prints_the_token_once_and_stores_only_its_hash(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    code = main(
        [
            "tokens",
            "create",
            "--site",
            "rxx01",
            "--name",
            "rxx-ed-epr",
            "--database-url",
            url,
            "--data-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    token = out.strip().splitlines()[-1]
    assert token.startswith("rgf_") and len(token) > 40
    assert "RXX01" in out  # the site, upper-cased
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = [str(r) for r in conn.execute(text("select * from fhir_api_client"))]
    engine.dispose()
    assert len(rows) == 1 and token not in rows[0]
    assert main(["tokens", "list", "--database-url", url]) == 0
    listing = capsys.readouterr().out
    assert "rxx-ed-epr" in listing and token not in listing


def test_tokens_create_refuses_a_site_that_is_not_an_ods_code(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    assert (
        main(["tokens", "create", "--site", "not a site!", "--name", "x", "--database-url", url])
        == 2
    )
    assert "ODS" in capsys.readouterr().err


def test_a_second_client_with_the_same_name_is_refused(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    args = ["tokens", "create", "--site", "RXX01", "--name", "rxx", "--database-url", url]
    assert main(args) == 0
    assert main(args) == 2


def test_a_revoked_token_stops_working_once_the_cache_forgets_it(clients, clock):
    _, token = clients.create(name="ryy-ed", site="RYY01", now=clock())
    ticks = [0.0]
    auth = TokenAuthenticator(clients, cache_seconds=30, monotonic=lambda: ticks[0])
    assert auth(f"Bearer {token}").site == "RYY01"
    clients.revoke("ryy-ed", clock())
    assert auth(f"Bearer {token}").name == "ryy-ed"  # still cached
    ticks[0] = 31.0
    with pytest.raises(Forbidden):
        auth(f"Bearer {token}")


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer   "])
def test_anything_but_a_bearer_token_is_unauthorized(clients, header):
    with pytest.raises(Unauthorized):
        TokenAuthenticator(clients)(header)


def test_sources_are_read_from_the_site_configuration(tmp_path):
    secret = tmp_path / "rxx.token"
    secret.write_text("source-secret\n")
    [source] = parse_fhir_sources(
        {
            "sites": {"RXX01": {"name": "ignored here"}},
            "fhir": {
                "sources": {
                    "rxx-epr": {
                        "base_url": "https://fhir.rxx.example.nhs.uk/R4/",
                        "site": "rxx01",
                        "interval_seconds": 30,
                        "token_file": str(secret),
                    }
                }
            },
        }
    )
    assert (source.name, source.base_url, source.site) == (
        "rxx-epr",
        "https://fhir.rxx.example.nhs.uk/R4",
        "RXX01",
    )
    assert source.interval_seconds == 30 and source.poll is True
    assert source.bearer_token == "source-secret"
    assert "source-secret" not in repr(source)
    assert source.owns("https://fhir.rxx.example.nhs.uk/R4/Encounter/1")
    assert not source.owns("https://fhir.rxx.example.nhs.uk/R4evil/Encounter/1")


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"base_url": "ftp://x", "site": "RXX01"}, "base_url"),
        ({"base_url": "https://x", "site": "not ods"}, "site"),
        ({"base_url": "https://x", "site": "RXX01", "interval_seconds": 0}, "interval_seconds"),
        ({"base_url": "https://x", "site": "RXX01", "colour": "red"}, "colour"),
        ({"base_url": "https://x", "site": "RXX01", "token_file": "/nonexistent"}, "token_file"),
    ],
)
def test_a_bad_source_table_is_refused_naming_the_key(table, named):
    with pytest.raises(SourceConfigError) as caught:
        parse_fhir_sources({"fhir": {"sources": {"src": table}}})
    assert named in str(caught.value)


def test_backoff_ceiling_and_safety_net_pace_are_read_and_default_well_under_an_hour():
    hooked, quiet, polled = parse_fhir_sources(
        {
            "fhir": {
                "sources": {
                    "hooked": {"base_url": "https://x", "site": "RXX01", "poll": False},
                    "quiet": {
                        "base_url": "https://y",
                        "site": "RXX01",
                        "poll": False,
                        "safety_net_seconds": 0,
                    },
                    "polled": {
                        "base_url": "https://z",
                        "site": "RXX01",
                        "backoff_max_seconds": 120,
                    },
                }
            }
        }
    )
    assert (hooked.poll_every, quiet.poll_every, polled.poll_every) == (900, None, 60)
    assert (hooked.backoff_max_seconds, polled.backoff_max_seconds) == (600, 120)


@pytest.mark.parametrize(
    ("key", "value"), [("backoff_max_seconds", 0), ("safety_net_seconds", -1), ("page_size", 0)]
)
def test_a_backoff_ceiling_or_pace_out_of_range_is_refused(key, value):
    with pytest.raises(SourceConfigError) as caught:
        parse_fhir_sources(
            {"fhir": {"sources": {"src": {"base_url": "https://x", "site": "RXX01", key: value}}}}
        )
    assert key in str(caught.value)


def readme_sources_section() -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    start = readme.index("### FHIR sources")
    return readme[start : readme.index("\n## ", start)]


def test_the_readme_example_of_source_settings_is_a_configuration_the_gateway_reads():
    section = readme_sources_section()
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    data = tomllib.loads(example.replace('token_file = "/etc/referral-gateway/rxx-epr.token"', ""))
    polled, hooked = parse_fhir_sources(data)
    assert (polled.poll_every, hooked.poll_every) == (60, 900)
    assert hooked.backoff_max_seconds == 300


def test_the_readme_table_lists_exactly_the_settings_a_source_takes():
    rows = [line for line in readme_sources_section().splitlines() if line.startswith("| `")]
    documented = {line.split("`")[1] for line in rows}
    assert documented == set(SOURCE_KEYS)
