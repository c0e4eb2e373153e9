using System.Text;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using NUnit.Framework;

namespace KvReplica.Tests.Core;

/// <summary>
/// View changes on three wired cores: a silent member is suspected and removed, writes go on
/// without it, and when it speaks again it rejoins through a view change that catches it up.
/// </summary>
[TestFixture]
[Category("Unit")]
public sealed class ReplicaCoreViewTests
{
    private static string Value(WiredCores cores, int replica, string key) =>
        cores.Stores[replica].Read(key) is { Found: true, Value: { } v } ? Encoding.UTF8.GetString(v) : "<absent>";

    // Replica 3 goes silent (a pause or a partition: its messages wait on the links) for longer
    // than the suspicion timeout; replicas 1 and 2 remove it and take writes without it.
    private static WiredCores WithReplica3Removed(int recentDeliveredWrites = 50_000)
    {
        var cores = new WiredCores(recentDeliveredWrites: recentDeliveredWrites);
        cores.Advance(10);
        cores.Put(1, "before", "b0");
        cores.Settle();
        cores.Silent.Add(3);
        for (int i = 0; i < 30; i++)
        {
            cores.Advance(100);
        }
        Assert.That(cores.Cores[1].Members, Is.EqualTo(new[] { 1, 2 }), "replica 3 removed at replica 1");
        Assert.That(cores.Cores[2].Members, Is.EqualTo(new[] { 1, 2 }), "replica 3 removed at replica 2");
        for (int i = 0; i < 10; i++)
        {
            cores.Put(1 + i % 2, $"k{i}", $"v{i}");
        }
        cores.Advance(10);
        Assert.That(cores.Replies.Count(r => r.Reply.Status == ReplyStatus.Ok), Is.EqualTo(11), "writes complete in the view without replica 3");
        return cores;
    }

    // Until every replica is in one view of all three (or a deadline of simulated time passes).
    private static void RejoinReplica3(WiredCores cores)
    {
        for (int i = 0; i < 40 && cores.Cores.Values.Any(c => c.Removed || c.Wedged || c.Members.Count < 3); i++)
        {
            cores.Advance(100);
        }
    }

    [Test]
    public void A_removed_replica_that_speaks_again_rejoins_caught_up_and_takes_part_in_new_writes()
    {
        var cores = WithReplica3Removed();
        long removedView = cores.Cores[1].ViewNumber;

        cores.Silent.Remove(3);
        RejoinReplica3(cores);

        Assert.Multiple(() =>
        {
            Assert.That(cores.Cores[3].Removed, Is.False, "replica 3 rejoined");
            Assert.That(cores.Cores.Values.Select(c => c.Members.Count), Is.All.EqualTo(3), "every replica's view has all three");
            Assert.That(cores.Cores.Values.Select(c => c.ViewNumber).Distinct().Single(), Is.GreaterThan(removedView), "a later view added it");
            Assert.That(Enumerable.Range(0, 10).Select(i => Value(cores, 3, $"k{i}")), Is.EqualTo(Enumerable.Range(0, 10).Select(i => $"v{i}")),
                "the catch-up gave replica 3 every write delivered while it was out");
        });

        long put = cores.Put(3, "after", "a3");
        cores.Advance(10);
        Assert.Multiple(() =>
        {
            Assert.That(cores.ReplyTo(put)?.Status, Is.EqualTo(ReplyStatus.Ok), $"a write through the rejoined replica completes: {cores.ReplyTo(put)?.ErrorMessage}; views {string.Join(" ", cores.Cores.Values.Select(c => $"{c.ViewNumber}/{c.Wedged}/{c.Removed}/{c.LastDelivered}"))}");
            Assert.That(cores.Stores.Values.Select(s => s.LastApplied).Distinct().Count(), Is.EqualTo(1), "every replica delivered the same prefix");
            Assert.That(new[] { 1, 2, 3 }.Select(r => Value(cores, r, "after")), Is.All.EqualTo("a3"));
        });
    }

    [Test]
    public void A_rejoined_replica_restarted_from_its_log_alone_rebuilds_the_caught_up_state()
    {
        var cores = WithReplica3Removed();
        cores.Silent.Remove(3);
        RejoinReplica3(cores);
        Assert.That(Value(cores, 3, "k9"), Is.EqualTo("v9"), "caught up before the restart");
        string before = string.Join(",", Enumerable.Range(0, 10).Select(i => Value(cores, 3, $"k{i}")));

        cores.Restart(3);

        Assert.Multiple(() =>
        {
            Assert.That(string.Join(",", Enumerable.Range(0, 10).Select(i => Value(cores, 3, $"k{i}"))), Is.EqualTo(before), "the log holds the catch-up behind its rebase record");
            Assert.That(cores.Cores[3].Removed, Is.False, "the logged view does not list it among those still to catch up");
            Assert.That(cores.Stores[3].LastApplied, Is.EqualTo(cores.Stores[1].LastApplied));
        });
    }

    [Test]
    public void A_removed_replica_further_behind_than_the_recent_writes_kept_is_told_to_start_afresh()
    {
        var cores = WithReplica3Removed(recentDeliveredWrites: 3);
        cores.Silent.Remove(3);
        var failure = Assert.Throws<CoreStoppedException>(() =>
        {
            for (int i = 0; i < 40; i++)
            {
                cores.Advance(100);
            }
        });
        Assert.That(failure!.Stop.Kind, Is.EqualTo(CoreStopKind.FellBehind));
        Assert.That(failure.Stop.Reason, Does.Contain("replica 3 cannot rejoin").And.Contain("starting afresh"));
        Assert.That(cores.Cores[3].Removed, Is.True, "it never entered a view without the writes it lacks");
    }
}
