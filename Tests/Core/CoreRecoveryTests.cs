using System.Text;
using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Store;
using KvReplica.Store.Persistence;
using NUnit.Framework;

namespace KvReplica.Tests.Core;

/// <summary>
/// A core restarted from nothing but the entries it asked to persist: it must come back in
/// agreement with its peers, take their re-sent writes without applying anything twice, and
/// refuse to carry on when its log holds less than it promised.
/// </summary>
[TestFixture]
[Category("Unit")]
public sealed class CoreRecoveryTests
{
    private static WriteCommand Write(long time, int replica, string key) =>
        new(new Stamp(time, replica), Operation.Put, key, Encoding.UTF8.GetBytes(key), 1, time, 1);

    private static void AssertSameState(WiredCores cluster)
    {
        var reference = cluster.Stores[1].Entries().OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => (e.Key, Encoding.UTF8.GetString(e.Value), e.Version)).ToList();
        foreach (int id in cluster.Stores.Keys)
        {
            Assert.That(cluster.Stores[id].LastApplied, Is.EqualTo(cluster.Stores[1].LastApplied), $"replica {id} delivered through the same stamp");
            Assert.That(cluster.Stores[id].Entries().OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => (e.Key, Encoding.UTF8.GetString(e.Value), e.Version)), Is.EqualTo(reference), $"replica {id} has the same keys, values and versions");
        }
    }

    [Test]
    public void Rebuild_applies_logged_writes_up_to_the_last_marker_in_stamp_order_and_holds_the_rest()
    {
        // Held writes are logged in arrival order, which interleaves origins out of stamp order.
        LogEntry[] log =
        [
            LogEntry.HeldWrite(Write(2, 1, "b")),
            LogEntry.HeldWrite(Write(1, 2, "a")),
            LogEntry.Delivered(new Stamp(2, 1)),
            LogEntry.HeldWrite(Write(3, 1, "c")),
            LogEntry.HeldWrite(Write(4, 2, "d")),
        ];
        var store = new KvStore();
        var state = Recovery.Rebuild(store, log, out int replayed);

        Assert.That(replayed, Is.EqualTo(2));
        Assert.That(store.LastApplied, Is.EqualTo(new Stamp(2, 1)));
        Assert.That(store.Read("a").Found && store.Read("b").Found, Is.True);
        Assert.That(store.Read("c").Found || store.Read("d").Found, Is.False, "writes after the marker were not delivered before the crash");
        Assert.That(state.Held.Select(w => w.Stamp), Is.EqualTo(new[] { new Stamp(3, 1), new Stamp(4, 2) }));
        Assert.That(state.HeldThrough, Is.EquivalentTo(new Dictionary<int, long> { [1] = 3, [2] = 4 }));
        Assert.That(state.ClockTime, Is.EqualTo(4), "the clock restarts at the largest time the replica ever held");
    }

    [Test]
    public void A_rebase_record_forgets_every_undelivered_write_logged_before_it_and_survives_the_log_format()
    {
        // A removed replica held (5,2) and (6,1), which a view change it never saw trimmed; it
        // was added back on the coordinator's state: (3,1) delivered, (7,2) held.
        LogEntry[] written =
        [
            LogEntry.HeldWrite(Write(1, 1, "a")),
            LogEntry.Delivered(new Stamp(1, 1)),
            LogEntry.HeldWrite(Write(5, 2, "stale")),
            LogEntry.HeldWrite(Write(6, 1, "stale2")),
            LogEntry.Rebased(new HeldRebase { Origins = [1, 2], HeldThrough = [3, 7] }),
            LogEntry.HeldWrite(Write(3, 1, "c")),
            LogEntry.HeldWrite(Write(7, 2, "d")),
            LogEntry.Delivered(new Stamp(3, 1)),
        ];
        var bytes = new System.Buffers.ArrayBufferWriter<byte>();
        WriteAheadLog.Append(bytes, written);
        var log = WriteAheadLog.Scan(bytes.WrittenSpan).Entries;
        Assert.That(log[4].Rebase?.HeldThrough, Is.EqualTo(new long[] { 3, 7 }), "the rebase record reads back");

        var store = new KvStore();
        var state = Recovery.Rebuild(store, log, out _);

        Assert.Multiple(() =>
        {
            Assert.That(store.LastApplied, Is.EqualTo(new Stamp(3, 1)));
            Assert.That(store.Read("c").Found, Is.True);
            Assert.That(store.Read("stale").Found || store.Read("stale2").Found, Is.False, "forgotten writes are not applied");
            Assert.That(state.Held.Select(w => w.Stamp), Is.EqualTo(new[] { new Stamp(7, 2) }), "only what the coordinator held is held again");
            Assert.That(state.HeldThrough[1], Is.EqualTo(3), "held-through comes from the rebase, not from forgotten writes");
        });
    }

    [Test]
    public void A_restarted_replica_resends_its_logged_but_unsent_write_and_all_agree()
    {
        var cluster = new WiredCores();
        cluster.Put(1, "k1", "one");
        cluster.Settle();
        cluster.Silent.Add(3);
        cluster.Put(1, "k2", "two");
        cluster.Put(3, "k3", "three");
        cluster.Settle();
        Assert.That(cluster.Stores[1].Read("k2").Found, Is.False, "k2 waits for replica 3's acknowledgement");

        int replayed = cluster.Restart(3);
        cluster.Silent.Remove(3);
        cluster.Advance(100);
        cluster.Advance(100);

        Assert.That(replayed, Is.EqualTo(1), "replica 3 replayed k1 from its log");
        foreach (int id in new[] { 1, 2, 3 })
        {
            Assert.That(cluster.Stores[id].Read("k3").Found, Is.True, $"replica 3's logged write reached replica {id} after the restart");
            Assert.That(cluster.Stores[id].Read("k2").Found, Is.True, $"k2 delivered at replica {id}");
        }
        AssertSameState(cluster);
    }

    [Test]
    public void Writes_re_sent_to_a_restarted_replica_that_already_holds_them_are_dropped_not_applied_twice()
    {
        var cluster = new WiredCores();
        cluster.Silent.Add(2);
        cluster.Put(1, "k", "v");
        cluster.Settle();
        Assert.That(cluster.Logs[3].Any(e => e.Held?.Key == "k"), Is.True, "replica 3 logged k before acknowledging it");

        cluster.Restart(3);
        cluster.Settle();
        cluster.Silent.Remove(2);
        cluster.Advance(100);
        cluster.Advance(100);

        foreach (int id in new[] { 1, 2, 3 })
        {
            Assert.That(cluster.Stores[id].Read("k").Found, Is.True, $"replica {id}");
        }
        Assert.That(cluster.Delivered[3].Count(d => d.Command.Key == "k"), Is.EqualTo(1), "replica 3 delivered k once, though replica 1 re-sent it");
        AssertSameState(cluster);
    }

    [Test]
    public void A_replica_restarted_many_times_between_writes_stays_in_agreement()
    {
        var cluster = new WiredCores();
        var random = new Random(12345);
        for (int step = 0; step < 60; step++)
        {
            cluster.Put(random.Next(1, 4), $"key{random.Next(5)}", $"v{step}", client: (ulong)random.Next(1, 4));
            if (random.Next(3) == 0)
            {
                cluster.Settle();
            }
            if (random.Next(5) == 0)
            {
                cluster.Restart(random.Next(1, 4));
            }
        }
        cluster.Advance(100);
        cluster.Advance(100);
        AssertSameState(cluster);
    }

    [Test]
    public void A_replica_whose_log_lost_writes_it_acknowledged_stops_instead_of_diverging()
    {
        var cluster = new WiredCores();
        cluster.Put(1, "k", "v");
        cluster.Settle();
        cluster.Restart(2, damage: _ => []);
        var lost = Assert.Throws<CoreStoppedException>(() => cluster.Advance(100));
        Assert.That(lost!.Stop.Kind, Is.EqualTo(CoreStopKind.StateLost));
        Assert.That(lost.Stop.Reason, Does.Contain("replica 1").Or.Contain("replica 3"));
    }

    [Test]
    public void A_replica_whose_log_lost_its_own_sent_writes_stops()
    {
        var cluster = new WiredCores();
        cluster.Put(2, "mine", "v");
        cluster.Settle();
        // Keep the delivered markers but lose the write itself: what a power failure under
        // fsync "none" can do to the tail of a log whose earlier records survived.
        cluster.Restart(2, damage: log => log.Where(e => e.Held is null));
        var lost = Assert.Throws<CoreStoppedException>(() => cluster.Advance(100));
        Assert.That(lost!.Stop.Kind, Is.EqualTo(CoreStopKind.StateLost));
        Assert.That(lost.Stop.Reason, Does.Contain("this replica"));
    }

    [Test]
    public void A_restarted_replica_stamps_no_write_until_every_peer_has_spoken()
    {
        var cluster = new WiredCores();
        cluster.Put(2, "mine", "v");
        cluster.Settle();
        // Its own write lost: were it to stamp now, its clock (rebuilt from what is left) would
        // reuse a time its peers already hold for replica 2, and they would drop the new write
        // as a duplicate. So it must hear from them first, and that is when the loss shows.
        cluster.Restart(2, damage: log => log.Where(e => e.Held is null));
        cluster.Silent.Add(2);
        long early = cluster.Put(2, "too-early", "x");
        cluster.Settle();
        cluster.Silent.Remove(2);
        var reply = cluster.Replies.Single(r => r.Reply.RequestId == early).Reply;
        Assert.That(reply.Error, Is.EqualTo(ErrorCode.Busy));
        Assert.That(reply.ErrorMessage, Does.Contain("rejoining").And.Contain("1, 3"));
        Assert.That(Assert.Throws<CoreStoppedException>(() => cluster.Advance(100))!.Stop.Kind, Is.EqualTo(CoreStopKind.StateLost));
    }

    [Test]
    public void A_restarted_replica_with_its_log_intact_takes_writes_once_its_peers_have_spoken()
    {
        var cluster = new WiredCores();
        cluster.Put(1, "k", "v");
        cluster.Settle();
        cluster.Restart(3);
        cluster.Settle();
        long put = cluster.Put(3, "after", "ok");
        cluster.Settle();
        Assert.That(cluster.ReplyTo(put)?.Status, Is.EqualTo(ReplyStatus.Ok));
        AssertSameState(cluster);
    }
}
