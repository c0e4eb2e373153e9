using System.Diagnostics;
using System.Globalization;
using KvReplica.Client.Cli;
using KvReplica.Protocol.Config;

namespace KvReplica.Client.Cli.Bench;

/// <summary>
/// Closed-loop load generator: N clients (one connection each, spread round-robin over the replicas
/// by id), each running one operation at a time, PUT or GET by the write ratio, on a uniformly
/// random key. Progress goes to stderr once a second; the report goes to stdout as
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
            var workers = clients.Select((client, i) => Task.Run(() => run.WorkerAsync(client, i))).ToArray();
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
        var writes = new LatencyHistogram();
        var reads = new LatencyHistogram();
        foreach (var worker in run.Workers)
        {
            writes.Add(worker.Writes);
            reads.Add(worker.Reads);
        }
        var all = new LatencyHistogram();
        all.Add(writes);
        all.Add(reads);
        double seconds = run.MeasuredSeconds;
        var inv = CultureInfo.InvariantCulture;
        await stdout.WriteLineAsync(string.Create(inv,
            $"config: connections={bench.Connections} duration={bench.Duration.TotalSeconds:0.###}s warmup={bench.Warmup.TotalSeconds:0.###}s write-ratio={bench.WriteRatio:0.###} value-size={bench.ValueSize} keys={bench.Keys}{(bench.Fill ? " fill" : "")}")).ConfigureAwait(false);
        await stdout.WriteLineAsync(Line("writes", writes, seconds)).ConfigureAwait(false);
        await stdout.WriteLineAsync(Line("reads", reads, seconds)).ConfigureAwait(false);
        await stdout.WriteLineAsync(Line("all", all, seconds)).ConfigureAwait(false);
        long measuredErrors = run.Workers.Sum(w => w.MeasuredErrors);
        string firstError = run.FirstError is { } message ? $" first=\"{message.Replace("\"", "'", StringComparison.Ordinal)}\"" : "";
        await stdout.WriteLineAsync(string.Create(inv, $"errors: {measuredErrors} ({measuredErrors / seconds:0.0}/s){firstError}")).ConfigureAwait(false);
    }

    /// <summary>One report line, e.g. <c>writes: 12345.6 ops/s p50=1.230ms p99=4.560ms p999=7.890ms max=9.100ms n=123456</c>.</summary>
    public static string Line(string name, LatencyHistogram histogram, double seconds)
    {
        static string Ms(long ns) => (ns / 1e6).ToString("0.000", CultureInfo.InvariantCulture);
        return string.Create(CultureInfo.InvariantCulture,
            $"{name}: {histogram.Count / seconds:0.0} ops/s p50={Ms(histogram.ValueAtQuantile(0.50))}ms p99={Ms(histogram.ValueAtQuantile(0.99))}ms p999={Ms(histogram.ValueAtQuantile(0.999))}ms max={Ms(histogram.MaxNanoseconds)}ms n={histogram.Count}");
    }

    private sealed class WorkerStats
    {
        public readonly LatencyHistogram Writes = new();
        public readonly LatencyHistogram Reads = new();
        public long MeasuredErrors;
    }

    private sealed class BenchRun
    {
        private readonly BenchOptions _options;
        private readonly long _measureStart;
        private readonly long _measureEnd;

        public BenchRun(BenchOptions options)
        {
            _options = options;
            long start = Stopwatch.GetTimestamp();
            _measureStart = start + (long)(options.Warmup.TotalSeconds * Stopwatch.Frequency);
            _measureEnd = _measureStart + (long)(options.Duration.TotalSeconds * Stopwatch.Frequency);
            Workers = [.. Enumerable.Range(0, options.Connections).Select(_ => new WorkerStats())];
        }

        public WorkerStats[] Workers { get; }
        public long CompletedOps;
        private long _nextFillKey;
        public long Errors;
        public string? FirstError;

        public bool IsOver => Stopwatch.GetTimestamp() >= _measureEnd;
        public bool IsWarmingUp => Stopwatch.GetTimestamp() < _measureStart;
        public double MeasuredSeconds => (double)(_measureEnd - _measureStart) / Stopwatch.Frequency;

        public async Task WorkerAsync(KvClient client, int index)
        {
            var stats = Workers[index];
            var random = new Random(unchecked(Environment.TickCount * 31 + index));
            var value = new byte[_options.ValueSize];
            random.NextBytes(value);
            double nanosPerTick = 1e9 / Stopwatch.Frequency;
            while (true)
            {
                long started = Stopwatch.GetTimestamp();
                // Only operations that start inside the measured window count; the last one may end a little after it.
                if (started >= _measureEnd)
                {
                    return;
                }
                bool isWrite = random.NextDouble() < _options.WriteRatio;
                long keyIndex = _options.Fill ? (Interlocked.Increment(ref _nextFillKey) - 1) % _options.Keys : random.Next(_options.Keys);
                string key = "bench-" + keyIndex.ToString(CultureInfo.InvariantCulture);
                bool ok = true;
                try
                {
                    if (isWrite)
                    {
                        await client.PutAsync(key, value).ConfigureAwait(false);
                    }
                    else
                    {
                        await client.GetAsync(key).ConfigureAwait(false);
                    }
                }
                catch (Exception e) when (e is KvException or ArgumentException)
                {
                    ok = false;
                    Interlocked.CompareExchange(ref FirstError, e is KvInvalidRequestException invalid ? invalid.Reason : e.Message, null);
                    Interlocked.Increment(ref Errors);
                }
                long finished = Stopwatch.GetTimestamp();
                Interlocked.Increment(ref CompletedOps);
                if (started < _measureStart)
                {
                    continue;
                }
                if (!ok)
                {
                    stats.MeasuredErrors++;
                    continue;
                }
                long nanos = (long)((finished - started) * nanosPerTick);
                (isWrite ? stats.Writes : stats.Reads).Record(nanos);
            }
        }
    }
}
