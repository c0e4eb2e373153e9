using System.Collections.Concurrent;
using KvReplica.Client;
using KvReplica.Client.Cli;
using KvReplica.Client.Cli.Bench;
using KvReplica.Protocol.Wire;
using NUnit.Framework;

namespace KvReplica.Tests.Client;

/// <summary>The bench's options, key space and workloads (CliTests has the original rw end-to-end test).</summary>
[TestFixture]
[Category("Unit")]
[Category("ClientUnit")]
[CancelAfter(30_000)]
public sealed class BenchTests
{
    [Test]
    public void Workload_options_parse_with_their_defaults()
    {
        var defaults = BenchOptions.Parse([], out string? error);
        Assert.That(error, Is.Null);
        Assert.That(defaults, Is.EqualTo(new BenchOptions()));
        Assert.That(defaults!.Workload, Is.EqualTo(BenchWorkload.Rw));
        Assert.That(defaults.TxnCompare, Is.EqualTo(BenchTxnCompare.Version));
        Assert.That(defaults.ListLimit, Is.EqualTo(100));
        Assert.That(defaults.ListPrefixDigits, Is.Null);
        Assert.That(defaults.EffectiveListPrefixDigits, Is.EqualTo(2), "10,000 keys, pages of 100: bench-NN prefixes match 111 keys each");
        Assert.That(defaults.MgetKeys, Is.EqualTo(10));

        var parsed = BenchOptions.Parse(["--workload", "TXN", "--txn-compare", "value", "--keys", "50", "--list-limit", "7", "--list-prefix-digits", "1", "--list-keys-only", "--mget-keys", "50"], out error);
        Assert.That(error, Is.Null);
        Assert.That(parsed, Is.EqualTo(new BenchOptions
        {
            Workload = BenchWorkload.Txn,
            TxnCompare = BenchTxnCompare.Value,
            Keys = 50,
            ListLimit = 7,
            ListPrefixDigits = 1,
            ListKeysOnly = true,
            MgetKeys = 50,
        }));
        foreach (var (word, workload) in new[] { ("rw", BenchWorkload.Rw), ("cas", BenchWorkload.Cas), ("list", BenchWorkload.List), ("mget", BenchWorkload.Mget) })
        {
            Assert.That(BenchOptions.Parse(["--workload", word], out _)?.Workload, Is.EqualTo(workload));
        }
    }

    [TestCase(new[] { "--workload", "scan" }, "--workload: 'scan' is not one of rw, cas, txn, list, mget")]
    [TestCase(new[] { "--txn-compare", "revision" }, "--txn-compare: 'revision' is not one of version, value")]
    [TestCase(new[] { "--list-limit", "0" }, "--list-limit: '0' is not a whole number in 1..10000")]
    [TestCase(new[] { "--list-limit", "10001" }, "--list-limit")]
    [TestCase(new[] { "--list-prefix-digits", "10" }, "--list-prefix-digits: '10' is not a whole number in 0..9")]
    [TestCase(new[] { "--mget-keys", "1001" }, "--mget-keys: '1001' is not a whole number in 1..1000")]
    [TestCase(new[] { "--workload", "txn", "--keys", "1" }, "--keys must be at least 2")]
    [TestCase(new[] { "--workload", "mget", "--keys", "5", "--mget-keys", "6" }, "--mget-keys 6 asks for more distinct keys than --keys 5")]
    [TestCase(new[] { "--workload", "list", "--list-prefix-digits", "5" }, "the keys bench-0 to bench-9999 have at most 4 digits")]
    [TestCase(new[] { "--workload", "txn", "--keys", "0" }, "--keys: '0' is not a whole number")]
    public void Bad_workload_options_are_one_error(string[] args, string expected)
    {
        Assert.That(BenchOptions.Parse(args, out string? error), Is.Null);
        Assert.That(error, Does.StartWith("bench: ").And.Contain(expected));
    }

