"""Site rules, the site directory and parsing the [sites.*] tables of the configuration."""

from __future__ import annotations

from typing import Any

import pytest

from referral_gateway.domain.errors import SiteConfigError
from referral_gateway.domain.sites import SiteDirectory, SiteRules, parse_site_config


def test_unconfigured_site_gets_the_defaults_named_after_its_ods_code() -> None:
    rules = SiteDirectory().rules_for("RZZ")

    assert rules == SiteRules(ods_code="RZZ", name="RZZ")
    assert (rules.min_age, rules.max_age) == (11, 25)
    assert rules.valueset_version is None
    assert rules.assume_emergency_when_unknown is True


def test_configured_site_is_found_whatever_the_case() -> None:
    rxx = SiteRules(ods_code="RXX", name="Example General ED", min_age=12)
    directory = SiteDirectory({"RXX": rxx})

    assert directory.rules_for("rxx") is rxx
    assert directory.is_configured("RXX")
    assert not directory.is_configured("RYY")
    assert list(directory) == [rxx]


def test_directory_refuses_a_key_that_is_not_the_sites_code() -> None:
    with pytest.raises(ValueError, match="does not match"):
        SiteDirectory({"RXX": SiteRules(ods_code="RYY", name="Elsewhere")})


@pytest.mark.parametrize(("min_age", "max_age"), [(26, 25), (-1, 25), (11, 131)])
def test_site_rules_refuse_an_impossible_band(min_age: int, max_age: int) -> None:
    with pytest.raises(ValueError, match="min_age"):
        SiteRules(ods_code="RXX", name="x", min_age=min_age, max_age=max_age)


def test_band_is_inclusive_at_both_ends() -> None:
    rules = SiteRules(ods_code="RXX", name="x", min_age=11, max_age=25)

    assert [rules.age_in_band(age) for age in (10, 11, 25, 26)] == [False, True, True, False]


def test_full_site_table_is_parsed() -> None:
    config = {
        "server": {"port": 2575},  # other sections belong to other parts of the config
        "sites": {
            "RXX": {
                "name": "Example General ED",
                "min_age": 10,
                "max_age": 24,
                "valueset_version": "2026.1",
                "assume_emergency_when_unknown": False,
            },
            "r1h": {"name": "Another ED"},
        },
    }

    directory = parse_site_config(config, known_valueset_versions={"2026.1"})

    assert directory.rules_for("RXX") == SiteRules(
        ods_code="RXX",
        name="Example General ED",
        min_age=10,
        max_age=24,
        valueset_version="2026.1",
        assume_emergency_when_unknown=False,
    )
    assert directory.rules_for("R1H") == SiteRules(ods_code="R1H", name="Another ED")


def test_config_without_sites_gives_an_empty_directory() -> None:
    assert len(parse_site_config({})) == 0


def test_site_without_a_name_is_named_after_its_code() -> None:
    assert parse_site_config({"sites": {"RXX": {}}}).rules_for("RXX").name == "RXX"


@pytest.mark.parametrize(
    ("config", "names"),
    [
        ({"sites": ["RXX"]}, "sites"),
        ({"sites": {"RXX": "Example"}}, "sites.RXX"),
        ({"sites": {"R-X": {}}}, "sites.R-X"),
        ({"sites": {"RXX": {"max_agee": 25}}}, "sites.RXX.max_agee"),
        ({"sites": {"RXX": {"name": ""}}}, "sites.RXX.name"),
        ({"sites": {"RXX": {"min_age": "11"}}}, "sites.RXX.min_age"),
        ({"sites": {"RXX": {"min_age": 11.5}}}, "sites.RXX.min_age"),
        ({"sites": {"RXX": {"max_age": True}}}, "sites.RXX.max_age"),
        ({"sites": {"RXX": {"max_age": 200}}}, "sites.RXX.max_age"),
        ({"sites": {"RXX": {"min_age": 20, "max_age": 18}}}, "sites.RXX.min_age"),
        ({"sites": {"RXX": {"valueset_version": 2026}}}, "sites.RXX.valueset_version"),
        (
            {"sites": {"RXX": {"assume_emergency_when_unknown": "yes"}}},
            "sites.RXX.assume_emergency_when_unknown",
        ),
        ({"sites": {"RXX": {}, "rxx": {}}}, "sites.rxx"),
    ],
)
def test_bad_site_config_names_the_offending_key(config: dict[str, Any], names: str) -> None:
    with pytest.raises(SiteConfigError) as error:
        parse_site_config(config)

    assert str(error.value).startswith(f"{names}:")


def test_pinned_value_set_must_be_known_when_known_versions_are_given() -> None:
    config = {"sites": {"RXX": {"valueset_version": "2099.1"}}}

    with pytest.raises(
        SiteConfigError, match=r"sites\.RXX\.valueset_version: '2099\.1' is not a known"
    ):
        parse_site_config(config, known_valueset_versions=["2026.1"])
    assert parse_site_config(config).rules_for("RXX").valueset_version == "2099.1"
