import re,collections,statistics,sys
d=collections.defaultdict(lambda: collections.defaultdict(list))
cur=None
for line in open(sys.argv[1]):
    m=re.match(r'=== round (\d+) conns (\d+) write-ratio (\d) build (\w+)',line)
    if m: cur=m.groups(); continue
    m=re.match(r'all: ([\d.]+) ops/s p50=([\d.]+)ms p99=([\d.]+)ms p999=([\d.]+)ms',line)
    if m and cur:
        r,c,w,b=cur
        d[(int(c),w)][b].append((int(r),float(m.group(1)),float(m.group(2)),float(m.group(3)),float(m.group(4))))
for k,v in sorted(d.items(), key=lambda kv:(-kv[0][0], kv[0][1]=='0')):
    wl='writes' if k[1]=='1' else 'reads'
    print(f"{k[0]} conns {wl}:")
    for b,a in zip(v['before'],v['after']):
        print(f"  round {b[0]}: before {b[1]:.0f}/s p50 {b[2]} p99 {b[3]} p999 {b[4]} ms | after {a[1]:.0f}/s p50 {a[2]} p99 {a[3]} p999 {a[4]} ms | ratio {a[1]/b[1]:.3f}")
    sb=sum(x[1] for x in v['before']); sa=sum(x[1] for x in v['after'])
    print(f"  ratio of totals {sa/sb:.3f}, median round ratio {statistics.median([a[1]/b[1] for a,b in zip(v['after'],v['before'])]):.3f}")
