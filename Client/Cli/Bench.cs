using System.Diagnostics;
using System.Globalization;
using KvReplica.Protocol.Config;

namespace KvReplica.Client.Cli;

/// <summary>Settings of <c>client &lt;config&gt; bench</c>.</summary>
internal sealed record BenchOptions
{
    public int Connections { get; init; } = 1;
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(1);
    public double WriteRatio { get; init; } = 0.5;
    public int ValueSize { get; init; } = 100;
    public int Keys { get; init; } = 10_000;
    public int? Seed { get; init; }
}

/// <summary>
/// A closed-loop load: each connection sends one request, waits for the reply, and sends the
/// next. Latencies are recorded per operation kind after the warm-up and reported as ops/s and
/// p50/p99/p999. Connections are spread over the replicas round-robin by id.
/// </summary>
internal static class Bench
{
    private sealed class Worker
    {
        public readonly List<long> WriteTicks = new(1 << 16);
        public readonly List<long> ReadTicks = new(1 << 16);
        public long Completed;
        public long Errors;
        public string? LastError;
    }

    public static async Task<int> RunAsync(ClusterConfig config, BenchOptions options, TextWriter output, TextWriter progress, CancellationToken cancellationToken)
    {
        var clients = new List<KvClient>();
        try
        {
            for (int i = 0; i < options.Connections; i++)
            {
                var replica = config.Replicas[i % config.Replicas.Count];
                clients.Add(await KvClient.ConnectAsync(config, new KvClientOptions { PreferredReplica = replica.Id }, cancellationToken).ConfigureAwait(false));
            }
            var workers = clients.Select(_ => new Worker()).ToArray();
            var clock = Stopwatch.StartNew();
            long warmupEnd = (long)(options.Warmup.TotalSeconds * Stopwatch.Frequency);
            long end = warmupEnd + (long)(options.Duration.TotalSeconds * Stopwatch.Frequency);
            long startTimestamp = Stopwatch.GetTimestamp();
            var value = new byte[options.ValueSize];
            new Random(options.Seed ?? 1).NextBytes(value);
            var tasks = clients.Select((client, i) => Task.Run(() => LoopAsync(client, workers[i], options, value, startTimestamp, warmupEnd, end, options.Seed is int s ? s + i : Random.Shared.Next(), cancellationToken))).ToArray();
            long lastCompleted = 0;
            var all = Task.WhenAll(tasks);
            while (!all.IsCompleted)
            {
                await Task.WhenAny(all, Task.Delay(1000, cancellationToken)).ConfigureAwait(false);
                long completed = workers.Sum(w => Interlocked.Read(ref w.Completed));
                long errors = workers.Sum(w => Interlocked.Read(ref w.Errors));
                progress.WriteLine($"[{clock.Elapsed.TotalSeconds:0}s] {completed - lastCompleted} ops/s, errors {errors}");
                lastCompleted = completed;
            }
            await all.ConfigureAwait(false);

            double seconds = options.Duration.TotalSeconds;
            var writes = workers.SelectMany(w => w.WriteTicks).ToArray();
            var reads = workers.SelectMany(w => w.ReadTicks).ToArray();
            long totalErrors = workers.Sum(w => w.Errors);
            output.WriteLine($"bench: {options.Connections} connections, {seconds:0.#} s, write ratio {options.WriteRatio.ToString(CultureInfo.InvariantCulture)}, value {options.ValueSize} B, {options.Keys} keys, {config.Replicas.Count} replicas");
            output.WriteLine(Line("writes", writes, seconds));
            output.WriteLine(Line("reads", reads, seconds));
            output.WriteLine(Line("all", [.. writes, .. reads], seconds));
            output.WriteLine($"errors: {totalErrors}{(totalErrors > 0 ? " (last: " + workers.Select(w => w.LastError).LastOrDefault(e => e is not null) + ")" : "")}");
            return totalErrors > 0 && writes.Length + reads.Length == 0 ? 3 : 0;
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static async Task LoopAsync(KvClient client, Worker worker, BenchOptions options, byte[] value, long start, long warmupEnd, long end, int seed, CancellationToken cancellationToken)
    {
        var random = new Random(seed);
        while (!cancellationToken.IsCancellationRequested)
        {
            long began = Stopwatch.GetTimestamp();
            if (began - start >= end)
            {
                return;
            }
            string key = "bench-" + random.Next(options.Keys).ToString(CultureInfo.InvariantCulture);
            bool write = random.NextDouble() < options.WriteRatio;
            try
            {
                if (write)
                {
                    await client.PutAsync(key, value, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await client.GetAsync(key, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is KvException or KvTimeoutException)
            {
                Interlocked.Increment(ref worker.Errors);
                worker.LastError = e.Message;
                continue;
            }
            long finished = Stopwatch.GetTimestamp();
            Interlocked.Increment(ref worker.Completed);
            if (began - start >= warmupEnd)
            {
                (write ? worker.WriteTicks : worker.ReadTicks).Add(finished - began);
            }
        }
    }

    private static string Line(string name, long[] ticks, double seconds)
    {
        if (ticks.Length == 0)
        {
            return $"{name}: 0 ops/s n=0";
        }
        Array.Sort(ticks);
        string P(double q) => (ticks[Math.Min(ticks.Length - 1, (int)Math.Ceiling(q * ticks.Length) - 1)] * 1000.0 / Stopwatch.Frequency).ToString("0.000", CultureInfo.InvariantCulture);
        return $"{name}: {(ticks.Length / seconds).ToString("0", CultureInfo.InvariantCulture)} ops/s p50={P(0.50)}ms p99={P(0.99)}ms p999={P(0.999)}ms n={ticks.Length}";
    }
}
