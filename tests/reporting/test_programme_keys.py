"""Which key signs each site's push: `[sites.X.programme]` tables, their key files, and the
default key (RG_PROGRAMME_KEY_ID) for sites without one."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from referral_gateway.config import ConfigError, Settings
from referral_gateway.domain.errors import SiteConfigError
from referral_gateway.domain.programme_keys import ProgrammeKeyRef, programme_key_refs
from referral_gateway.domain.sites import parse_site_config
from referral_gateway.wiring.reports import push_sender
from tests.conftest import FixedClock

ENDPOINT = "https://hub.example.invalid/api/hub/reports"
ROOT = Path(__file__).resolve().parents[2]


def site_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return str(path)


TWO_SITES = """
[sites.RXX01.programme]
key_id = "rxx01-2026"
key_file = "keys/rxx01.key"

[sites.ryy02.programme]
key_id = "ryy02-2026"
key_file = "{absolute}"
"""


def test_each_site_table_names_its_key_and_the_site_file_still_parses():
    data = tomllib.loads(TWO_SITES.format(absolute="/etc/rg/ryy02.key"))
    assert programme_key_refs(data) == {
        "RXX01": ProgrammeKeyRef("RXX01", "rxx01-2026", "keys/rxx01.key"),
        "RYY02": ProgrammeKeyRef("RYY02", "ryy02-2026", "/etc/rg/ryy02.key"),
    }
    assert len(parse_site_config(data)) == 2  # `programme` is a known key of a site table


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('key_id = "k"', "sites.RXX01.programme.key_file"),
        ('key_file = "f"', "sites.RXX01.programme.key_id"),
        ('key_id = "k"\nkey_file = "f"\nsecret = "s"', "sites.RXX01.programme.secret: unknown"),
    ],
)
def test_a_malformed_table_is_refused_naming_the_key(table: str, problem: str):
    with pytest.raises(SiteConfigError, match=problem):
        programme_key_refs(tomllib.loads(f"[sites.RXX01.programme]\n{table}\n"))


def test_one_key_for_two_sites_is_refused_as_the_hub_would():
    text = '[sites.A01.programme]\nkey_id = "k"\nkey_file = "a"\n'
    text += '[sites.B02.programme]\nkey_id = "k"\nkey_file = "b"\n'
    with pytest.raises(SiteConfigError, match="the hub lets a key report for one site only"):
        programme_key_refs(tomllib.loads(text))


def test_the_sender_reads_each_sites_secret_relative_to_the_site_file(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "rxx01.key").write_text("x" * 40 + "\n")
    (tmp_path / "ryy02.key").write_text("y" * 40)
    config = site_file(tmp_path, TWO_SITES.format(absolute=tmp_path / "ryy02.key"))
    sender = push_sender(Settings(programme_endpoint=ENDPOINT, config_file=config), FixedClock())
    assert sender is not None and sender.key is None
    assert (sender.key_for("RXX01").key_id, sender.key_for("RXX01").secret) == (
        "rxx01-2026",
        b"x" * 40,
    )
    assert sender.key_for("RYY02").key_id == "ryy02-2026"
    assert sender.key_for("RZZ03") is None  # no table and no default: refused when pushed
    assert "x" * 40 not in repr(sender.site_keys)


def test_sites_without_a_table_use_the_default_key(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "rxx01.key").write_text("x" * 40)
    config = site_file(tmp_path, TWO_SITES.split("[sites.ryy02")[0])
    settings = Settings(
        programme_endpoint=ENDPOINT,
        programme_key_id="default-1",
        programme_secret="d" * 32,
        config_file=config,
    )
    sender = push_sender(settings, FixedClock())
    assert sender.key_for("RXX01").key_id == "rxx01-2026"
    assert sender.key_for("RYY02").key_id == "default-1"
    assert sender.configuration_of("RXX01") != sender.configuration_of("RYY02")


def test_an_unreadable_or_short_key_file_stops_the_gateway_with_the_site_named(tmp_path):
    config = site_file(tmp_path, TWO_SITES.split("[sites.ryy02")[0])
    settings = Settings(programme_endpoint=ENDPOINT, config_file=config)
    with pytest.raises(ConfigError, match=r"sites\.RXX01\.programme\.key_file: cannot read"):
        push_sender(settings, FixedClock())
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "rxx01.key").write_text("short-secret")
    with pytest.raises(ConfigError, match=r"sites\.RXX01\.programme\.key_file") as raised:
        push_sender(settings, FixedClock())
    assert "short-secret" not in str(raised.value)


def test_an_endpoint_with_no_key_at_all_is_refused():
    with pytest.raises(ConfigError, match="RG_PROGRAMME_KEY_ID and RG_PROGRAMME_SECRET"):
        push_sender(Settings(programme_endpoint=ENDPOINT), FixedClock())


def test_the_example_site_file_gives_each_of_its_two_sites_a_key():
    data = tomllib.loads((ROOT / "deploy" / "gateway.example.toml").read_text("utf-8"))
    refs = programme_key_refs(data)
    assert sorted(refs) == ["RXX01", "RYY02"]
    assert len({r.key_id for r in refs.values()}) == 2