    [Test]
    public void Combinations_are_checked_only_for_the_workload_that_uses_them()
    {
        Assert.That(BenchOptions.Parse(["--keys", "1", "--mget-keys", "5", "--list-prefix-digits", "3"], out string? error), Is.Not.Null, error);
    }

    [Test]
    public async Task Help_lists_every_bench_option_with_its_default_and_range()
    {
        var stdout = new StringWriter();
        int exit = await CliApplication.RunAsync(["bench", "--help"], new StringReader(""), stdout, new StringWriter(), stdinIsTerminal: false, CancellationToken.None);

        Assert.That(exit, Is.EqualTo(ExitCodes.Ok));
        string help = stdout.ToString();
        foreach (string option in new[] { "--connections", "--duration", "--write-ratio", "--value-size", "--keys", "--warmup", "--fill", "--workload", "--txn-compare", "--list-limit", "--list-prefix-digits", "--list-keys-only", "--mget-keys" })
        {
            string line = help.Split('\n').Single(l => l.TrimStart().StartsWith(option + " ", StringComparison.Ordinal));
            Assert.That(line, Does.Contain("[default: "), option);
            Assert.That(line, Does.Match(@"\d\.\.\d|one of |\[default: off\]"), option + " states its range");
        }
        Assert.That(help, Does.Contain("--workload <rw|cas|txn|list|mget>").And.Contain("[default: rw]"));
    }

    [TestCase(10_000, 100, 2)]
    [TestCase(1_000_000, 100, 4)]
    [TestCase(10_000, 1_000, 1)]
    [TestCase(1_000, 100, 1)]
    [TestCase(50, 100, 0)]
    [TestCase(1, 1, 1)]
    [TestCase(1, 2, 0)]
    [TestCase(100_000, 1, 5)]
    public void Automatic_prefix_digits_fill_a_page_on_average(int keys, int limit, int digits)
    {
        Assert.That(BenchKeys.AutoPrefixDigits(keys, limit), Is.EqualTo(digits));
    }

    [TestCase(1)]
    [TestCase(7)]
    [TestCase(10)]
    [TestCase(11)]
    [TestCase(100)]
    [TestCase(101)]
    [TestCase(12_345)]
    public void Average_prefix_matches_agree_with_counting_the_keys(int keys)
    {
        var names = Enumerable.Range(0, keys).Select(i => BenchKeys.Name(i)).ToArray();
        for (int digits = 0; digits <= BenchKeys.Digits(keys - 1); digits++)
        {
            var (low, high) = BenchKeys.PrefixRange(keys, digits);
            var prefixes = digits == 0 ? [BenchKeys.Prefix] : Enumerable.Range((int)low, (int)(high - low)).Select(p => BenchKeys.Name(p)).ToArray();
            double counted = prefixes.Average(prefix => names.Count(n => n.StartsWith(prefix, StringComparison.Ordinal)));
            Assert.That(BenchKeys.AverageMatches(keys, digits), Is.EqualTo(counted).Within(1e-9), $"keys {keys}, digits {digits}");
        }
    }

    [Test]
    public void Random_prefixes_stay_in_the_key_space()
    {
        var random = new Random(5);
        var seen = new HashSet<string>();
        for (int i = 0; i < 2_000; i++)
        {
            seen.Add(BenchKeys.RandomPrefix(random, 10_000, 2));
        }
        Assert.That(seen, Is.EquivalentTo(Enumerable.Range(10, 90).Select(p => BenchKeys.Name(p))), "every bench-10 .. bench-99, nothing else");
        Assert.That(BenchKeys.RandomPrefix(random, 10_000, 0), Is.EqualTo("bench-"));
    }

