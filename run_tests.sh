#!/usr/bin/env bash
# Builds everything and runs the whole test suite: unit, property, simulation, integration
# (real node processes on loopback) and fault tests (Category=Faults: real node processes under
# SIGKILL, SIGSTOP and network partitions, about 3 minutes; the partitions need root and iproute2;
# histories, replica logs and figures in test-results/faults/).
#   ./run_tests.sh                       everything
#   SEED=n ./run_tests.sh                replay exactly one simulation seed (simulation only)
#   SIM_SEEDS=20000 ./run_tests.sh       more simulation seeds
#   SIM_TRACE=1 SEED=n ./run_tests.sh    also print the seed's crashes, views, rebases and replies
#                                        (SIM_TRACE_KEY=k1: deliveries of one key; SIM_TRACE_LINK=1>2:
#                                        what crosses one link; SIM_TRACE_READS=1: read traffic)
#   ./run_tests.sh --filter Category=Unit   any dotnet test filter
#   HISTORY=/tmp/history.jsonl ./run_tests.sh --filter Name=Replay_a_saved_history_when_HISTORY_is_set
#                                        check a saved fault-suite history again (copy it out of
#                                        test-results/ first: this script empties that directory)
set -euo pipefail
cd "$(dirname "$0")"
./build.sh

filter=()
if [ -n "${SEED:-}" ]; then
  filter=(--filter "Category=Simulation")
  echo "run_tests.sh: replaying simulation seed $SEED" >&2
fi
rm -rf test-results
mkdir -p test-results
set +e
dotnet test Tests/KvReplica.Tests.csproj -c Release --no-build --nologo \
  --logger "console;verbosity=normal" --logger "trx;LogFileName=results.trx" \
  --results-directory test-results "${filter[@]}" "$@" 2>&1 | tee test-results/output.log
status=${PIPESTATUS[0]}
set -e
# One closing line that CI and people read the same way, from the TRX counters.
trx=test-results/results.trx
if [ ! -f "$trx" ]; then
  echo "run_tests.sh: no test results ($trx); the test run did not complete" >&2
  exit 1
fi
counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
count() { sed -nE "s/.* $1=\"([0-9]+)\".*/\1/p" <<<"$counters"; }
total=$(count total); passed=$(count passed); failed=$(count failed)
skipped=$(( ${total:-0} - ${passed:-0} - ${failed:-0} ))
echo "tests: ${passed:-0} passed, ${failed:-0} failed, ${skipped} skipped"
if [ "${passed:-0}" -eq 0 ]; then
  echo "run_tests.sh: no test ran" >&2
  exit 1
fi
exit "$status"
