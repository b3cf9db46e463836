#!/usr/bin/env bash
# Sets up and runs the gateway on a fresh machine: a virtualenv, SQLite under ./data, and a
# synthetic ED feed streaming into it so candidates appear on the queue.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
# npm fetches the NHS.UK frontend; a fresh Debian machine may lack it (as root, install it)
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing npm"
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e .
bash deploy/fetch-nhsuk-frontend.sh   # the NHS.UK frontend the pages use (npm pack, pinned)
export RG_DATA_DIR="${RG_DATA_DIR:-data}"
exec .venv/bin/referral-gateway serve --demo "$@"
