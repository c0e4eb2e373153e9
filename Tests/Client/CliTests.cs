using KvReplica.Client.Cli.Bench;
using KvReplica.Client.Cli;
using NUnit.Framework;

namespace KvReplica.Tests.Client;

[TestFixture]
[Category("Unit")]
[Category("ClientUnit")]
[CancelAfter(30_000)]
public sealed class CliTests
{
    private string _directory = "";

    [SetUp]
    public void CreateDirectory()
    {
        _directory = Directory.CreateTempSubdirectory("kvclient-cli-").FullName;
    }

    [TearDown]
    public void DeleteDirectory()
    {
        Directory.Delete(_directory, recursive: true);
    }

    private string ConfigFile(string json)
    {
        string path = Path.Combine(_directory, $"cluster-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    private string ConfigFor(params int[] ports) => ConfigFile($$"""
        {
          "clusterName": "cli-test",
          "replicas": [{{string.Join(",", ports.Select((port, i) => $$"""{ "id": {{i + 1}}, "host": "127.0.0.1", "port": {{port}} }"""))}}],
          "clientRequestTimeoutMs": 2000
        }
        """);

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string input, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exitCode = await CliApplication.RunAsync(args, new StringReader(input), stdout, stderr, stdinIsTerminal: false, CancellationToken.None);
        return (exitCode, stdout.ToString(), stderr.ToString());
    }

    [Test]
    public async Task Missing_config_file_is_one_line_on_stderr_and_exit_2()
    {
        var (exitCode, stdout, stderr) = await RunAsync("", Path.Combine(_directory, "absent.json"), "get", "k");

        Assert.That(exitCode, Is.EqualTo(ExitCodes.Usage));
        Assert.That(stdout, Is.Empty);
        Assert.That(stderr.TrimEnd(), Does.StartWith("client: config file").And.Contain("absent.json' not found; fix it, or give the path"));
    }

    [TestCase("{ not json", ":1:3: invalid JSON: ")]
    [TestCase("""{ "replicas": [ { "id": 1, "host": "h", "port": 1 } ] }""", "clusterName is missing")]
    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "h", "port": 99999 } ] }""", "replicas[0].port: 99999 is outside 1..65535")]
    public async Task Unusable_config_is_one_line_on_stderr_and_exit_2(string json, string problem)
    {
        var (exitCode, _, stderr) = await RunAsync("", ConfigFile(json), "get", "k");

        Assert.That(exitCode, Is.EqualTo(ExitCodes.Usage));
        Assert.That(stderr, Does.StartWith("client: ").And.Contain(problem));
        Assert.That(stderr.Trim().Split('\n'), Has.Length.EqualTo(1));
    }

    [TestCase("--frobnicate")]
    [TestCase("--timeout", "abc")]
    [TestCase("--replica", "7")]
    public async Task Bad_options_exit_2(params string[] options)
    {
        await using var replica = FakeReplica.WithStore(1);
        var (exitCode, _, stderr) = await RunAsync("", [ConfigFor(replica.Port), .. options, "get", "k"]);

        Assert.That(exitCode, Is.EqualTo(ExitCodes.Usage));
        Assert.That(stderr, Does.StartWith("client: "));
    }

    [Test]
    public async Task One_shot_commands_print_one_line_and_exit_by_outcome()
    {
        await using var replica = FakeReplica.WithStore(1);
        string config = ConfigFor(replica.Port);

        var put = await RunAsync("", config, "--local", "put", "k", "two", "words");
        var get = await RunAsync("", config, "GET", "k");
        var delete = await RunAsync("", config, "delete", "k");
        var missing = await RunAsync("", config, "get", "k");
        var invalid = await RunAsync("", config, "get", "\"\"");

        Assert.That(put, Is.EqualTo((0, "OK\n", "")));
        Assert.That(get, Is.EqualTo((0, "two words\n", "")));
        Assert.That(delete, Is.EqualTo((0, "OK\n", "")));
        Assert.That(missing, Is.EqualTo((1, "(not found)\n", "")));
        Assert.That(invalid, Is.EqualTo((3, "ERROR key is empty; a key is 1 to 1024 bytes of UTF-8 text\n", "")));
        Assert.That(replica.Received.First().ReadMode, Is.EqualTo(KvReplica.Protocol.Wire.ReadMode.Local));
    }

