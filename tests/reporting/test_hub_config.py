"""The hub's configuration file: the sites' keys and the sites expected to report."""

import pytest

from referral_gateway.services.errors import HubConfigError
from referral_gateway.services.hub import load_hub_config

KEYS = (
    '[[key]]\nid = "b-1"\nsite = "RXB02"\nsecret = "b-secret-of-at-least-32-characters!!"\n\n'
    '[[key]]\nid = "a-1"\nsite = "RXA01"\nsecret = "a-secret-of-at-least-32-characters!!"\n'
)


def test_without_a_list_every_site_with_a_key_is_expected(tmp_path):
    path = tmp_path / "hub.toml"
    path.write_text(KEYS)
    assert load_hub_config(path).expected_sites == ("RXA01", "RXB02")


def test_the_listed_sites_are_expected_in_their_order_keyed_or_not(tmp_path):
    path = tmp_path / "hub.toml"
    path.write_text('expected_sites = ["RXC03", "RXA01"]\n\n' + KEYS)
    config = load_hub_config(path)
    assert config.expected_sites == ("RXC03", "RXA01")
    assert sorted(config.keys) == ["a-1", "b-1"]


@pytest.mark.parametrize(
    "listed",
    ['expected_sites = "RXA01"', 'expected_sites = ["RXA01", "RXA01"]', "expected_sites = [1]"],
)
def test_a_malformed_list_of_expected_sites_is_refused_naming_it(tmp_path, listed):
    path = tmp_path / "hub.toml"
    path.write_text(f"{listed}\n\n{KEYS}")
    with pytest.raises(HubConfigError, match="expected_sites"):
        load_hub_config(path)
