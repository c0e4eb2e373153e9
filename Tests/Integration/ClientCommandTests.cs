using System.Diagnostics;
using System.Text;
using System.Text.Json;
using NUnit.Framework;

namespace KvReplica.Tests.Integration;

/// <summary>
/// Every command of the real <c>client</c> program against a real cluster (TLS and an admin, as
/// deployed), in each mode: the prompt (<c>--interactive</c>), batch, one-shot, and <c>--json</c>.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class ClientCommandTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private LocalCluster _cluster = null!;
    private string _directory = "";
    private string[] _admin = [];

    [OneTimeSetUp]
    public async Task StartSecureCluster()
    {
        _cluster = await LocalCluster.StartAsync(count: 3, secure: true);
        _admin = ["--user", "admin", "--password-file", TestSecurity.PasswordFile(_cluster.ConfigPath)];
        _directory = Directory.CreateTempSubdirectory("kvreplica-cli-it-").FullName;
    }

    [OneTimeTearDown]
    public async Task StopCluster()
    {
        await _cluster.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    private Task<ClientProcess.Result> RunAsync(IEnumerable<string> lines, params string[] args) =>
        ClientProcess.RunAsync(_cluster.ConfigPath, lines, Deadline, [.. _admin, .. args]);

    // Every command a line can give, with a prefix so that tests do not share keys or names.
    private string[] EveryCommand(string prefix, string backupFile) =>
    [
        $"PUT {prefix}k hello world",
        $"GET {prefix}k",
        $"DELETE {prefix}k",
        $"GET {prefix}k",
        $"ROLE ADD {prefix}r read:{prefix}/",
        $"USER ADD {prefix}u {prefix}-password-1 {prefix}r",
        $"USER DELETE {prefix}u",
        $"ROLE DELETE {prefix}r",
        "STATUS",
        "PING",
        $"BACKUP {backupFile}",
        "HELP",
    ];

    [Test]
    public async Task Batch_mode_runs_every_command_with_exactly_one_line_each()
    {
        string backup = Path.Combine(_directory, "batch.snap");

        var result = await RunAsync([.. EveryCommand("b", backup), "FROB", "EXIT", "GET never"]);

        string[] expected =
        [
            "^OK$", "^hello world$", "^OK$", @"^\(not found\)$", "^OK$", "^OK$", "^OK$", "^OK$",
            @"^replica 1: view \d+ members 1,2,3 .* \| replica 2: view \d+ members 1,2,3 .* \| replica 3: view \d+ members 1,2,3 ",
            @"^PONG replica [123] \d+(\.\d+)? ms$",
            $"^backup: [1-9][0-9]* bytes through write .* written to {backup}$",
            "^commands: PUT GET DELETE UPDATE CAS PUTNX EXISTS MSET MGET TXN LIST WATCH STATUS PING BACKUP USER ROLE HELP EXIT; `client --help` prints what each does$",
            "^ERROR unknown command 'FROB'; type HELP for the list$",
        ];
        Assert.That(result.Lines, Has.Count.EqualTo(expected.Length), string.Join("\n", result.Lines) + result.Stderr);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.That(result.Lines[i], Does.Match(expected[i]), $"line {i + 1}");
        }
        Assert.That(result.ExitCode, Is.EqualTo(3), "a line printed ERROR");
        Assert.That(new FileInfo(backup).Length, Is.GreaterThan(0));
    }

    [Test]
    public async Task Json_batch_mode_gives_one_json_object_per_command()
    {
        string backup = Path.Combine(_directory, "json.snap");

        var result = await RunAsync([.. EveryCommand("j", backup), "PUT jbin \"\\xff\\x00\"", "GET jbin", "GET \"\""], "--json");

        Assert.That(result.Lines, Has.Count.EqualTo(15), string.Join("\n", result.Lines) + result.Stderr);
        var objects = result.Lines.Select(line => JsonDocument.Parse(line).RootElement).ToList();
        Assert.That(objects.Select(o => o.GetProperty("command").GetString()), Is.EqualTo(new[]
        {
            "put", "get", "delete", "get", "role", "user", "user", "role", "status", "ping", "backup", "help", "put", "get", "get",
        }));
        Assert.That(objects.Select(o => o.GetProperty("status").GetString()), Is.EqualTo(new[]
        {
            "ok", "ok", "ok", "not_found", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "error",
        }));
        Assert.That(objects[1].GetProperty("key").GetString(), Is.EqualTo("jk"));
        Assert.That(objects[1].GetProperty("value").GetString(), Is.EqualTo("hello world"));
        Assert.That(objects[4].GetProperty("name").GetString(), Is.EqualTo("jr"));
        Assert.That(objects[8].GetProperty("replicas").EnumerateArray().Select(r => r.GetProperty("reachable").GetBoolean()), Is.EqualTo(new[] { true, true, true }));
        Assert.That(objects[8].GetProperty("replicas")[0].GetProperty("members").EnumerateArray().Select(m => m.GetInt32()), Is.EqualTo(new[] { 1, 2, 3 }));
        Assert.That(objects[9].GetProperty("replica").GetInt32(), Is.InRange(1, 3));
        Assert.That(objects[9].GetProperty("ms").GetDouble(), Is.GreaterThan(0));
        Assert.That(objects[10].GetProperty("bytes").GetInt64(), Is.EqualTo(new FileInfo(backup).Length));
        Assert.That(objects[11].GetProperty("commands").EnumerateArray().Select(c => c.GetString()), Does.Contain("status").And.Contain("ping").And.Contain("backup"));
        Assert.That(objects[13].TryGetProperty("value", out _), Is.False, "bytes that are not UTF-8 go in valueBase64");
        Assert.That(objects[13].GetProperty("valueBase64").GetString(), Is.EqualTo(Convert.ToBase64String([0xff, 0x00])));
        Assert.That(objects[14].GetProperty("error").GetString(), Is.EqualTo("key is empty; a key is 1 to 1024 bytes of UTF-8 text"));
        Assert.That(result.ExitCode, Is.EqualTo(3));
    }

    [Test]
    public async Task One_shot_runs_every_command_and_exits_by_outcome()
    {
        string backup = Path.Combine(_directory, "one-shot.snap");
        (string[] Args, int Exit, string Pattern)[] cases =
        [
            (["put", "ok", "two", "words"], 0, "^OK$"),
            (["GET", "ok"], 0, "^two words$"),
            (["delete", "ok"], 0, "^OK$"),
            (["get", "ok"], 1, @"^\(not found\)$"),
            (["del", "ok"], 1, @"^\(not found\)$"),
            (["role", "add", "or", "read:o/"], 0, "^OK$"),
            (["user", "add", "ou", "ou-password-1", "or"], 0, "^OK$"),
            (["user", "delete", "ou"], 0, "^OK$"),
            (["role", "delete", "or"], 0, "^OK$"),
            (["status"], 0, @"^replica 1: view \d+ members 1,2,3 "),
            (["ping"], 0, @"^PONG replica [123] \d+(\.\d+)? ms$"),
            (["backup", backup], 0, $"^backup: [1-9][0-9]* bytes .* written to {backup}$"),
            (["help"], 0, "^usage: client <cluster.json> "),
            (["--json", "get", "ok"], 1, "^{\"command\":\"get\",\"key\":\"ok\",\"status\":\"not_found\",\"version\":\"0\"}$"),
            (["--json", "put", "ok", "v"], 0, "^{\"command\":\"put\",\"key\":\"ok\",\"status\":\"ok\",\"version\":\"[1-9][0-9]*@[123]\"}$"),
            (["--json", "get", "ok"], 0, "^{\"command\":\"get\",\"key\":\"ok\",\"status\":\"ok\",\"value\":\"v\",\"version\":\"[1-9][0-9]*@[123]\"}$"),
            (["--json", "status"], 0, "^{\"command\":\"status\",\"status\":\"ok\",\"replicas\":\\[{\"id\":1,\"reachable\":true,"),
            (["--json", "ping"], 0, "^{\"command\":\"ping\",\"status\":\"ok\",\"replica\":[123],\"ms\":"),
            (["--json", "backup", backup], 0, "^{\"command\":\"backup\",\"status\":\"ok\",\"file\":"),
            (["--json", "user", "delete", "nobody"], 1, "^{\"command\":\"user\",\"status\":\"not_found\"}$"),
        ];
        foreach (var (args, exit, pattern) in cases)
        {
            var result = await RunAsync([], args);
            Assert.That(result.Lines.FirstOrDefault(), Does.Match(pattern), $"client {string.Join(' ', args)}: {result.Stderr}");
            Assert.That(result.ExitCode, Is.EqualTo(exit), $"client {string.Join(' ', args)}");
        }
        var status = await RunAsync([], "status");
        Assert.That(status.Lines, Has.Count.EqualTo(3), "one line per replica");
    }

    [Test]
    public async Task The_prompt_runs_every_command()
    {
        string backup = Path.Combine(_directory, "prompt.snap");

        var result = await RunAsync([.. EveryCommand("p", backup), "EXIT"], "--interactive");

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Stderr);
        string output = string.Join("\n", result.Lines);
        Assert.That(output, Does.StartWith("KvReplica client, connected to replica "));
        // What follows each prompt is the result of one command.
        var answers = output.Split("kv> ")[1..].Select(a => a.TrimEnd('\n').Split('\n')).ToList();
        Assert.That(answers, Has.Count.EqualTo(13), output);
        Assert.That(answers.Take(8).Select(a => a.Single()), Is.EqualTo(new[] { "OK", "hello world", "OK", "(not found)", "OK", "OK", "OK", "OK" }));
        Assert.That(answers[8], Has.Length.EqualTo(3).And.All.Match(@"^replica [123]: view \d+ members 1,2,3 "), "STATUS: one line per replica");
        Assert.That(answers[9].Single(), Does.Match(@"^PONG replica [123] \d+(\.\d+)? ms$"));
        Assert.That(answers[10].Single(), Does.StartWith("backup: ").And.EndWith($"written to {backup}"));
        Assert.That(answers[11], Does.Contain("Keys and values:"), "HELP at the prompt prints the whole text");
        Assert.That(answers[12], Is.EqualTo(new[] { "" }), "EXIT prints nothing");
    }

    [Test]
    public async Task Version_and_help_of_both_programs()
    {
        var client = await RunProgramAsync(BuiltExecutables.Client, "--version");
        var node = await RunProgramAsync(BuiltExecutables.Node, "--version");
        var bench = await RunProgramAsync(BuiltExecutables.Client, "bench", "--help");
        var usage = await RunProgramAsync(BuiltExecutables.Client, "--frobnicate");

        // Every project takes its Version from Directory.Build.props, this one too.
        var version = typeof(ClientCommandTests).Assembly.GetName().Version!;
        string expected = $"{version.Major}.{version.Minor}.{version.Build} (protocol {KvReplica.Protocol.Wire.ProtocolVersion.Current})\n";
        Assert.That(client, Is.EqualTo((0, "client " + expected, "")));
        Assert.That(node, Is.EqualTo((0, "node " + expected, "")));
        Assert.That(bench.ExitCode, Is.EqualTo(0));
        foreach (string option in new[] { "--connections <n>", "--duration <x>", "--write-ratio <x>", "--value-size <n>", "--keys <n>", "--warmup <x>", "--fill" })
        {
            string line = bench.Stdout.Split('\n').Single(l => l.TrimStart().StartsWith(option, StringComparison.Ordinal));
            Assert.That(line, Does.Match(@"\[default: [^\]]+\]$"), option);
            Assert.That(line, Does.Match(option == "--fill" ? "off" : @"\d\.\.\d"), option + " states its range");
        }
        Assert.That(usage.ExitCode, Is.EqualTo(2));
        Assert.That(usage.Stderr, Does.StartWith("client: unknown option '--frobnicate'"));
        foreach (string mode in new[] { "prompt", "batch", "one-shot", "bench", "--version" })
        {
            Assert.That(usage.Stderr, Does.Contain(mode), "the usage lists every mode");
        }
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunProgramAsync(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program, args)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
        };
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(Deadline);
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}

