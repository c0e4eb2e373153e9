using System.Diagnostics;
using System.Globalization;

namespace KvReplica.Client.Cli.Bench;

/// <summary>
/// One worker's state for the operation in progress: its random source, the value it writes, the
/// key chooser, and what the operation timed and counted. The runner keeps those figures only when
/// the whole operation succeeded and started inside the measured window (<see cref="BenchStats.Commit"/>).
/// Not thread-safe: one per worker.
/// </summary>
internal sealed class BenchOp
{
    private static readonly double NanosPerTick = 1e9 / Stopwatch.Frequency;
    private readonly Func<Random, long> _nextKeyIndex;
    private readonly long[] _stepNanos;
    private readonly long[] _counts;

    public BenchOp(BenchWorkloadOp workload, Random random, ReadOnlyMemory<byte> value, Func<Random, long> nextKeyIndex)
    {
        Random = random;
        Value = value;
        _nextKeyIndex = nextKeyIndex;
        _stepNanos = new long[workload.Steps.Count];
        _counts = new long[workload.Outcomes.Count];
    }

    public Random Random { get; }

    /// <summary>The bytes every write of this worker stores (random, --value-size long).</summary>
    public ReadOnlyMemory<byte> Value { get; }

    /// <summary>When the operation started (a <see cref="Stopwatch"/> timestamp).</summary>
    public long Started { get; private set; }

    /// <summary>The next key: uniformly random, or the next in order with --fill.</summary>
    public string NextKey() => BenchKeys.Name(_nextKeyIndex(Random));

    /// <summary>The next key that is not <paramref name="other"/> (the options ensure there are at least two keys).</summary>
    public string NextKey(string other)
    {
        string key;
        do
        {
            key = NextKey();
        }
        while (key == other);
        return key;
    }

    /// <summary>Times one request of the operation, from <paramref name="stepStarted"/> to now, as step <paramref name="step"/>.</summary>
    public void EndStep(int step, long stepStarted) => _stepNanos[step] = (long)((Stopwatch.GetTimestamp() - stepStarted) * NanosPerTick);

    /// <summary>Adds <paramref name="n"/> to outcome counter <paramref name="outcome"/>.</summary>
    public void Count(int outcome, long n = 1) => _counts[outcome] += n;

    internal void Begin(long started)
    {
        Started = started;
        Array.Fill(_stepNanos, -1);
        Array.Clear(_counts);
    }

    /// <summary>The step's duration in ns, or -1 when the operation did not time it.</summary>
    internal long StepNanos(int step) => _stepNanos[step];

    internal long Counted(int outcome) => _counts[outcome];

    internal long NanosSince(long started, long finished) => (long)((finished - started) * NanosPerTick);
}

/// <summary>
/// What one bench operation does (<see cref="BenchWorkload"/>). An operation is one or two requests;
/// its latency (the report's <c>all</c> line) runs from before the first to after the last, and
/// each request is also timed alone as a step (a report line per <see cref="Steps"/> name).
/// </summary>
internal abstract class BenchWorkloadOp
{
    /// <summary>Report lines of single requests, in order; index = the step <see cref="BenchOp.EndStep"/> records.</summary>
    public abstract IReadOnlyList<string> Steps { get; }

    /// <summary>Outcome counters, in order; index = the counter <see cref="BenchOp.Count"/> adds to.</summary>
    public abstract IReadOnlyList<string> Outcomes { get; }

    /// <summary>The workload's part of the report's config line, e.g. <c>workload=txn txn-compare=version</c>.</summary>
    public abstract string Config { get; }

    /// <summary>Runs one operation; a failure is thrown (<see cref="KvException"/>) and makes the whole operation an error.</summary>
    public abstract Task RunAsync(IBenchTarget target, BenchOp op);

    /// <summary>Figures derived from the summed outcome counters, after them on the outcomes line (e.g. <c>conflict-ratio=0.0123</c>).</summary>
    public virtual string Derived(IReadOnlyList<long> counts) => "";

    public static BenchWorkloadOp For(BenchOptions options) => options.Workload switch
    {
        BenchWorkload.Rw => new ReadWrite(options.WriteRatio),
        BenchWorkload.Cas => new CompareAndSet(),
        BenchWorkload.Txn => new Transaction(options.TxnCompare),
        BenchWorkload.List => new ListPage(options.Keys, options.ListLimit, options.EffectiveListPrefixDigits, options.ListKeysOnly),
        BenchWorkload.Mget => new MultiGet(options.MgetKeys),
        _ => throw new ArgumentOutOfRangeException(nameof(options), options.Workload, "unknown workload"),
    };

