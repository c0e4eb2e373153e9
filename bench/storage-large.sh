#!/usr/bin/env bash
# Issue 12 large-store measures. A 3-replica cluster (fsync always) seeded with KEYS keys of 100
# bytes through `make-backup` + `node --restore`; replica 1 runs in a memory cgroup capped at
# CAP MiB (cgroup v1 memory.limit_in_bytes: this machine has no v2 memory controller). Measures:
# restore time, recovery time to listening, a mixed bench through replica 1 under the cap, a
# SIGKILL restart of replica 1 (log tail replay), a backup from replica 2 and a catch-up of a
# wiped replica 3 from its peers, with peak RSS of each side.
# Usage: big.sh <bin dir> <make-backup> <keys> <cap MiB> <load seconds>
set -uo pipefail
bin=$1; mk=$2; keys=$3; cap=$4; load=$5
d=/tmp/bench12/big; rm -rf $d; mkdir -p $d
cg=/sys/fs/cgroup/memory/kvreplica-cap
cat > $d/cluster.json <<J
{ "clusterName": "big",
  "replicas": [ { "id": 1, "host": "127.0.0.1", "port": 7901 }, { "id": 2, "host": "127.0.0.1", "port": 7902 }, { "id": 3, "host": "127.0.0.1", "port": 7903 } ] }
J
ts() { date +%s.%N; }
rss() { awk '/VmHWM|RssAnon|RssFile/ {printf "%s=%d MiB ", $1, $2/1024} END {print ""}' /proc/$1/status 2>/dev/null; }
peak_sampler() { # pid outfile: max RssAnon+RssFile and max RssAnon, sampled every 0.2 s
  local p=$1 out=$2 maxa=0 maxt=0
  while kill -0 $p 2>/dev/null; do
    read a f < <(awk '/RssAnon/ {a=$2} /RssFile/ {f=$2} END {print a+0, f+0}' /proc/$p/status 2>/dev/null || echo "0 0")
    [ "$a" -gt "$maxa" ] && maxa=$a; t=$((a + f)); [ "$t" -gt "$maxt" ] && maxt=$t
    echo "$((maxa/1024)) $((maxt/1024))" > $out; sleep 0.2
  done
}
echo "== make-backup $keys keys"; $mk $d/seed.backup $keys 100
for i in 1 2 3; do
  echo "== restore replica $i"; /usr/bin/time -f "restore wall %e s, max RSS %M KiB" $bin/node $i $d/cluster.json --restore $d/seed.backup
done
du -sh $d/data/replica-1/engine
mkdir -p $cg; echo $((cap << 20)) > $cg/memory.limit_in_bytes; echo 0 > $cg/memory.swappiness 2>/dev/null
start1() { # node 1 inside the cgroup; prints seconds from exec to the listening line
  local t0; t0=$(ts)
  bash -c "echo \$\$ > $cg/cgroup.procs; exec $bin/node 1 $d/cluster.json" >> $d/node-1.log 2>&1 &
  p1=$!
  until grep -q "listening on" $d/node-1.log 2>/dev/null; do sleep 0.02; kill -0 $p1 2>/dev/null || { echo "node 1 died"; return; }; done
  echo "replica 1 start to listening: $(echo "$(ts) - $t0" | bc) s"; grep "recovered from" $d/node-1.log | tail -1 | sed 's/.*recovered/recovered/'
}
$bin/node 2 $d/cluster.json > $d/node-2.log 2>&1 & p2=$!
$bin/node 3 $d/cluster.json > $d/node-3.log 2>&1 & p3=$!
echo "== start replica 1 under a $cap MiB cap ($keys keys)"; start1
sleep 3
echo "== $load s mixed bench (20% writes) through replica 1, 16 connections, keys over the whole store"
( s=0; while [ $s -lt $load ]; do sleep 10; s=$((s+10)); echo "t=${s}s replica 1: $(rss $p1) cgroup usage $(( $(cat $cg/memory.usage_in_bytes) >> 20 )) MiB"; done ) &
smp=$!
$bin/client $d/cluster.json --replica 1 bench --connections 16 --duration $load --warmup 0 --write-ratio 0.2 --keys $keys --value-size 100 2>/dev/null | tail -3
wait $smp
echo "replica 1 alive: $(kill -0 $p1 2>/dev/null && echo yes || echo NO); cgroup max usage $(( $(cat $cg/memory.max_usage_in_bytes) >> 20 )) MiB, failcnt $(cat $cg/memory.failcnt), $(grep oom_kill $cg/memory.oom_control | tr '\n' ' ')"
echo "== SIGKILL replica 1 after the load and restart it (log tail replay)"
kill -9 $p1; wait $p1 2>/dev/null; start1
sleep 3
echo "== backup of the whole store from replica 2"
peak_sampler $p2 $d/p2.peak & ps2=$!
/usr/bin/time -f "backup wall %e s, client max RSS %M KiB" $bin/client $d/cluster.json --replica 2 backup $d/full.backup 2>&1 | tail -2
kill $ps2 2>/dev/null; echo "replica 2 (sender) peak RssAnon/total MiB during the backup: $(cat $d/p2.peak)"; ls -la $d/full.backup
echo "== catch-up: replica 3 wiped and restarted"
kill $p3; wait $p3 2>/dev/null; rm -rf $d/data/replica-3
peak_sampler $p2 $d/p2c.peak & ps2=$!
t0=$(ts); $bin/node 3 $d/cluster.json > $d/node-3b.log 2>&1 & p3=$!
peak_sampler $p3 $d/p3.peak & ps3=$!
until grep -q "listening on" $d/node-3b.log 2>/dev/null; do sleep 0.1; kill -0 $p3 2>/dev/null || { echo "node 3 died"; break; }; done
echo "catch-up to listening: $(echo "$(ts) - $t0" | bc) s"; grep -E "catch|recovered from|imported" $d/node-3b.log | sed 's/^[^ ]* //' | cut -c1-300
sleep 1; kill $ps2 $ps3 2>/dev/null
echo "sender (replica 2) peak RssAnon/total MiB: $(cat $d/p2c.peak); receiver (replica 3) peak RssAnon/total MiB: $(cat $d/p3.peak)"
$bin/client $d/cluster.json --replica 3 get bench-12345 2>&1 | head -2
kill $p1 $p2 $p3 2>/dev/null; wait 2>/dev/null
rmdir $cg 2>/dev/null || true