    [Test]
    public async Task Cas_counts_a_conflict_when_another_write_comes_between_the_get_and_the_cas()
    {
        var store = new FakeStore();
        int gets = 0;
        // Every third GET is followed by someone else's PUT of the same key.
        store.AfterGet = key =>
        {
            if (++gets % 3 == 0)
            {
                store.Put(key, [9]);
            }
        };
        var (workload, op, stats) = Worker(new BenchOptions { Workload = BenchWorkload.Cas, Keys = 4 });

        for (int i = 0; i < 30; i++)
        {
            await RunOneAsync(workload, store, op, stats);
        }

        Assert.That(stats.Outcomes, Is.EqualTo(new long[] { 20, 10 }), "cas-ok, cas-conflict");
        Assert.That(stats.All.Count, Is.EqualTo(30));
        Assert.That(stats.Steps.Select(s => s.Count), Is.EqualTo(new long[] { 30, 30 }), "a read and a CAS sample per op");
        Assert.That(stats.MeasuredErrors, Is.Zero);
        Assert.That(store.CasExpected.Take(4), Has.Some.EqualTo(KvVersion.None), "an absent key is CAS'd with version None (put-if-absent)");
    }

    [Test]
    public async Task A_failed_request_makes_the_whole_op_one_error_with_no_samples_or_outcomes()
    {
        var store = new FakeStore { FailCas = true };
        var (workload, op, stats) = Worker(new BenchOptions { Workload = BenchWorkload.Cas, Keys = 4 });

        string? error = await RunOneAsync(workload, store, op, stats);

        Assert.That(error, Is.EqualTo("no majority"));
        Assert.That(stats.MeasuredErrors, Is.EqualTo(1));
        Assert.That(stats.All.Count, Is.Zero);
        Assert.That(stats.Steps[0].Count, Is.Zero, "the GET succeeded, but its sample goes with the failed op");
        Assert.That(stats.Outcomes, Is.EqualTo(new long[] { 0, 0 }));
    }

    [Test]
    public async Task Txn_compares_the_first_key_and_counts_then_and_else()
    {
        var store = new FakeStore();
        bool interfere = false;
        store.AfterGet = key =>
        {
            if (interfere)
            {
                store.Put(key, [9]);
            }
        };
        var (workload, op, stats) = Worker(new BenchOptions { Workload = BenchWorkload.Txn, Keys = 2 });

        await RunOneAsync(workload, store, op, stats);
        var first = store.Txns[^1];
        Assert.That(first.Compares.Single().Kind, Is.EqualTo(TxnCompareKind.Absent), "the key was absent");
        string a = first.Compares[0].Key;
        string b = a == "bench-0" ? "bench-1" : "bench-0";
        Assert.That(first.Then.Select(t => (t.Operation, t.Key)), Is.EqualTo(new[] { (Operation.Put, a), (Operation.Put, b) }));
        Assert.That(first.Else.Select(t => (t.Operation, t.Key)), Is.EqualTo(new[] { (Operation.Put, b) }));

        await RunOneAsync(workload, store, op, stats);
        Assert.That(store.Txns[^1].Compares.Single().Kind, Is.EqualTo(TxnCompareKind.VersionEquals), "both keys exist now");

        interfere = true;
        await RunOneAsync(workload, store, op, stats);
        await RunOneAsync(workload, store, op, stats);

        Assert.That(stats.Outcomes, Is.EqualTo(new long[] { 2, 2 }), "txn-then, txn-else");
        Assert.That(stats.Steps.Select(s => s.Count), Is.EqualTo(new long[] { 4, 4 }));
    }

    [Test]
    public async Task Txn_can_compare_the_value_read()
    {
        var store = new FakeStore();
        store.Put("bench-0", [1, 2]);
        store.Put("bench-1", [1, 2]);
        var (workload, op, stats) = Worker(new BenchOptions { Workload = BenchWorkload.Txn, TxnCompare = BenchTxnCompare.Value, Keys = 2 });

        await RunOneAsync(workload, store, op, stats);

        var compare = store.Txns.Single().Compares.Single();
        Assert.That(compare.Kind, Is.EqualTo(TxnCompareKind.ValueEquals));
        Assert.That(compare.Value, Is.EqualTo(new byte[] { 1, 2 }));
        Assert.That(stats.Outcomes, Is.EqualTo(new long[] { 1, 0 }));
    }

