using System.Diagnostics;
using System.Globalization;
using KvReplica.Client.Cli;
using KvReplica.Protocol.Config;

namespace KvReplica.Client.Cli.Bench;

/// <summary>
/// Closed-loop load generator: N clients (one connection each, spread round-robin over the replicas
/// by id), each running one operation of the workload at a time (<see cref="BenchWorkloadOp"/>:
/// by default a PUT or GET by the write ratio, on a uniformly random key). Progress goes to stderr once a second; the report goes to stdout as
/// <c>name: value</c> lines.
/// </summary>
internal static class BenchRunner
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(1);

    public static async Task<int> RunAsync(ClusterConfig config, KvClientOptions clientOptions, BenchOptions bench,
        TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        if (bench.ValueSize > config.MaxValueBytes)
        {
            await stderr.WriteLineAsync($"client: bench --value-size {bench.ValueSize} exceeds the cluster's maxValueBytes ({config.MaxValueBytes})").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        var replicasById = config.Replicas.OrderBy(r => r.Id).ToArray();
        var clients = new KvClient[bench.Connections];
        try
        {
            var connecting = Enumerable.Range(0, bench.Connections).Select(i => KvClient.ConnectAsync(config,
                clientOptions with { PreferredReplicaId = clientOptions.PreferredReplicaId ?? replicasById[i % replicasById.Length].Id }, ct)).ToArray();
            try
            {
                await Task.WhenAll(connecting).ConfigureAwait(false);
            }
            catch (KvException e)
            {
                await stderr.WriteLineAsync($"client: bench: {e.Message}").ConfigureAwait(false);
                return ExitCodes.Error;
            }
            finally
            {
                for (int i = 0; i < connecting.Length; i++)
                {
                    clients[i] = connecting[i].IsCompletedSuccessfully ? connecting[i].Result : null!;
                }
            }

            var run = new BenchRun(bench);
            var workers = clients.Select((client, i) => Task.Run(() => run.WorkerAsync(new KvClientTarget(client), i))).ToArray();
            await ReportProgressAsync(run, stderr, ct).ConfigureAwait(false);
            await Task.WhenAll(workers).ConfigureAwait(false);
            await WriteReportAsync(run, bench, stdout).ConfigureAwait(false);
            return ExitCodes.Ok;
        }
        finally
        {
            foreach (var client in clients)
            {
                if (client is not null)
                {
                    await client.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
    }

    private static async Task ReportProgressAsync(BenchRun run, TextWriter stderr, CancellationToken ct)
    {
        long lastOps = 0;
        int second = 0;
        using var timer = new PeriodicTimer(ProgressInterval);
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
        {
            // A tick after the end would report a partial second as if it were a whole one.
            if (run.IsOver)
            {
                return;
            }
            second++;
            long ops = Interlocked.Read(ref run.CompletedOps);
            string phase = run.IsWarmingUp ? " (warm-up)" : "";
            await stderr.WriteLineAsync($"[{second}s] {ops - lastOps} ops/s, errors {Interlocked.Read(ref run.Errors)}{phase}").ConfigureAwait(false);
            lastOps = ops;
        }
    }

    private static async Task WriteReportAsync(BenchRun run, BenchOptions bench, TextWriter stdout)
    {
        foreach (string line in ReportLines(bench, run.Workload, run.Workers, run.MeasuredSeconds, run.FirstError))
        {
            await stdout.WriteLineAsync(line).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The report: <c>config</c>, a line per step of the workload (rw: <c>writes</c>, <c>reads</c>;
    /// cas: <c>reads</c>, <c>cas</c>; txn: <c>reads</c>, <c>txn</c>), <c>all</c> (whole operations),
    /// <c>outcomes</c> (not for rw), <c>errors</c>.
    /// </summary>
    internal static IEnumerable<string> ReportLines(BenchOptions bench, BenchWorkloadOp workload, IEnumerable<BenchStats> workers, double seconds, string? firstError)
    {
        var total = new BenchStats(workload);
        foreach (var worker in workers)
        {
            total.Add(worker);
        }
        var inv = CultureInfo.InvariantCulture;
        yield return string.Create(inv,
            $"config: connections={bench.Connections} duration={bench.Duration.TotalSeconds:0.###}s warmup={bench.Warmup.TotalSeconds:0.###}s write-ratio={bench.WriteRatio:0.###} value-size={bench.ValueSize} keys={bench.Keys}{(bench.Fill ? " fill" : "")} {workload.Config}");
        for (int i = 0; i < workload.Steps.Count; i++)
        {
            yield return Line(workload.Steps[i], total.Steps[i], seconds);
        }
        yield return Line("all", total.All, seconds);
        if (workload.Outcomes.Count > 0)
        {
            string counts = string.Join(" ", workload.Outcomes.Select((name, i) => string.Create(inv, $"{name}={total.Outcomes[i]}")));
            string derived = workload.Derived(total.Outcomes);
            yield return $"outcomes: {counts}{(derived.Length > 0 ? " " + derived : "")}";
        }
        string first = firstError is { } message ? $" first=\"{message.Replace("\"", "'", StringComparison.Ordinal)}\"" : "";
        yield return string.Create(inv, $"errors: {total.MeasuredErrors} ({total.MeasuredErrors / seconds:0.0}/s){first}");
    }

    /// <summary>One report line, e.g. <c>writes: 12345.6 ops/s p50=1.230ms p99=4.560ms p999=7.890ms max=9.100ms n=123456</c>.</summary>
    public static string Line(string name, LatencyHistogram histogram, double seconds)
    {
        static string Ms(long ns) => (ns / 1e6).ToString("0.000", CultureInfo.InvariantCulture);
        return string.Create(CultureInfo.InvariantCulture,
            $"{name}: {histogram.Count / seconds:0.0} ops/s p50={Ms(histogram.ValueAtQuantile(0.50))}ms p99={Ms(histogram.ValueAtQuantile(0.99))}ms p999={Ms(histogram.ValueAtQuantile(0.999))}ms max={Ms(histogram.MaxNanoseconds)}ms n={histogram.Count}");
    }

    /// <summary>
    /// Runs one operation; null when it succeeded, else the error to report (a
    /// <see cref="KvException"/>, or an <see cref="ArgumentException"/> the client raised before sending).
    /// </summary>
    internal static async Task<string?> TryRunAsync(BenchWorkloadOp workload, IBenchTarget target, BenchOp op)
    {
        try
        {
            await workload.RunAsync(target, op).ConfigureAwait(false);
            return null;
        }
        catch (Exception e) when (e is KvException or ArgumentException)
        {
            return e is KvInvalidRequestException invalid ? invalid.Reason : e.Message;
        }
    }

    private sealed class BenchRun
    {
        private readonly BenchOptions _options;
        private readonly long _measureStart;
        private readonly long _measureEnd;

        public BenchRun(BenchOptions options)
        {
            _options = options;
            Workload = BenchWorkloadOp.For(options);
            long start = Stopwatch.GetTimestamp();
            _measureStart = start + (long)(options.Warmup.TotalSeconds * Stopwatch.Frequency);
            _measureEnd = _measureStart + (long)(options.Duration.TotalSeconds * Stopwatch.Frequency);
            Workers = [.. Enumerable.Range(0, options.Connections).Select(_ => new BenchStats(Workload))];
        }

        public BenchWorkloadOp Workload { get; }
        public BenchStats[] Workers { get; }
        public long CompletedOps;
        private long _nextFillKey;
        public long Errors;
        public string? FirstError;

        public bool IsOver => Stopwatch.GetTimestamp() >= _measureEnd;
        public bool IsWarmingUp => Stopwatch.GetTimestamp() < _measureStart;
        public double MeasuredSeconds => (double)(_measureEnd - _measureStart) / Stopwatch.Frequency;

        private long NextKeyIndex(Random random) =>
            _options.Fill ? (Interlocked.Increment(ref _nextFillKey) - 1) % _options.Keys : random.Next(_options.Keys);

        public async Task WorkerAsync(IBenchTarget target, int index)
        {
            var stats = Workers[index];
            var random = new Random(unchecked(Environment.TickCount * 31 + index));
            var value = new byte[_options.ValueSize];
            random.NextBytes(value);
            var op = new BenchOp(Workload, random, value, NextKeyIndex);
            while (true)
            {
                long started = Stopwatch.GetTimestamp();
                // Only operations that start inside the measured window count; the last one may end a little after it.
                if (started >= _measureEnd)
                {
                    return;
                }
                op.Begin(started);
                string? error = await TryRunAsync(Workload, target, op).ConfigureAwait(false);
                long finished = Stopwatch.GetTimestamp();
                if (error is not null)
                {
                    Interlocked.CompareExchange(ref FirstError, error, null);
                    Interlocked.Increment(ref Errors);
                }
                Interlocked.Increment(ref CompletedOps);
                if (started >= _measureStart)
                {
                    stats.Commit(op, error is null, finished);
                }
            }
        }
    }
}