    private static string Ratio(long part, long whole) => whole == 0 ? "0" : ((double)part / whole).ToString("0.0000", CultureInfo.InvariantCulture);

    /// <summary>rw: one PUT (with probability --write-ratio) or one GET of one key.</summary>
    internal sealed class ReadWrite(double writeRatio) : BenchWorkloadOp
    {
        public override IReadOnlyList<string> Steps { get; } = ["writes", "reads"];
        public override IReadOnlyList<string> Outcomes { get; } = [];
        public override string Config => "workload=rw";

        public override async Task RunAsync(IBenchTarget target, BenchOp op)
        {
            bool isWrite = op.Random.NextDouble() < writeRatio;
            string key = op.NextKey();
            if (isWrite)
            {
                await target.PutAsync(key, op.Value).ConfigureAwait(false);
            }
            else
            {
                await target.GetAsync(key).ConfigureAwait(false);
            }
            // One request: its time is the operation's, as before there were workloads.
            op.EndStep(isWrite ? 0 : 1, op.Started);
        }
    }

    /// <summary>
    /// cas: GET one key, then compare-and-set it to this worker's value with the version read
    /// (<see cref="KvVersion.None"/> when absent: put-if-absent). Not written means another
    /// write came between the two: a conflict.
    /// </summary>
    internal sealed class CompareAndSet : BenchWorkloadOp
    {
        public const int Ok = 0, Conflict = 1;
        public override IReadOnlyList<string> Steps { get; } = ["reads", "cas"];
        public override IReadOnlyList<string> Outcomes { get; } = ["cas-ok", "cas-conflict"];
        public override string Config => "workload=cas";

        public override async Task RunAsync(IBenchTarget target, BenchOp op)
        {
            string key = op.NextKey();
            long started = Stopwatch.GetTimestamp();
            var read = await target.GetAsync(key).ConfigureAwait(false);
            op.EndStep(0, started);
            started = Stopwatch.GetTimestamp();
            var result = await target.CompareAndSetAsync(key, read.Version, op.Value).ConfigureAwait(false);
            op.EndStep(1, started);
            op.Count(result.Written ? Ok : Conflict);
        }

        public override string Derived(IReadOnlyList<long> counts) => $"conflict-ratio={Ratio(counts[Conflict], counts[Ok] + counts[Conflict])}";
    }

    /// <summary>
    /// txn: GET a key A, then one transaction: if A still has the version (or value) read
    /// (IfAbsent when it was absent), put this worker's value to A and to a second key B; else
    /// put it to B alone. Else means another write to A came between the two.
    /// </summary>
    internal sealed class Transaction(BenchTxnCompare compare) : BenchWorkloadOp
    {
        public const int Then = 0, Else = 1;
        public override IReadOnlyList<string> Steps { get; } = ["reads", "txn"];
        public override IReadOnlyList<string> Outcomes { get; } = ["txn-then", "txn-else"];
        public override string Config => $"workload=txn txn-compare={BenchOptions.CommandLine.Name(compare)}";

        public override async Task RunAsync(IBenchTarget target, BenchOp op)
        {
            string first = op.NextKey();
            string second = op.NextKey(first);
            long started = Stopwatch.GetTimestamp();
            var read = await target.GetAsync(first).ConfigureAwait(false);
            op.EndStep(0, started);
            var txn = new KvTxn();
            if (!read.Found)
            {
                txn.IfAbsent(first);
            }
            else if (compare == BenchTxnCompare.Version)
            {
                txn.IfVersion(first, read.Version);
            }
            else
            {
                txn.IfValue(first, read.Value);
            }
            txn.ThenPut(first, op.Value).ThenPut(second, op.Value).ElsePut(second, op.Value);
            started = Stopwatch.GetTimestamp();
            var result = await target.TxnAsync(txn).ConfigureAwait(false);
            op.EndStep(1, started);
            op.Count(result.Succeeded ? Then : Else);
        }

        public override string Derived(IReadOnlyList<long> counts) => $"else-ratio={Ratio(counts[Else], counts[Then] + counts[Else])}";
    }

