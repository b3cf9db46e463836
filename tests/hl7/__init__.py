"""Tests for adapters/hl7.

This package must be imported as ``tests.hl7`` (with an empty ``tests/__init__.py``): as a
top-level package it would be called ``hl7`` and hide python-hl7, which the ACK tests use.
"""

if __name__ == "hl7":  # pragma: no cover - a setup error, said plainly rather than hidden
    raise ImportError(
        "tests/hl7 was imported as the top-level package 'hl7', shadowing python-hl7: "
        "tests/ needs an empty __init__.py"
    )