/// <summary>The client against a cluster that is not whole: what STATUS exits with and what errors say to do.</summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class ClientDegradedClusterTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Test]
    public async Task With_two_of_three_replicas_down_status_exits_4_and_a_write_says_to_start_more_replicas()
    {
        await using var cluster = await LocalCluster.StartAsync(count: 3);
        cluster.Kill(2);
        cluster.Kill(3);

        var status = await ClientProcess.RunAsync(cluster.ConfigPath, [], Deadline, "status");
        var json = await ClientProcess.RunAsync(cluster.ConfigPath, [], Deadline, "--json", "status");
        var batch = await ClientProcess.RunAsync(cluster.ConfigPath, ["STATUS", "PING"], Deadline);

        Assert.That(status.ExitCode, Is.EqualTo(4), string.Join("\n", status.Lines));
        Assert.That(status.Lines, Has.Some.StartWith("replica 2: unreachable (connection refused)"));
        Assert.That(status.Lines[^1], Does.StartWith("not whole: replica 2 unreachable, replica 3 unreachable; start the replicas that are down"));
        Assert.That(JsonDocument.Parse(json.Lines.Single()).RootElement.GetProperty("status").GetString(), Is.EqualTo("degraded"));
        Assert.That(json.ExitCode, Is.EqualTo(4));
        Assert.That(batch.Lines, Has.Count.EqualTo(2), string.Join("\n", batch.Lines));
        Assert.That(batch.ExitCode, Is.EqualTo(4), "no ERROR line, and a STATUS that was not whole: " + string.Join("\n", batch.Lines));

        // Replica 1 answers NoMajority once it suspects the other two; until then a write waits.
        var clock = Stopwatch.StartNew();
        ClientProcess.Result put;
        do
        {
            put = await ClientProcess.RunAsync(cluster.ConfigPath, [], Deadline, "--timeout", "3000", "put", "k", "v");
            Assert.That(clock.Elapsed, Is.LessThan(Deadline), "replica 1 never answered NoMajority: " + string.Join("\n", put.Lines));
        }
        while (!put.Lines.Single().Contains("NoMajority", StringComparison.Ordinal));
        Assert.That(put.ExitCode, Is.EqualTo(3));
        Assert.That(put.Lines.Single(), Does.StartWith("ERROR NoMajority: no majority: 1 of 3 replicas reachable")
            .And.EndWith($"; start more replicas or check the network; `client {cluster.ConfigPath} status` shows which are down"));
    }

    [Test]
    public async Task With_every_replica_down_the_client_fails_at_once_and_says_to_start_them()
    {
        await using var cluster = await LocalCluster.StartAsync(count: 3);
        foreach (var (id, _) in cluster.Replicas)
        {
            cluster.Kill(id);
        }

        var clock = Stopwatch.StartNew();
        var oneShot = await ClientProcess.RunAsync(cluster.ConfigPath, [], Deadline, "--timeout", "30000", "get", "k");
        var batch = await ClientProcess.RunAsync(cluster.ConfigPath, ["GET k"], Deadline, "--timeout", "30000");

        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(15)), "two runs, each failing at once rather than after 30 s");
        Assert.That(oneShot.ExitCode, Is.EqualTo(3));
        Assert.That(oneShot.Lines.Single(), Does.StartWith("ERROR no replica reachable: replica 1 at 127.0.0.1:").And.Contain("connection refused")
            .And.EndWith($"; start the replicas (bin/node <id> {cluster.ConfigPath}) or check their hosts and ports in {cluster.ConfigPath}; `client {cluster.ConfigPath} status` shows each one"));
        Assert.That(batch.ExitCode, Is.EqualTo(3));
        Assert.That(batch.Stderr, Does.StartWith("client: no replica reachable: ").And.Contain("; start the replicas"));
    }
}
