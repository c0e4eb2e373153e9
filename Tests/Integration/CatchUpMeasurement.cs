using System.Diagnostics;
using System.Text;
using KvReplica.Client;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;
using KvReplica.Store.Persistence;
using NUnit.Framework;
using KvReplica.Transport;

namespace KvReplica.Tests.Integration;

/// <summary>
/// How long a replica that was down while 100,000 writes were submitted takes to catch up once
/// restarted. A measurement, run on request: <c>./run_tests.sh --filter Name~Catch_up</c>.
/// </summary>
/// <remarks>
/// Under all-member delivery (until view changes exist) those writes cannot be delivered while
/// the replica is down: they are held by the others, and their clients wait. So this measures
/// catch-up by re-sent log suffix: restart, recovery, the peers re-sending every held write,
/// logging and acknowledging them, and delivery everywhere. The figure is printed; the test
/// asserts only that every write completed and is on the restarted replica.
/// </remarks>
[TestFixture]
[Category("Integration")]
[Explicit("a measurement: run it by name")]
[NonParallelizable]
public sealed class CatchUpMeasurement
{
    private const int Writes = 100_000;

    [Test]
    public async Task Catch_up_after_being_down_for_100000_writes()
    {
        await using var cluster = await LocalCluster.StartAsync(writeTimeoutMs: 590_000, maxPendingWrites: 2 * Writes);
        var config = ClusterConfigFile.Load(cluster.ConfigPath);
        await using var client = await KvClient.ConnectAsync(config, new KvClientOptions { PreferredReplicaId = 1, RequestTimeout = TimeSpan.FromMinutes(10) });
        await client.PutAsync("warm", "up");

        cluster.Kill(3);
        var submitted = Stopwatch.StartNew();
        var puts = Enumerable.Range(0, Writes).Select(i => client.PutAsync($"catchup-{i}", $"value-{i}")).ToList();
        // Every write is held (logged) at replica 1 before replica 3 comes back: count them in its log.
        await cluster.WaitUntilAsync(() => HeldInLog(cluster.DataDirectory(1)) >= Writes, TimeSpan.FromMinutes(5), $"{Writes} writes held at replica 1");
        TestContext.Progress.WriteLine($"{Writes} writes held at replicas 1 and 2 after {submitted.ElapsedMilliseconds} ms; none can complete without replica 3");
        Assert.That(puts.Count(p => p.IsCompleted), Is.Zero, "no write completes while a member is down");

        var catchUp = Stopwatch.StartNew();
        await cluster.RestartAsync(3);
        long rejoinedMs = catchUp.ElapsedMilliseconds;
        await Task.WhenAll(puts);
        long allDeliveredMs = catchUp.ElapsedMilliseconds;
        TestContext.Progress.WriteLine($"replica 3 restarted and linked in {rejoinedMs} ms; all {Writes} writes delivered and acknowledged {allDeliveredMs} ms after the restart began");

        await using var local = await KvClient.ConnectAsync(config, new KvClientOptions { PreferredReplicaId = 3, ReadMode = ReadMode.Local });
        for (int i = 0; i < Writes; i += 997)
        {
            var got = await local.GetAsync($"catchup-{i}");
            Assert.That(got.Found && Encoding.UTF8.GetString(got.Value.Span) == $"value-{i}", Is.True, $"catchup-{i} on replica 3");
        }
    }

    private static int HeldInLog(string directory)
    {
        int held = 0;
        foreach (string segment in Directory.GetFiles(directory, "wal-*.log"))
        {
            byte[] bytes;
            using (var file = new FileStream(segment, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            {
                bytes = new byte[file.Length];
                file.ReadExactly(bytes);
            }
            // The segment is being appended to: a record cut at the end is just not counted yet.
            held += WriteAheadLog.Scan(bytes).Entries.Count(e => e.Held?.Key.StartsWith("catchup-", StringComparison.Ordinal) == true);
        }
        return held;
    }
}
