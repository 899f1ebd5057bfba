#!/usr/bin/env bash
# Sets up .venv with everything the service needs; with --test also what the tests need
# (pytest, Playwright's Python client and Debian's headless Chromium for the page tests).
# Idempotent: safe to re-run. Works offline from the model hub (no weights are downloaded).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: its CPU wheel is local here; an unpinned torch pulls GBs of CUDA packages.
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q torch==2.13.0 -e '.[test]'
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "setup: could not install chromium; browser tests will be skipped" >&2
    else
      echo "setup: chromium not found and not root; browser tests will be skipped" >&2
    fi
  fi
  if ! command -v redis-server >/dev/null 2>&1; then  # the Redis cache tests run a real server
    if [ "$(id -u)" = 0 ]; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
        || echo "setup: could not install redis-server; the Redis cache tests will fail" >&2
    else
      echo "setup: redis-server not found and not root: install the Debian package redis-server" >&2
    fi
  fi
  # DeepL's Node client for tests/test_clients_deepl_node.py, in an ignored folder (no global install)
  if command -v npm >/dev/null 2>&1; then
    npm install --prefix .npm-clients --no-audit --no-fund --silent deepl-node@1 >/dev/null \
      || echo "setup: could not install deepl-node; its tests will be skipped" >&2
  else
    echo "setup: npm not found; the deepl-node tests will be skipped" >&2
  fi
else
  .venv/bin/python -m pip install -q torch==2.13.0 -e .
fi
