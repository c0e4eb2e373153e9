#!/usr/bin/env bash
# Issue 12: backup and catch-up of the 20M-key store (big.sh's data directories), final build,
# no memory cap, page cache dropped first. Peak RSS (anonymous, and anonymous + file-backed) of
# every replica sampled every 0.2 s. Usage: big3.sh <bin dir>
set -uo pipefail
bin=$1; d=/tmp/bench12/big
ts() { date +%s.%N; }
peak_sampler() {
  local p=$1 out=$2 maxa=0 maxt=0
  while kill -0 $p 2>/dev/null; do
    read a f < <(awk '/RssAnon/ {a=$2} /RssFile/ {f=$2} END {print a+0, f+0}' /proc/$p/status 2>/dev/null || echo "0 0")
    [ "$a" -gt "$maxa" ] && maxa=$a; t=$((a + f)); [ "$t" -gt "$maxt" ] && maxt=$t
    echo "$((maxa/1024)) $((maxt/1024))" > $out; sleep 0.2
  done
}
sync; echo 3 > /proc/sys/vm/drop_caches
for i in 1 2 3; do $bin/node $i $d/cluster.json > $d/node-$i.final.log 2>&1 & eval p$i=$!; done
until grep -q "listening on" $d/node-3.final.log 2>/dev/null; do sleep 0.1; done; sleep 3
echo "== backup of the whole store from replica 2 (cold page cache)"
peak_sampler $p2 $d/b2.peak & s2=$!
/usr/bin/time -f "backup wall %e s, client max RSS %M KiB" $bin/client $d/cluster.json --replica 2 backup $d/full.backup 2>&1 | tail -2
sleep 0.5; kill $s2; echo "sender (replica 2) peak RssAnon/total MiB: $(cat $d/b2.peak)"
echo "== catch-up: replica 3 wiped and restarted"
kill $p3; wait $p3 2>/dev/null; rm -rf $d/data/replica-3
sync; echo 3 > /proc/sys/vm/drop_caches
peak_sampler $p1 $d/c1.peak & s1=$!
peak_sampler $p2 $d/c2.peak & s2=$!
t0=$(ts); $bin/node 3 $d/cluster.json > $d/node-3.final-c.log 2>&1 & p3=$!
peak_sampler $p3 $d/c3.peak & s3=$!
until grep -q "listening on" $d/node-3.final-c.log 2>/dev/null; do sleep 0.1; kill -0 $p3 2>/dev/null || { echo "node 3 died"; break; }; done
echo "catch-up to listening: $(echo "$(ts) - $t0" | bc) s"; grep -E "catching up|caught up|imported|recovered from" $d/node-3.final-c.log | sed 's/^[^ ]* //' | cut -c1-240
sleep 0.5; kill $s1 $s2 $s3 2>/dev/null
echo "peak RssAnon/total MiB: replica 1 $(cat $d/c1.peak), replica 2 $(cat $d/c2.peak), replica 3 (receiver) $(cat $d/c3.peak)"
kill $p1 $p2 $p3 2>/dev/null; wait 2>/dev/null
