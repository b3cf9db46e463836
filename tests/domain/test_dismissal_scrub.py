"""Scrubbing a mark's text before it becomes a corpus row."""

from referral_gateway.domain.dismissal import scrub


def test_runs_of_six_or_more_digits_are_scrubbed_with_their_separators():
    assert scrub("NHS 999 000 0026 seen") == "NHS [number] seen"
    assert scrub("ph 07700900123") == "ph [number]"
    assert scrub("visit V1234567 bay 12") == "visit V[number] bay 12"
    assert scrub("2x 5cm lacs, 12345 ref") == "2x 5cm lacs, 12345 ref"  # 5 digits stay


def test_dates_postcodes_emails_and_the_patients_own_identifiers_are_scrubbed():
    text = "Jo Madeup dob 01/02/2009 lives ZZ99 3AB, jo@example.test, punched by brother"
    assert scrub(text, ["Madeup", "Jo"]) == (
        "[identifier] [identifier] dob [date] lives [postcode], [email] punched by brother"
    )
    assert scrub("seen 3rd March 2026\tagain") == "seen [date] again"
