#!/usr/bin/env bash
# Sets up and runs the gateway on a fresh machine: a virtualenv, SQLite under ./data, and a
# synthetic ED feed streaming into it so candidates appear on the queue.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e .
bash deploy/fetch-nhsuk-frontend.sh   # the NHS.UK frontend the pages use (npm pack, pinned)
export RG_DATA_DIR="${RG_DATA_DIR:-data}"
exec .venv/bin/referral-gateway serve --demo "$@"
