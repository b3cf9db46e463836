#!/usr/bin/env bash
# The long form of the hostile-input tests: the same Hypothesis properties and Schemathesis run
# as the suite's (ER7 reader and ACK path, MLLP framer and listener, disclosure control, the
# app's OpenAPI schema), with the `explore` profile: thousands of examples per property, fresh
# randomness each run, statistics printed. A failure prints the shrunk example to add as a
# regular test. Extra arguments go to pytest (e.g. -k openapi).
set -euo pipefail
cd "$(dirname "$0")/.."
export RG_HYPOTHESIS_PROFILE=explore
exec env PATH=/usr/sbin:/usr/bin:/sbin:/bin .venv/bin/python -m pytest -q -p no:cacheprovider \
  --hypothesis-show-statistics \
  tests/hl7/test_hostile_input.py tests/mllp/test_hostile_streams.py \
  tests/reporting/test_disclosure.py tests/web/test_openapi_fuzz.py "$@"