    [Test]
    public async Task List_reads_one_page_and_counts_its_keys()
    {
        var store = new FakeStore();
        for (int i = 0; i < 1_000; i++)
        {
            store.Put(BenchKeys.Name(i), [1]);
        }
        var options = new BenchOptions { Workload = BenchWorkload.List, Keys = 1_000, ListLimit = 100, ListKeysOnly = true };
        Assert.That(options.EffectiveListPrefixDigits, Is.EqualTo(1));
        var (workload, op, stats) = Worker(options);

        for (int i = 0; i < 50; i++)
        {
            await RunOneAsync(workload, store, op, stats);
        }

        // bench-0 matches one key; bench-1 .. bench-9 match 111 each, a full page with more to come.
        long zeros = store.Scans.Count(s => s.Prefix == "bench-0");
        Assert.That(store.Scans, Has.All.Matches<(string Prefix, int Limit, bool KeysOnly)>(s => s.Prefix.Length == "bench-".Length + 1 && s.Limit == 100 && s.KeysOnly));
        Assert.That(stats.Outcomes, Is.EqualTo(new long[] { 50, zeros + (50 - zeros) * 100, 50 - zeros }), "list-pages, list-keys, list-more");
        Assert.That(stats.All.Count, Is.EqualTo(50));
    }

    [Test]
    public async Task Mget_counts_keys_asked_and_found()
    {
        var store = new FakeStore();
        for (int i = 0; i < 10; i += 2)
        {
            store.Put(BenchKeys.Name(i), [1]);
        }
        var (workload, op, stats) = Worker(new BenchOptions { Workload = BenchWorkload.Mget, Keys = 10, MgetKeys = 10 });

        await RunOneAsync(workload, store, op, stats);

        Assert.That(store.MultiGets.Single(), Is.EquivalentTo(Enumerable.Range(0, 10).Select(i => BenchKeys.Name(i))), "distinct keys");
        Assert.That(stats.Outcomes, Is.EqualTo(new long[] { 10, 5 }), "mget-keys, mget-found");
    }

    [Test]
    public async Task The_report_shows_steps_all_outcomes_and_errors()
    {
        var store = new FakeStore();
        var options = new BenchOptions { Workload = BenchWorkload.Cas, Keys = 3, Connections = 2 };
        var (workload, op, stats) = Worker(options);
        var other = new BenchStats(workload);
        for (int i = 0; i < 3; i++)
        {
            await RunOneAsync(workload, store, op, i == 0 ? other : stats);
        }
        store.FailCas = true;
        await RunOneAsync(workload, store, op, stats);

        var lines = BenchRunner.ReportLines(options, workload, [stats, other], 2.0, "no majority").ToList();

        Assert.That(lines.Select(l => l.Split(':')[0]), Is.EqualTo(new[] { "config", "reads", "cas", "all", "outcomes", "errors" }));
        Assert.That(lines[0], Does.EndWith(" keys=3 workload=cas"));
        Assert.That(lines[3], Does.Match(@"^all: 1\.5 ops/s p50=\d+\.\d{3}ms p99=\d+\.\d{3}ms p999=\d+\.\d{3}ms max=\d+\.\d{3}ms n=3$"));
        Assert.That(lines[4], Is.EqualTo("outcomes: cas-ok=3 cas-conflict=0 conflict-ratio=0.0000"));
        Assert.That(lines[5], Is.EqualTo("errors: 1 (0.5/s) first=\"no majority\""));
    }

