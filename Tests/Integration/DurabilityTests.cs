using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using KvReplica.Client;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;
using KvReplica.Store;
using KvReplica.Store.Persistence;
using NUnit.Framework;
using KvReplica.Transport;

namespace KvReplica.Tests.Integration;

/// <summary>
/// Real <c>node</c> processes killed with SIGKILL under load and started again from their data
/// directories: every write a client saw acknowledged must then be readable from every replica.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed partial class DurabilityTests
{
    private static readonly TimeSpan ConvergenceDeadline = TimeSpan.FromSeconds(60);

    [Test]
    public async Task Twenty_SIGKILL_restarts_under_load_lose_no_acknowledged_write()
    {
        int seed = Environment.TickCount;
        TestContext.Progress.WriteLine($"kill schedule seed {seed}");
        var random = new Random(seed);
        await using var cluster = await LocalCluster.StartAsync(writeTimeoutMs: 3000, engineCommitEveryWrites: 2_000);
        var config = ClusterConfigFile.Load(cluster.ConfigPath);
        await using var writers = new Writers(config, count: 4);

        int ackedAtLastRestart = 0;
        for (int round = 0; round < 20; round++)
        {
            await Task.Delay(random.Next(100, 600));
            int victim = random.Next(1, 4);
            cluster.Kill(victim);
            await Task.Delay(random.Next(0, 300));
            await cluster.RestartAsync(victim);
            ackedAtLastRestart = writers.Acked.Count;
        }
        // Writes must flow again after the last restart, not merely have happened before it.
        await cluster.WaitUntilAsync(() => writers.Acked.Count > ackedAtLastRestart + 50, ConvergenceDeadline, "writes acknowledged after the last restart");
        await writers.StopAsync();

        TestContext.Progress.WriteLine($"acknowledged {writers.Acked.Count} writes, {writers.Failed} failed or unknown");
        Assert.That(writers.Acked, Has.Count.GreaterThan(500), "the writers made progress through the kills");
        foreach (int replica in new[] { 1, 2, 3 })
        {
            await AssertHoldsEveryAckedWriteAsync(cluster, config, replica, writers.Acked);
        }
        Assert.That(cluster.Log(1) + cluster.Log(2) + cluster.Log(3), Does.Contain("snapshot "), "snapshots were taken during the run, so recovery from a snapshot plus log was exercised");
    }

    [Test]
    public async Task Killing_every_replica_mid_load_and_restarting_loses_no_acknowledged_write()
    {
        await using var cluster = await LocalCluster.StartAsync(writeTimeoutMs: 3000);
        var config = ClusterConfigFile.Load(cluster.ConfigPath);
        var writers = new Writers(config, count: 4);
        await cluster.WaitUntilAsync(() => writers.Acked.Count > 300, ConvergenceDeadline, "writes acknowledged before the crash");
        foreach (int id in new[] { 1, 2, 3 })
        {
            cluster.Kill(id);
        }
        await writers.DisposeAsync();

        await Task.WhenAll(cluster.RestartAsync(1), cluster.RestartAsync(2), cluster.RestartAsync(3));
        foreach (int id in new[] { 1, 2, 3 })
        {
            Assert.That(cluster.Log(id), Does.Contain("recovered from "), $"replica {id} recovered from its data directory");
        }
        var acked = new Dictionary<string, string>(writers.Acked);
        foreach (int replica in new[] { 1, 2, 3 })
        {
            await AssertHoldsEveryAckedWriteAsync(cluster, config, replica, acked);
        }
        // And the restarted cluster takes new writes.
        await using var client = await KvClient.ConnectAsync(config);
        await client.PutAsync("after-restart", "yes");
        Assert.That(Encoding.UTF8.GetString((await client.GetAsync("after-restart")).Value.Span), Is.EqualTo("yes"));
    }

    [Test]
    public async Task A_torn_log_tail_is_truncated_with_its_offset_and_the_replica_rejoins()
    {
        await using var cluster = await LocalCluster.StartAsync();
        var config = ClusterConfigFile.Load(cluster.ConfigPath);
        await using (var client = await KvClient.ConnectAsync(config))
        {
            await client.PutAsync("before-tear", "kept");
        }
        cluster.Kill(2);
        string segment = Directory.GetFiles(cluster.DataDirectory(2), "wal-*.log").Order(StringComparer.Ordinal).Last();
        long length = new FileInfo(segment).Length;
        // A record cut short, as a crash mid-append leaves: the file's first record header (valid
        // length and checksum) followed by only part of its payload.
        byte[] start = await File.ReadAllBytesAsync(segment);
        await File.AppendAllBytesAsync(segment, start[..20]);

        await cluster.RestartAsync(2);
        Assert.That(cluster.Log(2), Does.Contain("torn or corrupt tail").And.Contain($"truncated to {length} bytes"));
        // The torn record is gone. The running replica may already have appended after the cut
        // (a view record while it rejoins), so the check is that the cut point holds no torn bytes.
        byte[] after = await File.ReadAllBytesAsync(segment);
        Assert.That(after[..(int)length], Is.EqualTo(start[..(int)length]), "the whole records before the tear are kept");
        Assert.That(after.Length == length || !after.AsSpan((int)length).StartsWith(start.AsSpan(0, 20)), Is.True, "the torn record was cut off");
        await using var local = await KvClient.ConnectAsync(config, new KvClientOptions { PreferredReplicaId = 2, ReadMode = ReadMode.Local });
        Assert.That(Encoding.UTF8.GetString((await local.GetAsync("before-tear")).Value.Span), Is.EqualTo("kept"));
    }

    [Test]
    public async Task Damage_in_the_middle_of_the_log_stops_the_replica_with_one_clear_line()
    {
        await using var cluster = await LocalCluster.StartAsync();
        var config = ClusterConfigFile.Load(cluster.ConfigPath);
        await using (var client = await KvClient.ConnectAsync(config))
        {
            for (int i = 0; i < 20; i++)
            {
                await client.PutAsync($"k{i}", new string('v', 100));
            }
        }
        cluster.Kill(3);
        string segment = Directory.GetFiles(cluster.DataDirectory(3), "wal-*.log").Single();
        byte[] bytes = await File.ReadAllBytesAsync(segment);
        bytes[bytes.Length / 3] ^= 0x10;
        await File.WriteAllBytesAsync(segment, bytes);

        cluster.StartProcess(3);
        int exitCode = await cluster.WaitForExitAsync(3, TimeSpan.FromSeconds(30));
        NodeExitCodeTests.AssertNoUnhandledException(cluster, 3);
        NodeExitCodeTests.AssertOneLine(cluster, 3, "write-ahead log is damaged");
        Assert.That(cluster.Stderr(3), Does.Contain(segment).And.Contain("offset"), "the line names the file and where in it");
        Assert.That(exitCode, Is.EqualTo(KvReplica.Node.ExitCodes.DamagedLog), "a damaged log has its own exit code");
    }

    [Test]
    public async Task A_backup_of_a_live_cluster_restores_into_a_fresh_cluster_with_the_same_keys_and_values()
    {
        string backup = Path.Combine(Path.GetTempPath(), $"kvreplica-backup-{Guid.NewGuid():N}.snap");
        try
        {
            Dictionary<string, string> written = [];
            await using (var source = await LocalCluster.StartAsync())
            {
                var config = ClusterConfigFile.Load(source.ConfigPath);
                await using (var client = await KvClient.ConnectAsync(config))
                {
                    for (int i = 0; i < 300; i++)
                    {
                        written[$"static-{i}"] = $"value-{i}-{new string('x', i % 50)}";
                        await client.PutAsync($"static-{i}", written[$"static-{i}"]);
                    }
                    for (int i = 0; i < 300; i += 7)
                    {
                        await client.DeleteAsync($"static-{i}");
                        written.Remove($"static-{i}");
                    }
                }
                // The cluster stays live: writers keep going while the backup is taken.
                await using var writers = new Writers(config, count: 2);
                await source.WaitUntilAsync(() => writers.Acked.Count > 200, ConvergenceDeadline, "live writes before the backup");
                var download = await ClientProcess.RunAsync(source.ConfigPath, [], TimeSpan.FromSeconds(60), "backup", backup);
                Assert.That(download.Lines.Single(), Does.StartWith("backup: ").And.Contain(" written to "));
                await source.WaitUntilAsync(() => writers.Acked.Count > 400, ConvergenceDeadline, "live writes after the backup");
                await writers.StopAsync();
                foreach (var (key, value) in writers.Acked)
                {
                    written[key] = value;
                }
            }

            KvStore snapshot;
            await using (var file = File.OpenRead(backup))
            {
                snapshot = SnapshotFormat.Read(file);
            }
            var inBackup = snapshot.Entries().ToDictionary(e => e.Key, e => Encoding.UTF8.GetString(e.Value));
            // One point of the total order: every write before the backup started is in it, and
            // of each writer's sequence of keys it holds a prefix (a later write never without an
            // earlier one), with some live writes inside it and some after it.
            Assert.That(inBackup.Where(e => e.Key.StartsWith("static-", StringComparison.Ordinal)), Is.EquivalentTo(written.Where(e => e.Key.StartsWith("static-", StringComparison.Ordinal))));
            for (int w = 0; w < 2; w++)
            {
                int held = Enumerable.Range(0, 100_000).TakeWhile(i => inBackup.ContainsKey($"w{w}-{i}")).Count();
                Assert.That(inBackup.Keys.Count(k => k.StartsWith($"w{w}-", StringComparison.Ordinal)), Is.EqualTo(held), $"writer {w}'s keys in the backup are a prefix");
                Assert.That(held, Is.GreaterThan(0));
            }
            Assert.That(inBackup.Count, Is.LessThan(written.Count), "writes acknowledged after the backup are not in it");

            await using var restored = await LocalCluster.StartAsync(restoreFrom: backup);
            var restoredConfig = ClusterConfigFile.Load(restored.ConfigPath);
            foreach (int replica in new[] { 1, 2, 3 })
            {
                await using var client = await KvClient.ConnectAsync(restoredConfig, new KvClientOptions { PreferredReplicaId = replica, ReadMode = ReadMode.Local });
                foreach (var key in written.Keys)
                {
                    var got = await client.GetAsync(key);
                    if (inBackup.TryGetValue(key, out string? expected))
                    {
                        Assert.That(got.Found && Encoding.UTF8.GetString(got.Value.Span) == expected, Is.True, $"replica {replica}: {key} as in the backup");
                    }
                    else
                    {
                        Assert.That(got.Found, Is.False, $"replica {replica}: {key} was written after the backup");
                    }
                }
            }
            await using (var client = await KvClient.ConnectAsync(restoredConfig))
            {
                await client.PutAsync("after-restore", "new");
                Assert.That(Encoding.UTF8.GetString((await client.GetAsync("after-restore")).Value.Span), Is.EqualTo("new"));
            }
        }
        finally
        {
            File.Delete(backup);
        }
    }

    [Test]
    public async Task A_replica_whose_data_directory_was_wiped_catches_up_from_a_peer_before_it_serves()
    {
        // The peer commits its engine before it streams, so the transfer is the engine's state
        // plus the log after it.
        await using var cluster = await LocalCluster.StartAsync();
        var config = ClusterConfigFile.Load(cluster.ConfigPath);
        var filled = new Dictionary<string, string>();
        await using (var client = await KvClient.ConnectAsync(config))
        {
            // Enough state that the engine's view streams in several chunks (1 MiB each).
            for (int i = 0; i < 12_000; i++)
            {
                filled[$"fill-{i}"] = $"{i}-{new string('f', 100)}";
            }
            await Task.WhenAll(filled.Select(e => client.PutAsync(e.Key, e.Value)));
        }
        await using var writers = new Writers(config, count: 2);
        await cluster.WaitUntilAsync(() => writers.Acked.Count > 200, ConvergenceDeadline, "writes before the wipe");
        await writers.StopAsync();
        cluster.Kill(3);
        Directory.Delete(cluster.DataDirectory(3), recursive: true);

        await cluster.RestartAsync(3);
        string log = cluster.Log(3);
        Assert.That(log, Does.Contain("catching up from replica").And.Contain("caught up from replica"));
        int caughtUpAt = log.IndexOf("caught up from replica", StringComparison.Ordinal);
        Assert.That(log.IndexOf(" listening on ", StringComparison.Ordinal), Is.GreaterThan(caughtUpAt), "it caught up before it listened, so it served nothing before");
        var bytes = System.Text.RegularExpressions.Regex.Match(log, @"caught up from replica \d+: (\d+) bytes");
        Assert.That(long.Parse(bytes.Groups[1].Value), Is.GreaterThan(1 << 20), "the transfer took more than one chunk");
        Assert.That(log, Does.Contain("(its engine through ").And.Not.Contain("its engine through 0.0"), "the peer's engine state was part of the transfer");

        foreach (var (key, value) in writers.Acked)
        {
            filled[key] = value;
        }
        await AssertHoldsEveryAckedWriteAsync(cluster, config, 3, filled);
        await using var after = await KvClient.ConnectAsync(config, new KvClientOptions { PreferredReplicaId = 3 });
        await after.PutAsync("after-catch-up", "yes");
        foreach (int replica in new[] { 1, 2, 3 })
        {
            await AssertHoldsEveryAckedWriteAsync(cluster, config, replica, new Dictionary<string, string> { ["after-catch-up"] = "yes" });
        }
    }

    // Part 0 is the peer's engine, streamed from a read transaction it keeps for a resume; part 1
    // is its log segments, concatenated.
    [TestCase("snapshot", 0)]
    [TestCase("suffix", 1)]
    public async Task A_catch_up_stream_cut_mid_transfer_resumes_where_it_stopped(string file, int part)
    {
        await using var cluster = await LocalCluster.StartAsync();
        var config = ClusterConfigFile.Load(cluster.ConfigPath);
        var filled = new Dictionary<string, string>();
        await using (var client = await KvClient.ConnectAsync(config))
        {
            // About 48 MiB, so that the transfer is still running when the test cuts it.
            for (int i = 0; i < 4_800; i++)
            {
                filled[$"big-{i}"] = $"{i}-{new string((char)('a' + i % 26), 10_000)}";
            }
            foreach (var batch in filled.Chunk(400))
            {
                await Task.WhenAll(batch.Select(e => client.PutAsync(e.Key, e.Value)));
            }
        }
        cluster.Kill(3);
        Directory.Delete(cluster.DataDirectory(3), recursive: true);

        cluster.StartProcess(3);
        // The peer commits its engine before it streams, so part 0 holds the whole state; its log
        // segments are not deleted yet (the open segment was closed by the transfer), so part 1
        // holds it again: either part is long enough to be cut in the middle.
        string partial = Path.Combine(cluster.DataDirectory(3), "incoming", file + ".partial");
        await cluster.WaitUntilAsync(() => File.Exists(partial) && new FileInfo(partial).Length > 4 << 20, TimeSpan.FromSeconds(60), $"the catch-up stream under way in part {part}");
        // Cut every connection served by replicas 1 and 2: the stream, and their links, which resume by themselves.
        await LocalCluster.CutConnectionsServedAtAsync([cluster.Port(1), cluster.Port(2)]);
        await cluster.WaitUntilAsync(() => cluster.Log(3).Contains(" listening on "), TimeSpan.FromSeconds(60), "replica 3 started after catching up");

        string log = cluster.Log(3);
        Assert.That(log, Does.Contain("catch-up stream from replica").And.Contain($"resuming part {part} at offset"), "the cut was noticed and the stream resumed, not restarted");
        Assert.That(cluster.Log(1) + cluster.Log(2), Does.Contain("rest of a catch-up sent"));
        Assert.That(log, Does.Contain("caught up from replica"));
        await AssertHoldsEveryAckedWriteAsync(cluster, config, 3, filled);
    }

    private static async Task AssertHoldsEveryAckedWriteAsync(LocalCluster cluster, ClusterConfig config, int replica, IReadOnlyDictionary<string, string> acked)
    {
        await using var client = await KvClient.ConnectAsync(config, new KvClientOptions { PreferredReplicaId = replica, ReadMode = ReadMode.Local });
        var missing = new List<string>();
        var clock = Stopwatch.StartNew();
        foreach (var (key, value) in acked)
        {
            // A replica may still be delivering the last writes it holds: wait for each, with a deadline.
            while (true)
            {
                var got = await client.GetAsync(key);
                if (got.Found && Encoding.UTF8.GetString(got.Value.Span) == value)
                {
                    break;
                }
                if (clock.Elapsed > ConvergenceDeadline)
                {
                    missing.Add(key);
                    break;
                }
                await Task.Delay(20);
            }
        }
        Assert.That(missing, Is.Empty, $"acknowledged writes missing on replica {replica} (of {acked.Count}); logs:\n{cluster.Log(replica)}");
    }

    /// <summary>Clients writing unique keys in closed loops, recording each write acknowledged.</summary>
    private sealed class Writers : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task[] _loops;
        private int _failed;

        private readonly string _padding;

        // valueBytes pads each value to at least that many bytes, to fill a disk quickly.
        public Writers(ClusterConfig config, int count, int valueBytes = 0)
        {
            _padding = new string('p', valueBytes);
            _loops = [.. Enumerable.Range(0, count).Select(w => Task.Run(() => RunAsync(config, w)))];
        }

        public ConcurrentDictionary<string, string> Acked { get; } = new();

        public int Failed => _failed;

        private async Task RunAsync(ClusterConfig config, int writer)
        {
            KvClient? client = null;
            for (int i = 0; !_stop.IsCancellationRequested; i++)
            {
                string key = $"w{writer}-{i}";
                string value = $"{key}-{Guid.NewGuid():N}{_padding}";
                try
                {
                    client ??= await KvClient.ConnectAsync(config, new KvClientOptions { RequestTimeout = TimeSpan.FromSeconds(5) }, _stop.Token);
                    await client.PutAsync(key, value, _stop.Token);
                    Acked[key] = value;
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e) when (e is KvException or IOException or System.Net.Sockets.SocketException or TimeoutException)
                {
                    // Failed or unknown: it may or may not be applied; only acknowledged writes are checked.
                    Interlocked.Increment(ref _failed);
                }
            }
            if (client is not null)
            {
                await client.DisposeAsync();
            }
        }

        public async Task StopAsync()
        {
            await _stop.CancelAsync();
            await Task.WhenAll(_loops);
        }

        public async ValueTask DisposeAsync()
        {
            if (!_stop.IsCancellationRequested)
            {
                await StopAsync();
            }
            _stop.Dispose();
        }
    }
}