    [Test]
    public async Task One_shot_against_an_unreachable_cluster_prints_error_and_exits_3()
    {
        var (exitCode, stdout, _) = await RunAsync("", ConfigFor(FakeReplica.UnusedPort()), "--timeout", "300", "get", "k");

        Assert.That(exitCode, Is.EqualTo(ExitCodes.Error));
        Assert.That(stdout, Does.StartWith("ERROR no replica reachable: replica 1 at 127.0.0.1:").And.Contain("connection refused"));
    }

    [Test]
    public async Task One_shot_against_a_cluster_with_nothing_listening_fails_at_once_and_says_what_to_do()
    {
        string config = ConfigFor(FakeReplica.UnusedPort(), FakeReplica.UnusedPort());

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (exitCode, stdout, _) = await RunAsync("", config, "--timeout", "30000", "get", "k");

        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)), "every connection refused: no waiting for the 30 s deadline");
        Assert.That(exitCode, Is.EqualTo(ExitCodes.Error));
        Assert.That(stdout, Does.Contain("connection refused").And.Contain($"; start the replicas (bin/node <id> {config})"));
    }

    [Test]
    public async Task Status_of_a_replica_alone_in_a_minority_exits_4_and_names_it()
    {
        // Replica 1 believes it is alone in its view; 2 and 3 are in a view of their own.
        FakeReplica Answering(int id, int[] members) => FakeReplica.Start(id, (request, connection) => connection.Reply(new KvReplica.Protocol.Wire.ClientReply
        {
            RequestId = request.RequestId,
            Status = KvReplica.Protocol.Wire.ReplyStatus.Ok,
            ReplicaStatus = new KvReplica.Protocol.Wire.ReplicaStatus { ReplicaId = id, ViewNumber = 4, Members = members },
        }));
        await using var first = Answering(1, [1]);
        await using var second = Answering(2, [2, 3]);
        await using var third = Answering(3, [2, 3]);
        string config = ConfigFor(first.Port, second.Port, third.Port);

        var text = await RunAsync("", config, "status");
        var json = await RunAsync("", config, "--json", "status");
        var whole = await RunAsync("", ConfigFor(second.Port, third.Port), "status");

        Assert.That(text.ExitCode, Is.EqualTo(ExitCodes.Degraded));
        Assert.That(text.Stdout, Does.Contain("replica 1: view 4 members 1 ").And.Contain("(in a minority: 1 of 3 members)"));
        Assert.That(text.Stdout.TrimEnd().Split('\n')[^1], Does.StartWith("not whole: replica 1 in a minority; start the replicas"));
        using var document = System.Text.Json.JsonDocument.Parse(json.Stdout);
        Assert.That(json.ExitCode, Is.EqualTo(ExitCodes.Degraded));
        Assert.That(document.RootElement.GetProperty("status").GetString(), Is.EqualTo("degraded"));
        Assert.That(document.RootElement.GetProperty("replicas")[0].GetProperty("minority").GetBoolean(), Is.True);
        Assert.That(whole.ExitCode, Is.EqualTo(ExitCodes.Ok), "two of two is a majority: " + whole.Stdout);
    }

    [Test]
    public async Task Batch_mode_prints_one_line_per_command_in_order_and_skips_blanks_and_comments()
    {
        await using var replica = FakeReplica.WithStore(1);
        const string Input = """
            # set things up
            PUT greeting hello world

            get greeting
            put "odd key" "line\nbreak"
            GET "odd key"
            del greeting
            DELETE greeting
            GET greeting
            FROB
            exit
            GET never
            """;

        var (exitCode, stdout, stderr) = await RunAsync(Input, ConfigFor(replica.Port));

        Assert.That(stdout.Split('\n'), Is.EqualTo(new[]
        {
            "OK", "hello world", "OK", "\"line\\nbreak\"", "OK", "(not found)", "(not found)",
            "ERROR unknown command 'FROB'; type HELP for the list", "",
        }));
        Assert.That(stderr, Is.Empty);
        Assert.That(exitCode, Is.EqualTo(ExitCodes.Error), "a line printed ERROR");
    }

    [Test]
    public async Task Batch_mode_without_errors_exits_0()
    {
        await using var replica = FakeReplica.WithStore(1);

        var (exitCode, stdout, _) = await RunAsync("PUT a 1\nGET a\nGET b\n", ConfigFor(replica.Port));

        Assert.That(stdout, Is.EqualTo("OK\n1\n(not found)\n"));
        Assert.That(exitCode, Is.EqualTo(ExitCodes.Ok));
    }

    [Test]
    public async Task Bench_prints_a_machine_readable_report()
    {
        await using var first = FakeReplica.WithStore(1);
        await using var second = FakeReplica.WithStore(2);

        var (exitCode, stdout, _) = await RunAsync("", ConfigFor(first.Port, second.Port), "bench",
            "--connections", "2", "--duration", "0.5", "--warmup", "0.2", "--write-ratio", "0.3", "--value-size", "16", "--keys", "10");

        Assert.That(exitCode, Is.EqualTo(ExitCodes.Ok));
        var lines = stdout.TrimEnd().Split('\n');
        Assert.That(lines.Select(l => l.Split(':')[0]), Is.EqualTo(new[] { "config", "writes", "reads", "all", "errors" }));
        Assert.That(lines[3], Does.Match(@"^all: \d+\.\d ops/s p50=\d+\.\d{3}ms p99=\d+\.\d{3}ms p999=\d+\.\d{3}ms max=\d+\.\d{3}ms n=[1-9]\d*$"));
        Assert.That(lines[4], Does.StartWith("errors: 0 "));
        Assert.That(first.ConnectionsAccepted, Is.EqualTo(1), "connections are spread over the replicas");
        Assert.That(second.ConnectionsAccepted, Is.EqualTo(1));
    }

    [Test]
    public void Bench_options_parse_and_reject_bad_values()
    {
        var parsed = BenchOptions.Parse(["--connections", "4", "--duration", "2.5", "--write-ratio", "0.9", "--value-size", "0", "--keys", "7", "--warmup", "0"], out _);

        Assert.That(parsed, Is.EqualTo(new BenchOptions
        {
            Connections = 4,
            Duration = TimeSpan.FromSeconds(2.5),
            WriteRatio = 0.9,
            ValueSize = 0,
            Keys = 7,
            Warmup = TimeSpan.Zero,
        }));
        Assert.That(BenchOptions.Parse(["--write-ratio", "1.5"], out string? error), Is.Null);
        Assert.That(error, Does.Contain("--write-ratio"));
        Assert.That(BenchOptions.Parse(["--connections"], out error), Is.Null);
        Assert.That(BenchOptions.Parse(["--speed", "9"], out error), Is.Null);
        Assert.That(error, Does.Contain("'--speed'"));
    }
}

