using System.Text;
using KvReplica.Client;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;
using KvReplica.Transport;
using NUnit.Framework;

namespace KvReplica.Tests.Integration;

/// <summary>
/// The operations beyond PUT, GET and DELETE through the client library against real replicas:
/// conditional writes, EXISTS, transactions, MGET, scans at one revision, and watches that fail
/// over without losing or repeating a change.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class OperationsTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Test]
    public async Task Conditional_writes_report_what_happened_and_the_current_version()
    {
        await using var cluster = await LocalCluster.StartAsync();
        await using var client = await KvClient.ConnectAsync(ClusterConfigFile.Load(cluster.ConfigPath));

        var update = await client.UpdateAsync("u", "x");
        Assert.That(update.Written, Is.False, "UPDATE of an absent key writes nothing");
        Assert.That((await client.GetAsync("u")).Found, Is.False);

        var created = await client.PutIfAbsentAsync("u", B("first"));
        Assert.That(created.Written, Is.True);
        var again = await client.PutIfAbsentAsync("u", B("second"));
        Assert.That(again, Is.EqualTo(new KvConditionalResult(false, created.Version)), "put-if-absent on a present key reports the current version");

        var exists = await client.ExistsAsync("u");
        Assert.That(exists, Is.EqualTo(new KvExistsResult(true, created.Version)));
        Assert.That((await client.ExistsAsync("nothing-here")).Exists, Is.False);

        var stale = await client.CompareAndSetAsync("u", new KvVersion(created.Version.Time - 1, created.Version.ReplicaId), "never");
        Assert.That(stale, Is.EqualTo(new KvConditionalResult(false, created.Version)));
        var swapped = await client.CompareAndSetAsync("u", created.Version, "swapped");
        Assert.That(swapped.Written, Is.True);
        Assert.That(swapped.Version, Is.GreaterThan(created.Version));
        var read = await client.GetAsync("u");
        Assert.That((read.ValueAsString, read.Version), Is.EqualTo(("swapped", swapped.Version)));

        var updated = await client.UpdateAsync("u", "updated");
        Assert.That(updated.Written, Is.True);
        Assert.That(await client.DeleteAsync("u"), Is.True, "DELETE reports the key existed");
        Assert.That(await client.DeleteAsync("u"), Is.False, "and that it no longer does");
    }

    [Test]
    public async Task A_transaction_runs_one_branch_atomically_and_mget_reads_one_point()
    {
        await using var cluster = await LocalCluster.StartAsync();
        await using var client = await KvClient.ConnectAsync(ClusterConfigFile.Load(cluster.ConfigPath));
        var set = await client.MultiSetAsync([new("acct/a", B("100")), new("acct/b", B("0"))]);
        Assert.That(set.Succeeded, Is.True);

        var move = new KvTxn().IfValue("acct/a", "100").IfExists("acct/b").ThenPut("acct/a", "60").ThenPut("acct/b", "40").ElsePut("audit", "refused");
        var moved = await client.TxnAsync(move);
        Assert.That(moved.Succeeded, Is.True);
        var again = await client.TxnAsync(move);
        Assert.That(again.Succeeded, Is.False, "the compare no longer holds, so the else-branch runs");

        var read = await client.MultiGetAsync(["acct/a", "acct/b", "audit", "missing"]);
        Assert.That(read.Entries.Select(e => e.Found ? e.ValueAsString : null), Is.EqualTo(new[] { "60", "40", "refused", null }));
        Assert.That(read.Entries[0].Version, Is.EqualTo(moved.Revision), "both keys a transaction writes get its revision");
        Assert.That(read.Entries[1].Version, Is.EqualTo(moved.Revision));
        Assert.That(read.Revision, Is.GreaterThanOrEqualTo(again.Revision), "MGET reads at or after every write that completed before it");

        var refused = Assert.ThrowsAsync<KvInvalidRequestException>(() => client.TxnAsync(new KvTxn().ThenPut("k", "1").ThenDelete("k")));
        Assert.That(refused!.Message, Does.Contain("writes k twice"));
    }

    [Test]
    public async Task Every_page_of_a_scan_comes_from_the_revision_of_its_first_page()
    {
        await using var cluster = await LocalCluster.StartAsync();
        await using var client = await KvClient.ConnectAsync(ClusterConfigFile.Load(cluster.ConfigPath));
        for (int i = 0; i < 25; i++)
        {
            await client.PutAsync($"s/{i:D2}", $"v{i}");
        }
        await client.PutAsync("t/outside", "x");

        var first = await client.ScanPageAsync("s/", limit: 10);
        Assert.That(first.Entries.Select(e => e.Key), Is.EqualTo(Enumerable.Range(0, 10).Select(i => $"s/{i:D2}")));
        Assert.That(first.Next, Is.Not.Null);
        // Changes after the first page: none of them may show in the later pages.
        await client.DeleteAsync("s/15");
        await client.PutAsync("s/12", "changed");
        await client.PutAsync("s/99", "new");
        var seen = first.Entries.ToList();
        var cursor = first.Next;
        while (cursor is not null)
        {
            // Each later page at a different replica: the revision is the same state everywhere.
            await using var other = await KvClient.ConnectAsync(ClusterConfigFile.Load(cluster.ConfigPath), new KvClientOptions { PreferredReplicaId = 1 + seen.Count / 10 % 3 });
            var page = await other.ScanPageAsync("s/", cursor, limit: 10);
            Assert.That(page.Revision, Is.EqualTo(first.Revision));
            seen.AddRange(page.Entries);
            cursor = page.Next;
        }
        Assert.That(seen.Select(e => (e.Key, e.ValueAsString)), Is.EqualTo(Enumerable.Range(0, 25).Select(i => ($"s/{i:D2}", $"v{i}"))));

        var fresh = new List<string>();
        await foreach (var entry in client.ScanAsync("s/", pageSize: 7, keysOnly: true))
        {
            fresh.Add(entry.Key);
            Assert.That(entry.Value.Length, Is.Zero, "keys only");
        }
        Assert.That(fresh, Does.Contain("s/99").And.Not.Contain("s/15"), "a new scan sees every completed write");
        Assert.That(fresh, Is.Ordered.Using((IComparer<string>)StringComparer.Ordinal));
    }

    [Test]
    public async Task A_watch_fails_over_when_its_replica_is_killed_and_sees_every_revision_once_in_order()
    {
        await using var cluster = await LocalCluster.StartAsync();
        var config = ClusterConfigFile.Load(cluster.ConfigPath);
        await using var writer = await KvClient.ConnectAsync(config, new KvClientOptions { PreferredReplicaId = 2 });
        await using var watcher = await KvClient.ConnectAsync(config, new KvClientOptions { PreferredReplicaId = 1 });
        var start = await writer.PutAsync("w/start", "0");

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var events = new List<KvWatchEvent>();
        const int Writes = 400;
        var watching = Task.Run(async () =>
        {
            await foreach (var change in watcher.WatchAsync("w/", start, stop.Token))
            {
                lock (events)
                {
                    events.Add(change);
                }
                if (change.Key == "w/done")
                {
                    return;
                }
            }
        });
        var acked = new List<(string Key, KvVersion Version)>();
        for (int i = 0; i < Writes; i++)
        {
            if (i == Writes / 3)
            {
                await WaitForEventsAsync(events, 1, stop.Token);
                cluster.Kill(1);
            }
            string key = $"w/{i % 17}";
            acked.Add((key, await writer.PutAsync(key, $"{i}")));
            if (i % 50 == 0)
            {
                await writer.PutAsync("other/ignored", "x");
            }
        }
        acked.Add(("w/done", await writer.PutAsync("w/done", "1")));
        await watching.WaitAsync(stop.Token);

        // Every acknowledged write after the start is in the watch, once, in order, and nothing else.
        Assert.That(events.Select(e => (e.Key, e.Revision)), Is.EqualTo(acked));
        Assert.That(events.Select(e => e.Revision), Is.Ordered.And.Unique);
        Assert.That(events.Select(e => e.ValueAsString).Take(Writes), Is.EqualTo(Enumerable.Range(0, Writes).Select(i => $"{i}")));
    }

    private static async Task WaitForEventsAsync(List<KvWatchEvent> events, int count, CancellationToken ct)
    {
        while (true)
        {
            lock (events)
            {
                if (events.Count >= count)
                {
                    return;
                }
            }
            await Task.Delay(20, ct);
        }
    }

    [Test]
    public async Task A_watch_from_before_the_history_is_refused_with_the_oldest_revision()
    {
        await using var cluster = await LocalCluster.StartAsync(historyChanges: 5);
        await using var client = await KvClient.ConnectAsync(ClusterConfigFile.Load(cluster.ConfigPath));
        var first = await client.PutAsync("h/a", "1");
        for (int i = 0; i < 10; i++)
        {
            await client.PutAsync($"h/{i}", "x");
        }
        // Ten changes later, a history of five no longer reaches back to the first write.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var compacted = Assert.ThrowsAsync<KvException>(async () =>
        {
            await foreach (var _ in client.WatchAsync("h/", first, deadline.Token))
            {
            }
        });
        Assert.That(compacted!.Error, Is.EqualTo(ErrorCode.Compacted));
        Assert.That(compacted.Message, Does.Contain("compacted: oldest revision is "));
        // A scan's later page at a revision the history no longer reaches is refused the same way.
        var page = await client.ScanPageAsync("h/", limit: 2);
        for (int i = 0; i < 10; i++)
        {
            await client.PutAsync($"h/{i}", "y");
        }
        var stale = Assert.ThrowsAsync<KvException>(() => client.ScanPageAsync("h/", page.Next, limit: 2, ct: deadline.Token));
        Assert.That(stale!.Error, Is.EqualTo(ErrorCode.Compacted));
    }
}
