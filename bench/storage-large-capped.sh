#!/usr/bin/env bash
# Issue 12 large-store measures, second pass over big.sh's data directories (20M keys each):
# the page cache is dropped first, so replica 1's engine pages are charged to its memory cgroup
# (cgroup v1 charges a page to the group that first reads it); then a mixed bench through
# replica 1 under the cap, a SIGKILL restart of replica 1, and a catch-up of a wiped replica 3
# with every replica's peak RSS sampled. Usage: big2.sh <bin dir> <keys> <cap MiB> <load seconds>
set -uo pipefail
bin=$1; keys=$2; cap=$3; load=$4
d=/tmp/bench12/big
cg=/sys/fs/cgroup/memory/kvreplica-cap
ts() { date +%s.%N; }
rss() { awk '/VmHWM|RssAnon|RssFile/ {printf "%s=%d MiB ", $1, $2/1024} END {print ""}' /proc/$1/status 2>/dev/null; }
peak_sampler() {
  local p=$1 out=$2 maxa=0 maxt=0
  while kill -0 $p 2>/dev/null; do
    read a f < <(awk '/RssAnon/ {a=$2} /RssFile/ {f=$2} END {print a+0, f+0}' /proc/$p/status 2>/dev/null || echo "0 0")
    [ "$a" -gt "$maxa" ] && maxa=$a; t=$((a + f)); [ "$t" -gt "$maxt" ] && maxt=$t
    echo "$((maxa/1024)) $((maxt/1024))" > $out; sleep 0.2
  done
}
mkdir -p $cg; echo $((cap << 20)) > $cg/memory.limit_in_bytes; echo 0 > $cg/memory.swappiness 2>/dev/null
n=0
start1() {
  n=$((n + 1)); local log=$d/node-1.run$n.log t0; t0=$(ts)
  bash -c "echo \$\$ > $cg/cgroup.procs; exec $bin/node 1 $d/cluster.json" > $log 2>&1 &
  p1=$!
  until grep -q "listening on" $log 2>/dev/null; do sleep 0.02; kill -0 $p1 2>/dev/null || { echo "node 1 died"; cat $log | tail -3; return; }; done
  echo "replica 1 start to listening: $(echo "$(ts) - $t0" | bc) s"; grep "recovered from" $log | sed 's/.*recovered/recovered/'
}
sync; echo 3 > /proc/sys/vm/drop_caches
$bin/node 2 $d/cluster.json > $d/node-2.log 2>&1 & p2=$!
$bin/node 3 $d/cluster.json > $d/node-3.log 2>&1 & p3=$!
echo "== start replica 1 under a $cap MiB cap (cold page cache)"; start1
sleep 3
echo "== $load s mixed bench (20% writes) through replica 1, 16 connections, keys over the whole store"
( s=0; while [ $s -lt $load ]; do sleep 10; s=$((s+10)); echo "t=${s}s replica 1: $(rss $p1) cgroup usage $(( $(cat $cg/memory.usage_in_bytes) >> 20 )) MiB"; done ) &
smp=$!
$bin/client $d/cluster.json --replica 1 bench --connections 16 --duration $load --warmup 0 --write-ratio 0.2 --keys $keys --value-size 100 2>/dev/null | tail -3
wait $smp
echo "replica 1 alive: $(kill -0 $p1 2>/dev/null && echo yes || echo NO); cgroup max usage $(( $(cat $cg/memory.max_usage_in_bytes) >> 20 )) MiB, failcnt $(cat $cg/memory.failcnt), $(grep oom_kill $cg/memory.oom_control | tr '\n' ' ')"
grep -E "total_cache|total_rss |total_mapped_file" $cg/memory.stat | tr '\n' ' '; echo
echo "== SIGKILL replica 1 right after the load and restart it (log tail replay)"
kill -9 $p1; wait $p1 2>/dev/null; start1
sleep 3
if [ "${SKIP_CATCHUP:-}" = 1 ]; then kill $p1 $p2 $p3; wait 2>/dev/null; rmdir $cg; exit 0; fi
echo "== catch-up: replica 3 wiped and restarted; peaks of every replica"
kill $p3; wait $p3 2>/dev/null; rm -rf $d/data/replica-3
peak_sampler $p1 $d/p1c.peak & s1=$!
peak_sampler $p2 $d/p2c.peak & s2=$!
t0=$(ts); $bin/node 3 $d/cluster.json > $d/node-3c.log 2>&1 & p3=$!
peak_sampler $p3 $d/p3c.peak & s3=$!
until grep -q "listening on" $d/node-3c.log 2>/dev/null; do sleep 0.1; kill -0 $p3 2>/dev/null || { echo "node 3 died"; break; }; done
echo "catch-up to listening: $(echo "$(ts) - $t0" | bc) s"; grep -E "catching up|imported|recovered from|stream" $d/node-3c.log | sed 's/^[^ ]* //' | cut -c1-260
sleep 1; kill $s1 $s2 $s3 2>/dev/null
echo "peak RssAnon/total MiB: replica 1 $(cat $d/p1c.peak), replica 2 $(cat $d/p2c.peak), replica 3 (receiver) $(cat $d/p3c.peak)"
kill $p1 $p2 $p3 2>/dev/null; wait 2>/dev/null
rmdir $cg 2>/dev/null || true
