#!/usr/bin/env bash
# Issue 12 memory measure: 3 replicas (fsync none, as the issue's baseline), fill KEYS keys of
# 100 bytes with `client bench --fill`, then RssAnon/RssFile of each replica idle and under a
# 64-connection mixed load. Usage: mem.sh <bin dir> <keys> <fill seconds> <load seconds>
set -euo pipefail
bin=$1; keys=$2; fill=$3; load=$4
d=/tmp/bench12/mem; rm -rf $d; mkdir -p $d
cat > $d/cluster.json <<J
{ "clusterName": "mem", "fsync": "none",
  "replicas": [ { "id": 1, "host": "127.0.0.1", "port": 7801 }, { "id": 2, "host": "127.0.0.1", "port": 7802 }, { "id": 3, "host": "127.0.0.1", "port": 7803 } ] }
J
pids=()
for i in 1 2 3; do $bin/node $i $d/cluster.json > $d/node-$i.log 2>&1 & pids+=($!); done
trap 'kill ${pids[*]} 2>/dev/null; wait 2>/dev/null || true' EXIT
sleep 4
rss() { for p in ${pids[*]}; do awk -v p=$p '/RssAnon|RssFile/ {printf "%s %s=%d MiB ", p, $1, $2/1024} END {print ""}' /proc/$p/status; done; }
echo "== before fill"; rss
$bin/client $d/cluster.json bench --fill --connections 64 --duration $fill --warmup 0 --write-ratio 1 --keys $keys --value-size 100 2>/dev/null | tail -3
sleep 10
echo "== idle after fill"; rss
$bin/client $d/cluster.json status 2>/dev/null | head -8
( for s in $(seq 1 $((load / 5))); do sleep 5; echo "-- under load t=$((s*5))s"; rss; done ) &
sampler=$!
$bin/client $d/cluster.json bench --connections 64 --duration $load --warmup 0 --write-ratio 0.5 --keys $keys --value-size 100 2>/dev/null | tail -3
wait $sampler || true
sleep 10
echo "== idle after load"; rss
du -sh $d/data/replica-1/engine $d/data/replica-1 2>/dev/null
