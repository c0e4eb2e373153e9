using KvReplica.Client;
using KvReplica.Protocol.Config;
using KvReplica.Tests.Faults;
using NUnit.Framework;
using NodeExitCodes = KvReplica.Node.ExitCodes;
using KvReplica.Transport;

namespace KvReplica.Tests.Integration;

/// <summary>
/// Real <c>node</c> processes stopped every way they stop: each exit has its documented code
/// (README, "Exit codes"), at most one line on stderr saying why, and never an unhandled exception.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class NodeExitCodeTests
{
    private static readonly TimeSpan ExitDeadline = TimeSpan.FromSeconds(30);

    [TestCase("SIGTERM")]
    [TestCase("SIGINT")]
    public async Task A_signal_stops_a_serving_replica_with_exit_code_0_and_nothing_on_stderr(string signal)
    {
        await using var cluster = await LocalCluster.StartAsync();
        var config = ClusterConfigFile.Load(cluster.ConfigPath);
        await using (var client = await KvClient.ConnectAsync(config, new KvClientOptions { PreferredReplicaId = 2 }))
        {
            await client.PutAsync("before-stop", "v");
        }

        int pid = cluster.ProcessId(2);
        if (signal == "SIGTERM")
        {
            Shell.Terminate(pid);
        }
        else
        {
            Shell.Interrupt(pid);
        }
        int exitCode = await cluster.WaitForExitAsync(2, ExitDeadline);

        Assert.That(cluster.Log(2), Does.Contain("stopped; delivered through"), "it went through the clean stop");
        AssertNoUnhandledException(cluster, 2);
        Assert.That(cluster.Stderr(2), Is.Empty);
        Assert.That(exitCode, Is.EqualTo(NodeExitCodes.Stopped));
    }

    [Test]
    public async Task SIGTERM_while_the_replica_is_still_starting_exits_0()
    {
        await using var cluster = await LocalCluster.StartAsync();
        cluster.Kill(3);
        // Frozen peers accept connections but never answer: replica 3's start-up question to
        // them waits out its 2 s timeout, after it recovered and before it listens.
        Shell.Stop(cluster.ProcessId(1));
        Shell.Stop(cluster.ProcessId(2));
        try
        {
            cluster.StartProcess(3);
            await cluster.WaitUntilAsync(() => cluster.Log(3).Contains("recovered from "), ExitDeadline, "replica 3 recovered and asking its peers");
            Shell.Terminate(cluster.ProcessId(3));
            int exitCode = await cluster.WaitForExitAsync(3, ExitDeadline);

            Assert.That(cluster.Log(3), Does.Not.Contain(" listening on "), "it was stopped during start-up");
            AssertNoUnhandledException(cluster, 3);
            Assert.That(cluster.Stderr(3), Is.Empty);
            Assert.That(exitCode, Is.EqualTo(NodeExitCodes.Stopped));
        }
        finally
        {
            Shell.Continue(cluster.ProcessId(1));
            Shell.Continue(cluster.ProcessId(2));
        }
    }

    [Test]
    public async Task A_replica_restarted_on_an_old_copy_of_its_data_while_its_peers_were_down_stops_with_exit_code_3_and_one_line()
    {
        await using var cluster = await LocalCluster.StartAsync();
        var config = ClusterConfigFile.Load(cluster.ConfigPath);
        string copy = cluster.DataDirectory(3) + "-old";
        // The copy must be of the view the peers are still in when they stop: a replica that
        // recovers an older view waits for its install and never reads their batches. Start-up
        // under load can change views, so take the copy again if one happened meanwhile.
        for (int attempt = 1; ; attempt++)
        {
            string viewsBefore = LastViews(cluster);
            CopyDirectory(cluster.DataDirectory(3), copy);
            await using (var client = await KvClient.ConnectAsync(config))
            {
                for (int i = 0; i < 20; i++)
                {
                    await client.PutAsync($"k{attempt}-{i}", "v");
                }
            }
            if (LastViews(cluster) == viewsBefore || attempt == 5)
            {
                break;
            }
        }
        // Every replica down at once, so none is removed from the view.
        foreach (int id in new[] { 1, 2, 3 })
        {
            cluster.Kill(id);
        }
        Directory.Delete(cluster.DataDirectory(3), recursive: true);
        Directory.Move(copy, cluster.DataDirectory(3));

        // Replica 3 starts first: no peer answers its start-up question, so it cannot catch up,
        // and only its peers' first batches show that it is behind what it promised them.
        cluster.StartProcess(3);
        await cluster.WaitUntilAsync(() => cluster.Log(3).Contains(" listening on ") || !cluster.IsRunning(3), ExitDeadline, "replica 3 listening");
        cluster.StartProcess(1);
        cluster.StartProcess(2);
        int exitCode = await cluster.WaitForExitAsync(3, ExitDeadline);

        AssertNoUnhandledException(cluster, 3);
        AssertOneLine(cluster, 3, "this replica's data is behind what its peers know it promised");
        Assert.That(exitCode, Is.EqualTo(NodeExitCodes.StateLost));
    }

    // The last "view N: members ..." line of each replica's log.
    private static string LastViews(LocalCluster cluster) => string.Join(" | ", cluster.Replicas.Select(r =>
        cluster.Log(r.Id).Split('\n').LastOrDefault(l => l.Contains("] view ", StringComparison.Ordinal))?.Split("] ")[^1] ?? ""));

    // A live replica's files: its log may end in a torn record, which recovery truncates.
    private static void CopyDirectory(string from, string to)
    {
        if (Directory.Exists(to))
        {
            Directory.Delete(to, recursive: true);
        }
        Directory.CreateDirectory(to);
        // Not the LOCK file: the replica holds it, and the next start creates it.
        foreach (string file in Directory.EnumerateFiles(from).Where(f => Path.GetFileName(f) != "LOCK"))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }
    }

    internal static void AssertNoUnhandledException(LocalCluster cluster, int id) =>
        Assert.That(cluster.Log(id), Does.Not.Contain("Unhandled exception").And.Not.Contain("   at "), $"replica {id} printed no exception");

    /// <summary>Replica <paramref name="id"/> wrote exactly one line to stderr, containing <paramref name="expected"/>.</summary>
    internal static void AssertOneLine(LocalCluster cluster, int id, string expected)
    {
        var lines = cluster.Stderr(id).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), $"one line on stderr; got:\n{cluster.Stderr(id)}");
        Assert.That(lines[0], Does.StartWith("node: ").And.Contain(expected));
    }
}
