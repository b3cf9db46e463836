"""Snapshots are canonical and checksummed; pushes are signed and checked."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from referral_gateway.domain.errors import ReportFormatError
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.domain.report_published import publish
from referral_gateway.domain.report_snapshot import (
    EnvelopeRefused,
    ReportSnapshot,
    canonical_json,
    read_envelope,
)
from referral_gateway.domain.reporting import build_monthly_report
from referral_gateway.report_formats.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Refused,
    SigningKey,
    SigningKeyError,
    Verified,
    sign,
    verify,
)
from tests.reporting.builders import SITE, october_2024

NOW = datetime(2024, 11, 1, 6, 0, tzinfo=UTC)
KEY = SigningKey("rxx01-2024", b"s" * 32)
KEYS = {KEY.key_id: KEY}


def snapshot() -> ReportSnapshot:
    report = publish(build_monthly_report(SITE, ReportMonth(2024, 10), october_2024()))
    return ReportSnapshot.freeze(report, report_id="r-1", created_at=NOW)


def test_canonical_json_sorts_keys_and_drops_whitespace():
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()


def test_the_same_report_always_freezes_to_the_same_checksum():
    assert snapshot().checksum == snapshot().checksum
    assert snapshot().is_intact()


def test_a_raw_report_cannot_be_frozen():
    raw = publish(build_monthly_report(SITE, ReportMonth(2024, 10), []), raw=True)
    with pytest.raises(ReportFormatError):
        ReportSnapshot.freeze(raw, report_id="r-2", created_at=NOW)


def test_an_envelope_reads_back_into_the_same_snapshot():
    snap = snapshot()
    back = read_envelope(snap.envelope())
    assert isinstance(back, ReportSnapshot)
    assert (back.report_id, back.checksum, back.body) == (snap.report_id, snap.checksum, snap.body)
    assert back.report().value("candidates") == 40


def test_a_figure_changed_in_transit_breaks_the_checksum():
    data = json.loads(snapshot().envelope())
    data["report"]["figures"][1]["value"] = 400
    assert read_envelope(canonical_json(data)) == EnvelopeRefused("checksum_mismatch")


def test_an_envelope_naming_another_site_is_refused():
    data = json.loads(snapshot().envelope())
    data["site"] = "RZZ99"
    assert read_envelope(canonical_json(data)) == EnvelopeRefused("site_mismatch")


def test_garbage_is_refused_not_raised():
    assert read_envelope(b"\xff\x00") == EnvelopeRefused("not_json")
    assert read_envelope(b'{"format": "something else"}') == EnvelopeRefused("bad_format")


def test_a_signed_body_verifies():
    body = snapshot().envelope()
    assert verify(sign(body, KEY, now=NOW), body, KEYS, now=NOW) == Verified(
        KEY.key_id, int(NOW.timestamp())
    )


def test_header_names_are_matched_without_regard_to_case():
    body = b"{}"
    headers = {k.lower(): v for k, v in sign(body, KEY, now=NOW).items()}
    assert isinstance(verify(headers, body, KEYS, now=NOW), Verified)


def test_a_tampered_body_fails_the_signature():
    body = snapshot().envelope()
    headers = sign(body, KEY, now=NOW)
    assert verify(headers, body.replace(b'"value":40', b'"value":45'), KEYS, now=NOW) == Refused(
        "bad_signature"
    )


def test_a_signature_made_with_another_secret_fails():
    body = b"{}"
    forged = sign(body, SigningKey(KEY.key_id, b"x" * 32), now=NOW)
    assert verify(forged, body, KEYS, now=NOW) == Refused("bad_signature")


def test_an_unknown_key_id_is_refused():
    body = b"{}"
    assert verify(
        sign(body, SigningKey("who", b"s" * 32), now=NOW), body, KEYS, now=NOW
    ) == Refused("unknown_key")


def test_a_request_older_or_newer_than_five_minutes_is_stale():
    body = b"{}"
    headers = sign(body, KEY, now=NOW)
    assert isinstance(verify(headers, body, KEYS, now=NOW + timedelta(seconds=300)), Verified)
    assert verify(headers, body, KEYS, now=NOW + timedelta(seconds=301)) == Refused("stale")
    assert verify(headers, body, KEYS, now=NOW - timedelta(seconds=301)) == Refused("stale")


def test_the_timestamp_is_covered_by_the_signature():
    body = b"{}"
    headers = sign(body, KEY, now=NOW - timedelta(hours=1))
    headers[TIMESTAMP_HEADER] = str(int(NOW.timestamp()))  # freshened by a replayer
    assert verify(headers, body, KEYS, now=NOW) == Refused("bad_signature")


def test_missing_headers_are_refused():
    headers = sign(b"{}", KEY, now=NOW)
    del headers[SIGNATURE_HEADER]
    assert verify(headers, b"{}", KEYS, now=NOW) == Refused("missing_header")


def test_short_secrets_are_a_configuration_error_that_does_not_show_the_secret():
    with pytest.raises(SigningKeyError) as caught:
        SigningKey("k1", b"hunter2")
    assert "hunter2" not in str(caught.value)
    assert "s" * 32 not in repr(KEY)
