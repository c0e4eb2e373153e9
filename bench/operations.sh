#!/usr/bin/env bash
# Every bench workload (rw writes and reads, cas, txn, list, mget) at 1 and 64 connections on one
# fresh 3-replica cluster (fsync always, 10,000 keys of 32 bytes filled first).
# Usage: operations.sh <bin> <seconds per run>
set -euo pipefail
bin=${1:-$(cd "$(dirname "$0")/.." && pwd)/bin}; dur=${2:-20}
d=/tmp/bench13; rm -rf $d; mkdir -p $d
cat > $d/cluster.json <<J
{ "clusterName": "bench-ops",
  "replicas": [ { "id": 1, "host": "127.0.0.1", "port": 7801 }, { "id": 2, "host": "127.0.0.1", "port": 7802 }, { "id": 3, "host": "127.0.0.1", "port": 7803 } ] }
J
pids=()
for i in 1 2 3; do $bin/node $i $d/cluster.json > $d/node-$i.log 2>&1 & pids+=($!); done
trap 'kill ${pids[*]} 2>/dev/null; wait ${pids[*]} 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do $bin/client $d/cluster.json ping >/dev/null 2>&1 && break; sleep 0.1; done
$bin/client $d/cluster.json bench --fill --write-ratio 1 --connections 64 --duration 15 --warmup 0 --keys 10000 --value-size 32 2>/dev/null | grep '^all:'
for conns in 1 64; do
  for w in "rw --write-ratio 1" "rw --write-ratio 0" "cas" "txn" "list --list-limit 100" "mget --mget-keys 10"; do
    echo "=== conns $conns workload $w"
    # shellcheck disable=SC2086
    $bin/client $d/cluster.json bench --workload $w --connections $conns --duration $dur --warmup 3 --keys 10000 --value-size 32 2>/dev/null | grep -E '^(all|cas|txn|outcomes|errors):'
  done
done
for i in 1 2 3; do echo "replica $i RssAnon: $(grep RssAnon /proc/${pids[$((i-1))]}/status | awk '{print $2, $3}')"; done
