"""NHS number validation. Expected check digits are worked by hand in the comments.

Synthetic numbers from the 999 test range only. For 99900000d?, the first eight digits
weigh 9*10 + 9*9 + 9*8 = 243, and the ninth digit d weighs 2.
"""

from __future__ import annotations

import pytest

from referral_gateway.domain.nhs_number import is_valid_nhs_number, normalise_nhs_number


def test_number_with_correct_check_digit_is_valid() -> None:
    # d=1: 243 + 2 = 245; 245 mod 11 = 3; check = 11 - 3 = 8
    assert is_valid_nhs_number("9990000018")


def test_another_number_with_correct_check_digit_is_valid() -> None:
    # d=2: 243 + 4 = 247; 247 mod 11 = 5; check = 11 - 5 = 6
    assert is_valid_nhs_number("9990000026")


def test_check_of_eleven_becomes_zero() -> None:
    # d=5: 243 + 10 = 253 = 23 * 11; check = 11 - 0 = 11, written as 0
    assert is_valid_nhs_number("9990000050")


@pytest.mark.parametrize("last", list("0123456789"))
def test_check_of_ten_means_no_valid_number(last: str) -> None:
    # d=0: 243; 243 mod 11 = 1; check = 11 - 1 = 10: no tenth digit can make this valid
    assert not is_valid_nhs_number("999000000" + last)


def test_wrong_check_digit_is_invalid() -> None:
    assert not is_valid_nhs_number("9990000019")


@pytest.mark.parametrize(
    "printed", ["999 000 0018", "999-000-0018", " 9990000018 ", "999 000-0018"]
)
def test_spaces_and_dashes_are_tolerated(printed: str) -> None:
    assert is_valid_nhs_number(printed)
    assert normalise_nhs_number(printed) == "9990000018"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "999000001",
        "99900000180",
        "99900000l8",
        "999/000/0018",
        "\uff19\uff19\uff19\uff10\uff10\uff10\uff10\uff10\uff11\uff18",
    ],
)
def test_malformed_values_are_invalid(value: str | None) -> None:
    assert not is_valid_nhs_number(value)
    assert normalise_nhs_number(value) is None
