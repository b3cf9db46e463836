"""Senders known by configuration: facility codes, networks, certificate subjects."""

from __future__ import annotations

import tomllib

import pytest

from adapters.hl7.errors import SenderConfigError
from adapters.hl7.mllp import Peer
from adapters.hl7.senders import (
    Action,
    ApplicationAcks,
    SenderDirectory,
    parse_senders,
)
from referral_gateway.domain.sites import parse_site_config

SITE_FILE = """
[sites.RXX01]
name = "Example General ED"

[sites.RXX01.mllp]
facilities = ["RXX01", "RXX01UTC"]
networks = ["10.20.0.0/16", "2001:db8::/32"]
tls_subjects = ["CN=edis.rxx01.test, O=Example Trust"]
unknown_source = "quarantine"
application_acks = "return"
return_host = "10.20.1.5"
return_port = 2576

[sites.RYY02]
name = "Example Children's ED"
"""


def directory() -> SenderDirectory:
    return parse_senders(tomllib.loads(SITE_FILE))


def peer(host: str, subject: str = "") -> Peer:
    return Peer(host=host, port=40000, tls=bool(subject), certificate_subject=subject)


TRUSTED = "CN=edis.rxx01.test,O=Example Trust,C=GB"


def test_the_site_file_with_sender_tables_is_still_a_valid_site_configuration():
    sites = parse_site_config(tomllib.loads(SITE_FILE))
    assert sites.is_configured("RXX01") and sites.is_configured("RYY02")


def test_a_listed_facility_from_a_listed_network_and_certificate_is_taken_for_its_site():
    verdict = directory().identify("rxx01utc", peer("10.20.3.4", TRUSTED))
    assert verdict.action is Action.ACCEPT
    assert verdict.site == "RXX01"
    assert verdict.sender is not None
    assert verdict.sender.application_acks is ApplicationAcks.RETURN
    assert (verdict.sender.return_host, verdict.sender.return_port) == ("10.20.1.5", 2576)


def test_an_ipv6_address_in_a_listed_network_matches():
    assert directory().identify("RXX01", peer("2001:db8::7", TRUSTED)).action is Action.ACCEPT


@pytest.mark.parametrize(
    ("host", "subject"),
    [
        ("192.168.1.1", TRUSTED),  # outside every listed network
        ("10.20.3.4", "CN=edis.rxx01.test,O=Other Trust"),  # another organisation's cert
        ("10.20.3.4", ""),  # no certificate at all
    ],
)
def test_a_listed_facility_from_an_unlisted_source_follows_its_sites_unknown_source_rule(
    host, subject
):
    verdict = directory().identify("RXX01", peer(host, subject))
    assert verdict.action is Action.QUARANTINE
    assert verdict.site == "RXX01"


def test_a_site_without_an_mllp_table_sends_as_its_own_code_from_anywhere():
    verdict = directory().identify("RYY02", peer("192.0.2.9"))
    assert (verdict.action, verdict.site) == (Action.ACCEPT, "RYY02")


def test_a_facility_no_site_lists_is_rejected():
    assert directory().identify("RZZ99", peer("10.20.3.4", TRUSTED)).action is Action.REJECT


def test_messages_read_from_files_are_checked_by_facility_only():
    assert directory().identify("RXX01", None).action is Action.ACCEPT
    assert directory().identify("RZZ99", None).action is Action.REJECT


@pytest.mark.parametrize(
    "facility", ["X" * 5000, "X" * 33, "", "RXX 01", "RXX01<script>", "Ré01", "RXX\\T\\01"]
)
def test_a_facility_that_is_not_a_short_code_is_rejected_even_without_configuration(facility):
    verdict = SenderDirectory().identify(facility, peer("127.0.0.1"))
    assert verdict.action is Action.REJECT
    assert verdict.error_code == "102"


def test_without_configuration_a_facility_code_is_its_own_site():
    verdict = SenderDirectory().identify("RXX01", peer("203.0.113.8"))
    assert (verdict.action, verdict.site, verdict.sender) == (Action.ACCEPT, "RXX01", None)


def test_a_site_file_without_any_mllp_table_configures_no_senders():
    data = tomllib.loads('[sites.RXX01]\nname = "Example"\n')
    assert not parse_senders(data).configured


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ('networks = ["10.0.0.0/33"]', "networks"),
        ('tls_subjects = ["edis.rxx01.test"]', "tls_subjects"),
        ('unknown_source = "ignore"', "unknown_source"),
        ('application_acks = "return"', "return_host"),
        ('facilities = ["RXX 01"]', "facilities"),
        ("facilities = []", "facilities"),
        ('colour = "blue"', "colour"),
    ],
)
def test_a_malformed_sender_table_is_refused_naming_its_key(table, named):
    data = tomllib.loads(f"[sites.RXX01.mllp]\n{table}\n")
    with pytest.raises(SenderConfigError, match=named):
        parse_senders(data)


def test_one_facility_code_cannot_belong_to_two_sites():
    data = tomllib.loads(
        '[sites.RXX01.mllp]\nfacilities = ["SHARED"]\n[sites.RYY02.mllp]\nfacilities = ["shared"]\n'
    )
    with pytest.raises(SenderConfigError, match="SHARED"):
        parse_senders(data)


def test_the_example_site_file_in_deploy_is_a_valid_configuration():
    from pathlib import Path

    data = tomllib.loads(
        (Path(__file__).parents[2] / "deploy" / "gateway.example.toml").read_text("utf-8")
    )
    assert parse_senders(data).site_for_facility("RXX01UTC") is not None
    assert parse_site_config(data).is_configured("RYY02")