    [Test]
    public void The_rw_report_keeps_its_lines()
    {
        var options = new BenchOptions();
        var workload = BenchWorkloadOp.For(options);

        var lines = BenchRunner.ReportLines(options, workload, [new BenchStats(workload)], 1.0, null).ToList();

        Assert.That(lines.Select(l => l.Split(':')[0]), Is.EqualTo(new[] { "config", "writes", "reads", "all", "errors" }));
        Assert.That(lines[0], Does.EndWith(" workload=rw"));
    }

    [Test]
    public async Task Bench_cas_runs_end_to_end_against_a_replica()
    {
        var versions = new ConcurrentDictionary<string, long>();
        long clock = 0;
        await using var replica = FakeReplica.Start(1, (request, connection) =>
        {
            var reply = new ClientReply { RequestId = request.RequestId, Status = ReplyStatus.Ok };
            if (request.Operation == Operation.Get)
            {
                if (versions.TryGetValue(request.Key, out long time))
                {
                    (reply.Value, reply.VersionTime, reply.VersionReplica) = ([1], time, 1);
                }
                else
                {
                    reply.Status = ReplyStatus.NotFound;
                }
            }
            else if (request.Operation == Operation.CompareAndSet)
            {
                long current = versions.GetValueOrDefault(request.Key);
                if (current == request.ExpectedTime)
                {
                    versions[request.Key] = Interlocked.Increment(ref clock);
                }
                else
                {
                    reply.Status = ReplyStatus.ConditionFailed;
                }
                (reply.VersionTime, reply.VersionReplica) = (versions[request.Key], 1);
            }
            else
            {
                reply.Status = ReplyStatus.Error;
                reply.Error = ErrorCode.InvalidRequest;
                reply.ErrorMessage = "unexpected";
            }
            connection.Reply(reply);
        });
        string directory = Directory.CreateTempSubdirectory("kvclient-bench-").FullName;
        try
        {
            string config = Path.Combine(directory, "cluster.json");
            File.WriteAllText(config, $$"""{ "clusterName": "bench-test", "replicas": [{ "id": 1, "host": "127.0.0.1", "port": {{replica.Port}} }], "clientRequestTimeoutMs": 2000 }""");
            var stdout = new StringWriter();
            int exit = await CliApplication.RunAsync([config, "bench", "--workload", "cas", "--duration", "0.3", "--warmup", "0", "--keys", "5"],
                new StringReader(""), stdout, new StringWriter(), stdinIsTerminal: false, CancellationToken.None);

            Assert.That(exit, Is.EqualTo(ExitCodes.Ok));
            var lines = stdout.ToString().TrimEnd().Split('\n');
            Assert.That(lines.Select(l => l.Split(':')[0]), Is.EqualTo(new[] { "config", "reads", "cas", "all", "outcomes", "errors" }));
            Assert.That(lines[4], Does.Match(@"^outcomes: cas-ok=[1-9]\d* cas-conflict=0 conflict-ratio=0\.0000$"), "one connection never conflicts with itself");
            Assert.That(lines[5], Does.StartWith("errors: 0 "));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static (BenchWorkloadOp Workload, BenchOp Op, BenchStats Stats) Worker(BenchOptions options)
    {
        var workload = BenchWorkloadOp.For(options);
        var op = new BenchOp(workload, new Random(42), new byte[] { 7, 7, 7 }, random => random.Next(options.Keys));
        return (workload, op, new BenchStats(workload));
    }

    /// <summary>One measured operation, as a bench worker runs it.</summary>
    private static async Task<string?> RunOneAsync(BenchWorkloadOp workload, IBenchTarget target, BenchOp op, BenchStats stats)
    {
        op.Begin(System.Diagnostics.Stopwatch.GetTimestamp());
        string? error = await BenchRunner.TryRunAsync(workload, target, op);
        stats.Commit(op, error is null, System.Diagnostics.Stopwatch.GetTimestamp());
        return error;
    }

    /// <summary>
    /// A single-threaded store with the replica's semantics for the requests a bench sends: every
    /// write gets the next version; CAS and TXN compare against the current state. Records what it
    /// was asked, and can let "another client" write right after a GET.
    /// </summary>
    private sealed class FakeStore : IBenchTarget
    {
        private readonly SortedDictionary<string, (byte[] Value, KvVersion Version)> _data = new(StringComparer.Ordinal);
        private long _clock;

        public Action<string>? AfterGet { get; set; }
        public bool FailCas { get; set; }
        public List<KvVersion> CasExpected { get; } = [];
        public List<TxnBody> Txns { get; } = [];
        public List<(string Prefix, int Limit, bool KeysOnly)> Scans { get; } = [];
        public List<IReadOnlyList<string>> MultiGets { get; } = [];

        public void Put(string key, byte[] value) => _data[key] = (value, new KvVersion(++_clock, 1));

        public Task PutAsync(string key, ReadOnlyMemory<byte> value)
        {
            Put(key, value.ToArray());
            return Task.CompletedTask;
        }

        public Task<KvGetResult> GetAsync(string key)
        {
            var result = _data.TryGetValue(key, out var entry) ? new KvGetResult(true, entry.Value, entry.Version) : new KvGetResult(false, [], KvVersion.None);
            AfterGet?.Invoke(key);
            return Task.FromResult(result);
        }

        public Task<KvConditionalResult> CompareAndSetAsync(string key, KvVersion expected, ReadOnlyMemory<byte> value)
        {
            if (FailCas)
            {
                throw new KvException(ErrorCode.None, "no majority");
            }
            CasExpected.Add(expected);
            var current = _data.TryGetValue(key, out var entry) ? entry.Version : KvVersion.None;
            if (current != expected)
            {
                return Task.FromResult(new KvConditionalResult(false, current));
            }
            Put(key, value.ToArray());
            return Task.FromResult(new KvConditionalResult(true, _data[key].Version));
        }

        public Task<KvTxnResult> TxnAsync(KvTxn txn)
        {
            var body = txn.ToBody();
            Txns.Add(body);
            bool holds = body.Compares.All(c => (c.Kind, _data.TryGetValue(c.Key, out var entry)) switch
            {
                (TxnCompareKind.Absent, bool found) => !found,
                (TxnCompareKind.VersionEquals, true) => entry.Version == new KvVersion(c.VersionTime, c.VersionReplica),
                (TxnCompareKind.ValueEquals, true) => entry.Value.AsSpan().SequenceEqual(c.Value),
                _ => false,
            });
            foreach (var write in holds ? body.Then : body.Else)
            {
                Put(write.Key, write.Value!);
            }
            return Task.FromResult(new KvTxnResult(holds, new KvVersion(_clock, 1)));
        }

        public Task<KvScanPage> ScanPageAsync(string prefix, int limit, bool keysOnly)
        {
            Scans.Add((prefix, limit, keysOnly));
            var matching = _data.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            var page = matching.Take(limit).Select(kv => new KvEntry(kv.Key, true, keysOnly ? ReadOnlyMemory<byte>.Empty : kv.Value.Value, kv.Value.Version)).ToList();
            var revision = new KvVersion(Math.Max(_clock, 1), 1);
            var next = matching.Count > limit ? new KvScanCursor(prefix, revision, page[^1].Key) : null;
            return Task.FromResult(new KvScanPage(page, revision, next));
        }

        public Task<KvMultiGetResult> MultiGetAsync(IReadOnlyList<string> keys)
        {
            MultiGets.Add(keys);
            var entries = keys.Select(k => _data.TryGetValue(k, out var e) ? new KvEntry(k, true, e.Value, e.Version) : new KvEntry(k, false, ReadOnlyMemory<byte>.Empty, KvVersion.None)).ToList();
            return Task.FromResult(new KvMultiGetResult(entries, new KvVersion(_clock, 1)));
        }
    }
}