    /// <summary>
    /// list: the first page (a fresh linearizable scan, no cursor) of the keys under a random
    /// prefix <c>bench-p</c> of <paramref name="prefixDigits"/> digits, at most <paramref name="limit"/> keys.
    /// </summary>
    internal sealed class ListPage(int keys, int limit, int prefixDigits, bool keysOnly) : BenchWorkloadOp
    {
        public const int Pages = 0, KeysRead = 1, More = 2;
        public override IReadOnlyList<string> Steps { get; } = [];
        public override IReadOnlyList<string> Outcomes { get; } = ["list-pages", "list-keys", "list-more"];
        public override string Config => string.Create(CultureInfo.InvariantCulture,
            $"workload=list list-limit={limit} list-prefix-digits={prefixDigits} prefix-matches-avg={BenchKeys.AverageMatches(keys, prefixDigits):0.#}{(keysOnly ? " keys-only" : "")}");

        public override async Task RunAsync(IBenchTarget target, BenchOp op)
        {
            string prefix = BenchKeys.RandomPrefix(op.Random, keys, prefixDigits);
            var page = await target.ScanPageAsync(prefix, limit, keysOnly).ConfigureAwait(false);
            op.Count(Pages);
            op.Count(KeysRead, page.Entries.Count);
            if (page.Next is not null)
            {
                op.Count(More);
            }
        }

        public override string Derived(IReadOnlyList<long> counts) => string.Create(CultureInfo.InvariantCulture,
            $"keys-per-page={(counts[Pages] == 0 ? 0 : (double)counts[KeysRead] / counts[Pages]):0.0}");
    }

    /// <summary>mget: one MGET of <paramref name="count"/> distinct keys; counts the keys asked for and found.</summary>
    internal sealed class MultiGet(int count) : BenchWorkloadOp
    {
        public const int Asked = 0, Found = 1;
        public override IReadOnlyList<string> Steps { get; } = [];
        public override IReadOnlyList<string> Outcomes { get; } = ["mget-keys", "mget-found"];
        public override string Config => string.Create(CultureInfo.InvariantCulture, $"workload=mget mget-keys={count}");

        public override async Task RunAsync(IBenchTarget target, BenchOp op)
        {
            var keys = new HashSet<string>(count, StringComparer.Ordinal);
            while (keys.Count < count)
            {
                keys.Add(op.NextKey());
            }
            var result = await target.MultiGetAsync([.. keys]).ConfigureAwait(false);
            op.Count(Asked, count);
            op.Count(Found, result.Entries.Count(e => e.Found));
        }

        public override string Derived(IReadOnlyList<long> counts) => $"found-ratio={Ratio(counts[Found], counts[Asked])}";
    }
}

/// <summary>One worker's figures: kept per worker (no locking) and summed for the report.</summary>
internal sealed class BenchStats
{
    public BenchStats(BenchWorkloadOp workload)
    {
        Steps = [.. workload.Steps.Select(_ => new LatencyHistogram())];
        Outcomes = new long[workload.Outcomes.Count];
    }

    /// <summary>Whole operations.</summary>
    public LatencyHistogram All { get; } = new();

    /// <summary>Single requests, by <see cref="BenchWorkloadOp.Steps"/>.</summary>
    public LatencyHistogram[] Steps { get; }

    /// <summary>Summed counters, by <see cref="BenchWorkloadOp.Outcomes"/>.</summary>
    public long[] Outcomes { get; }

    public long MeasuredErrors { get; private set; }

    /// <summary>
    /// Takes the figures of a measured operation that ended at <paramref name="finished"/>: its
    /// latency, its steps' and its counters when it succeeded; one error and nothing else when not
    /// (a failed CAS after a good GET leaves no read sample and no outcome behind).
    /// </summary>
    public void Commit(BenchOp op, bool succeeded, long finished)
    {
        if (!succeeded)
        {
            MeasuredErrors++;
            return;
        }
        All.Record(op.NanosSince(op.Started, finished));
        for (int i = 0; i < Steps.Length; i++)
        {
            if (op.StepNanos(i) >= 0)
            {
                Steps[i].Record(op.StepNanos(i));
            }
        }
        for (int i = 0; i < Outcomes.Length; i++)
        {
            Outcomes[i] += op.Counted(i);
        }
    }

    public void Add(BenchStats other)
    {
        All.Add(other.All);
        for (int i = 0; i < Steps.Length; i++)
        {
            Steps[i].Add(other.Steps[i]);
        }
        for (int i = 0; i < Outcomes.Length; i++)
        {
            Outcomes[i] += other.Outcomes[i];
        }
        MeasuredErrors += other.MeasuredErrors;
    }
}
