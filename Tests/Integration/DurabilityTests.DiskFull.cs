using System.Text.RegularExpressions;
using KvReplica.Protocol.Config;
using KvReplica.Tests.Faults;
using NUnit.Framework;
using NodeExitCodes = KvReplica.Node.ExitCodes;
using KvReplica.Transport;

namespace KvReplica.Tests.Integration;

public sealed partial class DurabilityTests
{
    [Test]
    public async Task A_replica_whose_disk_fills_up_leaves_with_exit_code_5_loses_no_acknowledged_write_and_rejoins_once_space_is_freed()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            Assert.Ignore("needs Linux and root to mount a small tmpfs as a replica's data directory (CI runs as root)");
        }
        // Replica 3's data directory is a 2 MiB tmpfs; the others' are on the ordinary disk.
        await using var cluster = await LocalCluster.StartAsync(writeTimeoutMs: 3000, beforeStart: async c =>
        {
            string directory = c.DataDirectory(3);
            Directory.CreateDirectory(directory);
            var mount = await Shell.TryRunAsync("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", directory);
            if (mount.ExitCode != 0)
            {
                Assert.Ignore($"cannot mount a tmpfs on {directory}: {mount.Errors.Trim()}");
            }
            c.OnDispose(async () => await Shell.TryRunAsync("umount", "-l", directory));
        });
        var config = ClusterConfigFile.Load(cluster.ConfigPath);
        await using var writers = new Writers(config, count: 4, valueBytes: 8192);

        int exitCode = await cluster.WaitForExitAsync(3, ConvergenceDeadline);
        NodeExitCodeTests.AssertNoUnhandledException(cluster, 3);
        NodeExitCodeTests.AssertOneLine(cluster, 3, "disk full: ");
        Assert.That(exitCode, Is.EqualTo(NodeExitCodes.DiskFull));
        Assert.That(cluster.Log(3), Does.Contain("disk full: cannot log to"), "the log says why, too");

        // The others go on without it.
        int ackedAtExit = writers.Acked.Count;
        await cluster.WaitUntilAsync(() => writers.Acked.Count > ackedAtExit + 100, ConvergenceDeadline, "writes acknowledged by replicas 1 and 2 after replica 3 left");
        Assert.That(Regex.IsMatch(cluster.Log(1), @"view \d+: members 1,2(\r?\n|$)", RegexOptions.Multiline), Is.True, "replica 1 installed a view without replica 3");
        await writers.StopAsync();
        var acked = new Dictionary<string, string>(writers.Acked);
        TestContext.Progress.WriteLine($"acknowledged {acked.Count} writes ({ackedAtExit} before replica 3 left), {writers.Failed} failed or unknown");
        foreach (int replica in new[] { 1, 2 })
        {
            await AssertHoldsEveryAckedWriteAsync(cluster, config, replica, acked);
        }

        // The README's remedy: free space, start it again; it rejoins by itself with everything.
        var grow = await Shell.TryRunAsync("mount", "-o", "remount,size=256m", cluster.DataDirectory(3));
        Assert.That(grow.ExitCode, Is.Zero, grow.Errors);
        await cluster.RestartAsync(3);
        await cluster.WaitUntilAsync(() => cluster.InstalledViewOfAll(3), ConvergenceDeadline, "replica 3 back in a view of all three");
        await AssertHoldsEveryAckedWriteAsync(cluster, config, 3, acked);
    }
}
