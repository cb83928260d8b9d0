#!/usr/bin/env bash
# The whole pytest suite. Every database test runs on SQLite and on PostgreSQL; tests that
# need PostgreSQL or Redis fail when CI=true and the service is missing, and skip (with a
# one-line reason) elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p artifacts
exec .venv/bin/python -m pytest "$@"
