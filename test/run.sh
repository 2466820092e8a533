#!/bin/sh
# `npm test`: every test on SQLite; then, when a PostgreSQL is given (SKIFF_TEST_DATABASE_URL or
# DATABASE_URL, as in CI), the store and API tests again on it (each harness in a fresh schema,
# dropped after) and the end-to-end tests of several hosts (deployment, host-lease, qemu-resize's
# cold migration between two agents, qemu-live-migration and its -requests), which need it.
# Node 20 does not expand globs: find lists.
#
# Files run side by side, SKIFF_TEST_CONCURRENCY at a time (default 4: of 2, 3 and 4 the shortest wall time on
# a 2-core machine). Nothing is shared between them: every Skiff listens on port 0 (or is reached
# with inject()) and has its own temp data dir and database (:memory:, or its own schema), the two
# qemu files forward disjoint SSH port ranges, Tempest has its own workspace. The slowest files
# start first, so that none of them starts last and runs alone.
# SKIFF_TEST_TIMES=FILE writes how long each file took to FILE (slowest first, and their sum).
set -e
cd "$(dirname "$0")/.."
SLOW='test/e2e/qemu-lifecycle.test.ts
test/e2e/qemu-resize.test.ts
test/e2e/qemu-live-migration.test.ts
test/e2e/qemu-live-migration-requests.test.ts
test/e2e/qemu-shelve.test.ts
test/e2e/qemu-serial-console.test.ts
test/e2e/qemu-dashboard-console.test.ts
test/e2e/qemu-volumes.test.ts
test/e2e/openstack-cli-shelve.test.ts
test/e2e/openstack-cli-moves.test.ts
test/e2e/tempest.test.ts
test/e2e/tempest-volumes.test.ts
test/e2e/dashboard.test.ts
test/e2e/openstack-cli-volumes.test.ts
test/e2e/cli-microversions.test.ts
test/e2e/deployment.test.ts
test/e2e/openstack-cli-microversions.test.ts
test/e2e/openstack-cli.test.ts
test/e2e/rescue-clients.test.ts
test/e2e/startup-errors.test.ts'
# The second qemu file last: it then boots its VMs beside the first one's, not beside everything.
LAST='test/e2e/qemu-rescue.test.ts'

# The files given on stdin, the slow ones first, the last one last.
slowFirst() {
  files=$(cat)
  for f in $SLOW; do echo "$files" | grep -xF "$f" || true; done
  echo "$files" | grep -vxF "$SLOW
$LAST" || true
  echo "$files" | grep -xF "$LAST" || true
}

# With SKIFF_TEST_TIMES: the usual report on stdout, and the file times into $SKIFF_TEST_TIMES$1.
[ -t 1 ] && usual=spec || usual=tap
reporters() {
  [ -n "${SKIFF_TEST_TIMES:-}" ] || return 0
  echo --test-reporter=$usual --test-reporter-destination=stdout --test-reporter=./test/helpers/file-times.mjs --test-reporter-destination="$SKIFF_TEST_TIMES$1"
}
run="node --import tsx --test --test-concurrency=${SKIFF_TEST_CONCURRENCY:-4}"

env -u SKIFF_TEST_DATABASE_URL -u DATABASE_URL $run $(reporters) $(find test -name '*.test.ts' | sort | slowFirst)
if [ -n "${SKIFF_TEST_DATABASE_URL:-}${DATABASE_URL:-}" ]; then
  echo "# again on PostgreSQL"
  $run $(reporters .postgres) $(find test/api test/store test/e2e -name '*.test.ts' | grep -E '^test/(api|store)/|deployment|host-lease|qemu-resize|qemu-live-migration' | sort | slowFirst)
fi
