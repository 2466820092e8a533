#!/bin/sh
# `npm test`: every test on SQLite; then, when a PostgreSQL is given (SKIFF_TEST_DATABASE_URL or
# DATABASE_URL, as in CI), the store and API tests again on it (each harness in a fresh schema,
# dropped after) and the scale-out tests, which need it. Node 20 does not expand globs: find lists.
set -e
cd "$(dirname "$0")/.."
env -u SKIFF_TEST_DATABASE_URL -u DATABASE_URL \
  node --import tsx --test --test-concurrency=1 $(find test -name '*.test.ts' | sort)
if [ -n "${SKIFF_TEST_DATABASE_URL:-}${DATABASE_URL:-}" ]; then
  echo "# again on PostgreSQL"
  node --import tsx --test --test-concurrency=1 $(find test/api test/store test/e2e -name '*.test.ts' | grep -E '^test/(api|store)/|scale-out' | sort)
fi
