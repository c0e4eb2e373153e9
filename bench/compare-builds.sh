#!/usr/bin/env bash
# Two builds side by side: fresh clusters every round, and the builds swap ports and start order
# each round, so neither build keeps a position. Usage: compare-builds.sh <seconds> <rounds>
set -euo pipefail
BEFORE=${BEFORE:?set BEFORE to the bin/ of the build to compare against}; AFTER=${AFTER:-$(cd "$(dirname "$0")/.." && pwd)/bin}
dur=${1:-8}; rounds=${2:-4}
for r in $(seq 1 $rounds); do
  pids=()
  if [ $((r % 2)) = 1 ]; then order="before after"; else order="after before"; fi
  base=75
  for b in $order; do
    d=/tmp/bench12/$b; rm -rf $d; mkdir -p $d
    bin=$([ $b = before ] && echo $BEFORE || echo $AFTER)
    cat > $d/cluster.json <<J
{ "clusterName": "bench-$b",
  "replicas": [ { "id": 1, "host": "127.0.0.1", "port": ${base}01 }, { "id": 2, "host": "127.0.0.1", "port": ${base}02 }, { "id": 3, "host": "127.0.0.1", "port": ${base}03 } ] }
J
    for i in 1 2 3; do $bin/node $i $d/cluster.json > $d/node-$i.log 2>&1 & pids+=($!); done
    base=$((base + 1))
  done
  sleep 4
  for conns in ${CONNS:-64 1}; do
    for ratio in 1 0; do
      for b in $order; do
        bin=$([ $b = before ] && echo $BEFORE || echo $AFTER)
        echo "=== round $r conns $conns write-ratio $ratio build $b"
        ${CLIENT:-$bin}/client /tmp/bench12/$b/cluster.json bench --connections $conns --duration $dur --warmup 2 --write-ratio $ratio --keys 10000 --value-size 32 2>/dev/null | tail -4
      done
    done
  done
  kill ${pids[*]} 2>/dev/null; wait ${pids[*]} 2>/dev/null || true
done
