"""The web pages' settings are read one way, with every other setting: `Settings.from_env`
(RG_* variables over defaults), and the pages' options are built from Settings."""

from __future__ import annotations

import pytest

from referral_gateway.config import ConfigError, Settings
from referral_gateway.web.options import WebOptions
from referral_gateway.wiring.gateway import build_gateway
from referral_gateway.wiring.web import build_app

ENVIRONMENT = {
    "RG_COOKIE_SECURE": "true",
    "RG_SESSION_IDLE_MINUTES": "15",
    "RG_SESSION_LIFETIME_HOURS": "8",
    "RG_ESCALATE_AFTER_MINUTES": "10",
    "RG_ESCALATION_INTERVAL_SECONDS": "20",
    "RG_TIMEZONE": "Europe/Dublin",
}


def test_the_web_settings_come_from_the_rg_environment_like_every_other_setting():
    settings = Settings.from_env(ENVIRONMENT)

    options = WebOptions.from_settings(settings)

    assert (
        options.cookie_secure,
        options.session_idle_minutes,
        options.session_lifetime_hours,
        options.escalate_after_minutes,
        options.timezone,
    ) == (True, 15, 8, 10, "Europe/Dublin")
    assert settings.escalation_interval_seconds == 20


def test_without_the_variables_the_pages_keep_todays_defaults():
    assert WebOptions.from_settings(Settings.from_env({})) == WebOptions()


def test_the_web_options_read_no_environment_of_their_own():
    assert not hasattr(WebOptions, "from_env")


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("RG_COOKIE_SECURE", "maybe", "RG_COOKIE_SECURE must be true or false"),
        ("RG_SESSION_IDLE_MINUTES", "half an hour", "RG_SESSION_IDLE_MINUTES must be a whole"),
        ("RG_ESCALATE_AFTER_MINUTES", "0", "RG_ESCALATE_AFTER_MINUTES must be at least 1"),
        ("RG_ESCALATION_INTERVAL_SECONDS", "0", "RG_ESCALATION_INTERVAL_SECONDS must be at least"),
        ("RG_TIMEZONE", "Mars/Olympus_Mons", "RG_TIMEZONE 'Mars/Olympus_Mons' is not a known"),
    ],
)
def test_a_malformed_web_setting_is_refused_naming_the_variable(variable, value, said):
    with pytest.raises(ConfigError, match=said):
        Settings.from_env({variable: value})


@pytest.mark.parametrize("word", ["1", "yes", "ON", " true "])
def test_a_yes_in_any_usual_spelling_turns_a_flag_on(word):
    assert Settings.from_env({"RG_COOKIE_SECURE": word}).cookie_secure is True


def test_the_app_takes_its_web_options_from_the_gateways_settings(tmp_path):
    gateway = build_gateway(
        Settings(data_dir=tmp_path, session_idle_minutes=5, timezone="Europe/Dublin")
    )
    try:
        options = build_app(gateway).state.web.options
    finally:
        gateway.stop()
    assert (options.session_idle_minutes, options.timezone) == (5, "Europe/Dublin")