[TestFixture]
[Category("Unit")]
[Category("ClientUnit")]
public sealed class LatencyHistogramTests
{
    [Test]
    public void Quantiles_are_within_the_bucket_precision()
    {
        var histogram = new LatencyHistogram();
        for (long microseconds = 1; microseconds <= 10_000; microseconds++)
        {
            histogram.Record(microseconds * 1000);
        }

        Assert.That(histogram.Count, Is.EqualTo(10_000));
        Assert.That(histogram.ValueAtQuantile(0.5), Is.EqualTo(5_000_000).Within(4).Percent);
        Assert.That(histogram.ValueAtQuantile(0.99), Is.EqualTo(9_900_000).Within(4).Percent);
        Assert.That(histogram.ValueAtQuantile(1.0), Is.EqualTo(10_000_000).Within(4).Percent);
        Assert.That(histogram.MaxNanoseconds, Is.EqualTo(10_000_000));
    }

    [Test]
    public void Buckets_cover_every_value_contiguously()
    {
        for (long value = 0; value < 100_000; value += 7)
        {
            var (low, width) = LatencyHistogram.BucketRange(LatencyHistogram.BucketOf(value));
            Assert.That(value, Is.InRange(low, low + width - 1));
        }
        Assert.That(LatencyHistogram.BucketOf(long.MaxValue / 2), Is.GreaterThan(LatencyHistogram.BucketOf(1L << 40)));
    }

    [Test]
    public void Merging_adds_counts_and_keeps_the_maximum()
    {
        var a = new LatencyHistogram();
        var b = new LatencyHistogram();
        a.Record(100);
        b.Record(5_000);
        b.Record(7);

        a.Add(b);

        Assert.That(a.Count, Is.EqualTo(3));
        Assert.That(a.MaxNanoseconds, Is.EqualTo(5_000));
        Assert.That(new LatencyHistogram().ValueAtQuantile(0.5), Is.Zero);
    }
}
