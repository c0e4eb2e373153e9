using System.Text;
using System.Text.RegularExpressions;
using KvReplica.Client;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;
using KvReplica.Tests.Faults;
using NUnit.Framework;
using KvReplica.Transport;

namespace KvReplica.Tests.Integration;

/// <summary>
/// A replica that fell further behind than the members keep in memory starts afresh inside its
/// running process (docs/design.md §9): a new incarnation, a snapshot catch-up, and a view
/// change adding it back, with no operator involved.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed partial class FreshStartTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Test]
    public async Task A_replica_too_far_behind_to_rejoin_from_recent_writes_starts_afresh_in_process_and_is_back_in_the_view()
    {
        // The members keep only 10 delivered writes; replica 3 misses 60.
        await using var cluster = await LocalCluster.StartAsync(recentDeliveredWrites: 10);
        var config = ClusterConfigFile.Load(cluster.ConfigPath);
        int pid = cluster.ProcessId(3);
        int socketsBefore = OpenFiles(pid).Count(f => f.StartsWith("socket:", StringComparison.Ordinal));
        int dataFilesBefore = OpenFiles(pid).Count(f => f.StartsWith(cluster.DataDirectory(3), StringComparison.Ordinal));
        Shell.Stop(pid);
        await cluster.WaitUntilAsync(() => RemovedThree().IsMatch(cluster.Log(1)) && RemovedThree().IsMatch(cluster.Log(2)), Deadline, "replicas 1 and 2 in a view without replica 3");
        var written = new Dictionary<string, string>();
        await using (var client = await KvClient.ConnectAsync(config, new KvClientOptions { PreferredReplicaId = 1 }))
        {
            for (int i = 0; i < 60; i++)
            {
                written[$"missed-{i}"] = $"value-{i}";
                await client.PutAsync($"missed-{i}", $"value-{i}");
            }
        }
        Shell.Continue(pid);

        await cluster.WaitUntilAsync(() => cluster.InstalledViewOfAll(3, after: "starting afresh") || !cluster.IsRunning(3), Deadline, "replica 3 started afresh and back in a view of 1,2,3");
        Assert.That(cluster.IsRunning(3), Is.True, $"replica 3 is still running; its log:\n{cluster.Log(3)}");
        Assert.That(cluster.ProcessId(3), Is.EqualTo(pid), "the same process: nobody restarted it");
        string log = cluster.Log(3);
        Assert.That(log, Does.Contain("cannot rejoin from replica").And.Contain("starting afresh"));
        Assert.That(log[log.IndexOf("starting afresh", StringComparison.Ordinal)..], Does.Contain("caught up from replica"), "the fresh start caught up from a member's snapshot");
        NodeExitCodeTests.AssertNoUnhandledException(cluster, 3);
        // The first run closed what it opened: its listener (or the second could not bind), its
        // peer links and its data directory's lock and log (or the second could not lock it).
        await cluster.WaitUntilAsync(() => OpenFiles(pid).Count(f => f.StartsWith("socket:", StringComparison.Ordinal)) <= socketsBefore, Deadline, $"replica 3's sockets back to the {socketsBefore} it had before (listener, peer links)");
        Assert.That(OpenFiles(pid).Count(f => f.StartsWith(cluster.DataDirectory(3), StringComparison.Ordinal)), Is.EqualTo(dataFilesBefore), "files open in the data directory: its lock and the log segment being written");

        // What it missed is there, read from replica 3 alone.
        await using var local = await KvClient.ConnectAsync(config, new KvClientOptions { PreferredReplicaId = 3, ReadMode = ReadMode.Local });
        foreach (var (key, value) in written)
        {
            var got = await local.GetAsync(key);
            Assert.That(got.Found && Encoding.UTF8.GetString(got.Value.Span) == value, Is.True, $"replica 3 holds {key}");
        }
    }

    // What the process's file descriptors point at: paths, or "socket:[inode]".
    private static List<string> OpenFiles(int pid)
    {
        var targets = new List<string>();
        foreach (string fd in Directory.EnumerateFiles($"/proc/{pid}/fd"))
        {
            try
            {
                targets.Add(new FileInfo(fd).LinkTarget ?? "");
            }
            catch (IOException)
            {
                // Closed while we listed it.
            }
        }
        return targets;
    }

    [GeneratedRegex(@"view \d+: members 1,2(\r?\n|$)", RegexOptions.Multiline)]
    private static partial Regex RemovedThree();
}
