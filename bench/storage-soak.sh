#!/usr/bin/env bash
# Issue 12 soak: 3 replicas (fsync always), 10,000 keys of 100 bytes, a 50% write mix. Peak is
# measured with 64 connections for 15 s; the soak then runs for MINUTES with the connection
# count whose 15-s throughput came closest to 70% of peak (or CONNS), sampling each replica's RssAnon and
# RssFile every 30 s. Usage: soak.sh <bin dir> <minutes>
set -uo pipefail
bin=$1; minutes=$2
d=/tmp/bench12/soak; rm -rf $d; mkdir -p $d
cat > $d/cluster.json <<J
{ "clusterName": "soak",
  "replicas": [ { "id": 1, "host": "127.0.0.1", "port": 7701 }, { "id": 2, "host": "127.0.0.1", "port": 7702 }, { "id": 3, "host": "127.0.0.1", "port": 7703 } ] }
J
pids=()
for i in 1 2 3; do $bin/node $i $d/cluster.json > $d/node-$i.log 2>&1 & pids+=($!); done
trap 'kill ${pids[*]} 2>/dev/null; wait 2>/dev/null || true' EXIT
sleep 4
tput() { $bin/client $d/cluster.json bench --connections $1 --duration 15 --warmup 2 --write-ratio 0.5 --keys 10000 --value-size 100 2>/dev/null | awk '/^all:/ {print $2}'; }
if [ -n "${CONNS:-}" ]; then best=$CONNS; else
peak=$(tput 64); echo "peak (64 connections): $peak ops/s"
best=64; bestdiff=1e9
for c in 4 8 12 16 24; do
  t=$(tput $c); echo "$c connections: $t ops/s"
  diff=$(python3 -c "print(abs($t - 0.7 * $peak))")
  if python3 -c "import sys; sys.exit(0 if $diff < $bestdiff else 1)"; then best=$c; bestdiff=$diff; fi
done
fi
echo "soak with $best connections for $minutes min"
( start=$(date +%s); while true; do sleep 30; now=$(($(date +%s) - start)); line="t=${now}s"; for p in ${pids[*]}; do line="$line | $(awk '/RssAnon/ {a=$2} /RssFile/ {f=$2} END {printf "anon %d file %d MiB", a/1024, f/1024}' /proc/$p/status)"; done; echo "$line"; done ) &
smp=$!
$bin/client $d/cluster.json bench --connections $best --duration $((minutes * 60)) --warmup 0 --write-ratio 0.5 --keys 10000 --value-size 100 2>/dev/null | tail -4
kill $smp
