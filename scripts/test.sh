#!/usr/bin/env bash
# The full test suite: unit tests and integration tests against a real PostgreSQL and real XMPP
# servers (started per test file by scripts/harness). Extra arguments select test files.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
files=("$@")
if [ ${#files[@]} -eq 0 ]; then files=(test/**/*.test.ts); fi
exec node --import tsx --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout="${TEST_TIMEOUT_MS:-300000}" "${files[@]}"
