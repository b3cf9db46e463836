from datetime import UTC, datetime, time, timedelta

import pytest

from referral_gateway.domain.errors import SiteConfigError
from referral_gateway.domain.feed_silence import (
    Feed,
    SilencePattern,
    SilencePatterns,
    parse_silence_patterns,
    silence_changes,
)

# 2026-01-14 is in GMT: local time equals UTC
NOON = datetime(2026, 1, 14, 12, 0, tzinfo=UTC)
TWO_AM = datetime(2026, 1, 14, 2, 0, tzinfo=UTC)


def feed(last: datetime, site: str = "RXA01", sender: str = "EPIC^RXA01") -> Feed:
    return Feed("hl7v2", sender, site, last)


def test_by_day_a_feed_may_be_quiet_for_thirty_minutes_and_no_longer():
    pattern = SilencePattern()
    assert not pattern.is_silent(NOON - timedelta(minutes=30), NOON)
    assert pattern.is_silent(NOON - timedelta(minutes=31), NOON)


def test_at_night_a_feed_may_be_quiet_for_two_hours():
    pattern = SilencePattern()
    assert not pattern.is_silent(TWO_AM - timedelta(minutes=119), TWO_AM)
    assert pattern.is_silent(TWO_AM - timedelta(minutes=121), TWO_AM)


def test_the_day_is_read_in_local_time_so_summer_time_moves_it():
    july_0630_utc = datetime(2026, 7, 14, 6, 30, tzinfo=UTC)  # 07:30 in London
    assert SilencePattern().allowance_at(july_0630_utc) == timedelta(minutes=30)
    january_0630_utc = datetime(2026, 1, 14, 6, 30, tzinfo=UTC)  # 06:30 in London
    assert SilencePattern().allowance_at(january_0630_utc) == timedelta(hours=2)


def test_the_alarm_is_raised_once_and_cleared_when_messages_resume():
    patterns = SilencePatterns()
    quiet = feed(NOON - timedelta(minutes=45))

    raised = silence_changes([quiet], [], patterns, NOON)
    assert [(c.feed.sender, c.raised) for c in raised] == [("EPIC^RXA01", True)]
    assert silence_changes([quiet], [("hl7v2", "EPIC^RXA01")], patterns, NOON) == []

    spoke = feed(NOON - timedelta(minutes=1))
    cleared = silence_changes([spoke], [("hl7v2", "EPIC^RXA01")], patterns, NOON)
    assert [(c.feed.sender, c.raised) for c in cleared] == [("EPIC^RXA01", False)]


def test_a_site_file_sets_its_own_pattern_and_other_sites_keep_the_default():
    patterns = parse_silence_patterns(
        {
            "sites": {
                "RXA01": {
                    "name": "A",
                    "feed_silence": {
                        "day_starts": "08:00",
                        "day_ends": "20:00",
                        "day_minutes": 10,
                        "night_minutes": 240,
                    },
                },
                "RXB02": {"feed_silence": {"enabled": False}},
            }
        }
    )
    a = patterns.for_site("RXA01")
    assert (a.day_starts, a.day_ends) == (time(8), time(20))
    assert a.is_silent(NOON - timedelta(minutes=11), NOON)
    assert not patterns.for_site("RXB02").is_silent(NOON - timedelta(days=3), NOON)
    assert patterns.for_site("RXC03") == SilencePattern()


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"day_minutes": 0}, "day_minutes"),
        ({"night_minutes": "two hours"}, "night_minutes"),
        ({"day_starts": "seven"}, "day_starts"),
        ({"quiet_minutes": 5}, "quiet_minutes"),
    ],
)
def test_a_malformed_pattern_is_refused_naming_its_key(table, named):
    with pytest.raises(SiteConfigError, match=named):
        parse_silence_patterns({"sites": {"RXA01": {"feed_silence": table}}})


def test_the_example_site_file_sets_a_pattern_the_gateway_reads():
    from pathlib import Path

    from referral_gateway.config import Settings
    from referral_gateway.wiring.gateway import load_silence_patterns

    example = Path(__file__).parents[2] / "deploy" / "gateway.example.toml"
    patterns = load_silence_patterns(Settings(config_file=str(example)))
    assert patterns.for_site("RXX01").night_allowance == timedelta(minutes=120)


def test_a_malformed_pattern_in_the_site_file_is_a_configuration_error(tmp_path):
    from referral_gateway.config import ConfigError, Settings
    from referral_gateway.wiring.gateway import load_silence_patterns

    site_file = tmp_path / "sites.toml"
    site_file.write_text('[sites.RXA01.feed_silence]\nday_minutes = "soon"\n')
    with pytest.raises(ConfigError, match="day_minutes"):
        load_silence_patterns(Settings(config_file=str(site_file)))
