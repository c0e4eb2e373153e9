using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using NUnit.Framework;

namespace KvReplica.Tests.Integration;

/// <summary>Real <c>node</c> processes on loopback, driven through the real <c>client</c> in batch mode.</summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class ClusterIntegrationTests
{
    private static readonly TimeSpan ClientDeadline = TimeSpan.FromSeconds(60);

    [Test]
    public async Task Put_get_delete_round_trip_keeps_every_byte_of_awkward_values()
    {
        await using var cluster = await LocalCluster.StartAsync();
        var result = await ClientProcess.RunAsync(cluster.ConfigPath,
        [
            "PUT plain hello world with   spaces",
            "get plain",
            "PUT pipes a|b||c |",
            "GET pipes",
            "put quotes \"she said \\\"hi\\\" and left\"",
            "GET quotes",
            "PUT lines \"one\\ntwo\\r\\nthree\"",
            "GET lines",
            "PUT unicode žluťoučký kůň 🐎 日本語",
            "GET unicode",
            "PUT \"key with spaces\" v",
            "GET \"key with spaces\"",
            "DELETE plain",
            "GET plain",
            "DELETE plain",
            "GET never-written",
        ], ClientDeadline);

        Assert.That(result.Lines, Is.EqualTo(new[]
        {
            "OK",
            "hello world with   spaces",
            "OK",
            "a|b||c |",
            "OK",
            "she said \"hi\" and left",
            "OK",
            "\"one\\ntwo\\r\\nthree\"",
            "OK",
            "žluťoučký kůň 🐎 日本語",
            "OK",
            "v",
            "OK",
            "(not found)",
            "(not found)",
            "(not found)",
        }));
    }

    [Test]
    public async Task Four_concurrent_clients_through_different_replicas_leave_every_replica_with_the_same_state()
    {
        await using var cluster = await LocalCluster.StartAsync();
        const int keys = 40;
        const int writesPerClient = 300;
        // Each client overwrites a shared key space, so the replicas must agree on one order.
        var clients = Enumerable.Range(0, 4).Select(c =>
        {
            var commands = Enumerable.Range(0, writesPerClient).Select(i => i % 7 == 6
                ? $"DELETE k{(i * 13 + c) % keys}"
                : $"PUT k{(i * 13 + c) % keys} client{c}-write{i}");
            int replica = c % cluster.Replicas.Count + 1;
            return ClientProcess.RunAsync(cluster.ConfigPath, commands, ClientDeadline, "--replica", replica.ToString());
        }).ToList();
        var results = await Task.WhenAll(clients);
        foreach (var result in results)
        {
            Assert.That(result.Lines, Has.Count.EqualTo(writesPerClient));
            Assert.That(result.Lines, Has.All.Matches<string>(l => l is "OK" or "(not found)"), string.Join("\n", result.Lines.Where(l => l is not ("OK" or "(not found)"))));
        }

        var reads = Enumerable.Range(0, keys).Select(k => $"GET k{k}").ToList();
        var states = new List<IReadOnlyList<string>>();
        foreach (var (id, _) in cluster.Replicas)
        {
            var state = await ClientProcess.RunAsync(cluster.ConfigPath, reads, ClientDeadline, "--replica", id.ToString(), "--local");
            Assert.That(state.Lines, Has.Count.EqualTo(keys), $"replica {id}: {state.Stderr}");
            states.Add(state.Lines);
        }
        Assert.That(states[0].Count(v => v.StartsWith("client", StringComparison.Ordinal)), Is.GreaterThan(0), "some keys hold a value");
        Assert.That(states[1], Is.EqualTo(states[0]), "replica 2 agrees with replica 1");
        Assert.That(states[2], Is.EqualTo(states[0]), "replica 3 agrees with replica 1");
    }

    [Test]
    public async Task After_one_replica_is_killed_a_view_change_removes_it_writes_and_reads_go_on_and_it_rejoins_when_back()
    {
        await using var cluster = await LocalCluster.StartAsync(writeTimeoutMs: 1500);
        var before = await ClientProcess.RunAsync(cluster.ConfigPath, ["PUT survivor stays", "PUT other value"], ClientDeadline);
        Assert.That(before.Lines, Is.EqualTo(new[] { "OK", "OK" }));

        cluster.Kill(3);
        var clock = Stopwatch.StartNew();
        await cluster.WaitUntilAsync(() => cluster.Log(1).Contains("view 1: members 1,2") && cluster.Log(2).Contains("view 1: members 1,2"),
            TimeSpan.FromSeconds(20), "replicas 1 and 2 to install a view without replica 3");
        TestContext.Progress.WriteLine($"view without replica 3 installed {clock.ElapsedMilliseconds} ms after the kill");

        foreach (int via in new[] { 1, 2 })
        {
            var session = await ClientProcess.RunAsync(cluster.ConfigPath, [$"PUT after-{via} yes", "GET survivor", "GET other", "GET missing", $"GET after-{via}"], ClientDeadline, "--replica", via.ToString());
            Assert.That(session.Lines, Is.EqualTo(new[] { "OK", "stays", "value", "(not found)", "yes" }), $"writes and majority reads through replica {via}");
        }
        var status = await ClientProcess.RunAsync(cluster.ConfigPath, [], ClientDeadline, "status");
        Assert.That(status.Lines, Has.Count.EqualTo(4), "a line per replica, then what is wrong");
        Assert.That(status.Lines[3], Does.StartWith("not whole: replica 3 unreachable"));
        Assert.That(status.Lines[0], Does.StartWith("replica 1: view 1 members 1,2 suspects - delivered "));
        Assert.That(status.Lines[1], Does.StartWith("replica 2: view 1 members 1,2 suspects - delivered "));
        Assert.That(status.Lines[2], Does.StartWith("replica 3: unreachable"));

        // Back: it catches up and a view change adds it; it then serves reads and takes writes.
        clock.Restart();
        await cluster.RestartAsync(3);
        await cluster.WaitUntilAsync(() => System.Text.RegularExpressions.Regex.IsMatch(cluster.Log(3), @"view \d+: members 1,2,3\r?\n"),
            TimeSpan.FromSeconds(30), "replica 3 to rejoin in a view of all three");
        TestContext.Progress.WriteLine($"replica 3 back in the view {clock.ElapsedMilliseconds} ms after its restart began");
        var rejoined = await ClientProcess.RunAsync(cluster.ConfigPath, ["GET after-1", "GET after-2", "PUT after-3 back", "GET after-3"], ClientDeadline, "--replica", "3");
        Assert.That(rejoined.Lines, Is.EqualTo(new[] { "yes", "yes", "OK", "back" }), "reads and writes through the rejoined replica");
        var whole = await ClientProcess.RunAsync(cluster.ConfigPath, [], ClientDeadline, "status");
        Assert.That(whole.Lines.Select(l => System.Text.RegularExpressions.Regex.Match(l, @"view \d+ members [\d,]+").Value).Distinct().ToList(), Has.Count.EqualTo(1).And.All.EndsWith("members 1,2,3"),
            $"every replica in one view of all three: {string.Join(" | ", whole.Lines)}");
    }

    [Test]
    public async Task Garbage_bytes_and_an_oversized_length_prefix_close_only_that_connection()
    {
        await using var cluster = await LocalCluster.StartAsync();
        int port = cluster.Port(1);

        await SendRawAsync(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        var oversized = new byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(oversized, 0x7FFF_FFF0);
        await SendRawAsync(port, oversized);
        await SendRawAsync(port, [0, 0, 0, 4, 0xC1, 0xC1, 0xC1, 0xC1]);

        await cluster.WaitUntilAsync(() => cluster.Log(1).Contains("exceeds the limit") && cluster.Log(1).Contains("malformed payload"),
            TimeSpan.FromSeconds(10), "replica 1 to log why it closed the bad connections");
        Assert.That(cluster.IsRunning(1), Is.True);
        var result = await ClientProcess.RunAsync(cluster.ConfigPath, ["PUT after-garbage fine", "GET after-garbage"], ClientDeadline, "--replica", "1");
        Assert.That(result.Lines, Is.EqualTo(new[] { "OK", "fine" }));
    }

    private static async Task SendRawAsync(int port, byte[] bytes)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", port);
        await socket.SendAsync(bytes);
        socket.Shutdown(SocketShutdown.Send);
        // Wait until the replica closes its side: it must not hang on to a bad connection.
        var buffer = new byte[256];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) > 0)
        {
        }
    }
}
