#!/usr/bin/env bash
# Sets up and runs every test: installs what the suite needs (PostgreSQL, Chromium),
# builds a virtualenv, starts PostgreSQL, then ruff, mypy, the import contracts and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/systemd-analyze ] || need+=(systemd)   # verifies deploy/referral-gateway.service
[ -x /usr/bin/unshare ] || need+=(util-linux)        # the read-only-root test's mount namespace
command -v npm >/dev/null 2>&1 || need+=(npm)       # fetches the NHS.UK frontend
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -q
  apt-get install -y -q "${need[@]}" >/dev/null
fi

echo "== python environment"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[dev]'

echo "== nhsuk frontend"
bash deploy/fetch-nhsuk-frontend.sh

echo "== postgresql"
source deploy/start-postgres.sh
export RG_TEST_POSTGRES_URL="postgresql+psycopg://rg:rg@127.0.0.1:5432/rg"

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== import contracts"
# The architecture rules in pyproject.toml ([tool.importlinter]): the core imports no
# framework, the adapters do not import each other, no import cycles. The virtualenv's own
# lint-imports (beside its python), never one found on PATH.
.venv/bin/lint-imports
echo "== pytest"
# A PATH with only the system's folders: a test that finds a tool on PATH instead of beside
# sys.executable (a console script installed outside .venv) fails here as on a fresh machine.
# Two test processes (pytest-xdist; RG_TEST_WORKERS to change it, 0 for one process): most
# tests wait on real servers, sockets and a browser, so two halve the time on two cores.
set +e
env PATH=/usr/sbin:/usr/bin:/sbin:/bin .venv/bin/python -m pytest -q \
  --numprocesses "${RG_TEST_WORKERS:-2}" "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
