#!/usr/bin/env bash
# Builds everything and runs the whole test suite: unit, property, simulation, integration
# (real node processes on loopback) and fault tests.
#   ./run_tests.sh                       everything
#   SEED=n ./run_tests.sh                replay exactly one simulation seed (simulation only)
#   SIM_SEEDS=20000 ./run_tests.sh       more simulation seeds
#   ./run_tests.sh --filter Category=Unit   any dotnet test filter
set -euo pipefail
cd "$(dirname "$0")"
./build.sh

filter=()
if [ -n "${SEED:-}" ]; then
  filter=(--filter "Category=Simulation")
  echo "run_tests.sh: replaying simulation seed $SEED" >&2
fi
mkdir -p test-results
set +e
dotnet test Tests/KvReplica.Tests.csproj -c Release --no-build --nologo \
  --logger "console;verbosity=normal" --logger "trx;LogFileName=results.trx" \
  --results-directory test-results "${filter[@]}" "$@" 2>&1 | tee test-results/output.log
status=${PIPESTATUS[0]}
set -e
# One closing line that CI and people read the same way.
summary=$(grep -E '^(Passed|Failed)!' test-results/output.log | tail -n 1)
passed=$(sed -nE 's/.*Passed: *([0-9]+).*/\1/p' <<<"$summary")
failed=$(sed -nE 's/.*Failed: *([0-9]+),.*/\1/p' <<<"$summary")
skipped=$(sed -nE 's/.*Skipped: *([0-9]+).*/\1/p' <<<"$summary")
if [ -z "$passed" ]; then
  echo "run_tests.sh: no test summary found; the test run did not complete" >&2
  exit 1
fi
echo "tests: ${passed} passed, ${failed:-0} failed, ${skipped:-0} skipped"
if [ "${passed}" -eq 0 ]; then
  echo "run_tests.sh: no test ran" >&2
  exit 1
fi
exit "$status"
