"""NHS numbers: ten digits, the last a modulus 11 check digit.

The check digit is 11 - (sum of the first nine digits weighted 10..2, mod 11); a result of
11 becomes 0 and a result of 10 means no valid number can end that way. Spaces and dashes,
as printed on letters and cards ("943 476 5919", "943-476-5919"), are tolerated.

An invalid number is a data-quality flag on the attendance, never a reason to drop it.
"""

from __future__ import annotations

_SEPARATORS = str.maketrans("", "", " -\t")


def normalise_nhs_number(value: str | None) -> str | None:
    """The ten digits of a valid NHS number, or None when `value` is not one."""
    if value is None:
        return None
    digits = value.strip().translate(_SEPARATORS)
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return None
    return digits if _check_digit(digits[:9]) == int(digits[9]) else None


def is_valid_nhs_number(value: str | None) -> bool:
    """True when `value` is ten digits (spaces and dashes allowed) with a correct check digit."""
    return normalise_nhs_number(value) is not None


def _check_digit(first_nine: str) -> int | None:
    total = sum(
        int(digit) * weight for digit, weight in zip(first_nine, range(10, 1, -1), strict=True)
    )
    check = 11 - (total % 11)
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def spaced_nhs_number(value: str | None) -> str:
    """An NHS number as people read it, 3 3 4 ("999 000 0026"); anything that is not ten
    digits is shown as stored."""
    if value is None:
        return ""
    digits = value.strip().translate(_SEPARATORS)
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return value
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"
