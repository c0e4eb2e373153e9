using FsCheck;
using FsCheck.Fluent;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using NUnit.Framework;

namespace KvReplica.Tests.Core;

/// <summary>
/// A peer's malformed message, of every kind, is a <see cref="ProtocolViolationException"/> that
/// changes nothing in the receiving core, which then goes on working. Replica 1 receives; the
/// message claims to come from replica 2. Before each message replica 1 has delivered a write and
/// holds another (replica 3 is silent), so "nothing changed" has something to compare.
/// </summary>
[TestFixture]
[Category("Unit")]
public sealed class PeerMessageValidationTests
{
    private const long Max = Limits.MaxLamportTime;

    private static (WiredCores Cluster, ReplicaCore Core) Prepared()
    {
        var cluster = new WiredCores();
        cluster.Put(1, "a", "1");
        cluster.Settle();
        cluster.Silent.Add(3);
        cluster.Put(1, "held", "x");
        cluster.Settle();
        var core = cluster.Cores[1];
        Assert.That(core.PendingWrites, Is.EqualTo(1), "setup: one write held");
        Assert.That(core.LastDelivered.Time, Is.GreaterThan(0), "setup: one write delivered");
        return (cluster, core);
    }

    // Everything of the core that a message could change, as one comparable string.
    private static string Fingerprint(ReplicaCore core)
    {
        var summary = core.Summary();
        return $"delivered {core.LastDelivered} pending {core.PendingWrites} clock {core.ClockNow} view {core.ViewNumber} "
            + $"members {string.Join(",", core.Members)} suspected {string.Join(",", core.Suspected)} wedged {core.Wedged} removed {core.Removed} "
            + $"held {string.Join(",", summary.HeldThrough)} deliveredThrough {string.Join(",", summary.DeliveredThrough)} status {core.Status}";
    }

    private static WriteEntry Write(long time, string key = "b") =>
        new() { Time = time, Operation = Operation.Put, Key = key, Value = [1], ClientId = 9, Sequence = 1, AckedBelow = 1 };

    /// <summary>A batch replica 2 could send replica 1 now: one new write, acknowledgements of what 1 holds.</summary>
    private static OrderBatch ValidBatch(ReplicaCore core)
    {
        var summary = core.Summary();
        long t = core.ClockNow + 5;
        return new OrderBatch
        {
            Writes = [Write(t)],
            Origins = [.. summary.Origins],
            HeldThrough = [.. summary.HeldThrough],
            DeliveredThrough = [.. summary.DeliveredThrough],
            Clock = t,
            View = core.ViewNumber,
            SentAt = 1,
            Suspects = [],
        };
    }

    private static OrderBatch Mutated(ReplicaCore core, Action<OrderBatch> change)
    {
        var batch = ValidBatch(core);
        change(batch);
        return batch;
    }

    private static ViewInstall Install(Action<ViewInstall>? change = null)
    {
        var install = new ViewInstall { Number = 1, Members = [1, 2], TrimOrigins = [3], TrimTimes = [0], CaughtUp = [] };
        change?.Invoke(install);
        return install;
    }

    private static CatchUpWrites CatchUp(Action<CatchUpWrites> change)
    {
        var catchUp = new CatchUpWrites
        {
            ViewNumber = 1,
            Delivered = [new CarriedWrite { Origin = 2, Write = Write(50) }],
            Held = [new CarriedWrite { Origin = 3, Write = Write(60) }],
            Origins = [1, 2, 3],
            HeldThrough = [10, 50, 60],
            Clock = 100,
        };
        change(catchUp);
        return catchUp;
    }

    private static ViewJoin Join(Action<ViewJoin> change)
    {
        var join = new ViewJoin { Number = 1, Origins = [1, 2, 3], HeldThrough = [1, 1, 1] };
        change(join);
        return join;
    }

    private static IEnumerable<TestCaseData> Malformed()
    {
        TestCaseData Case(string name, Func<ReplicaCore, PeerMessage?> make) => new TestCaseData(make).SetName(name);

        // Order batches: per-member arrays, ids, times, writes.
        yield return Case("Batch_ack_times_longer_than_ack_origins", c => Mutated(c, b => b.HeldThrough = [.. b.HeldThrough, 1]));
        yield return Case("Batch_delivered_times_longer_than_ack_origins", c => Mutated(c, b => b.DeliveredThrough = [.. b.DeliveredThrough, 1, 1]));
        yield return Case("Batch_ack_origin_not_configured", c => Mutated(c, b => { b.Origins = [1, 2, 99]; }));
        yield return Case("Batch_ack_origin_twice", c => Mutated(c, b => { b.Origins = [1, 2, 2]; }));
        yield return Case("Batch_negative_ack_time", c => Mutated(c, b => b.HeldThrough[1] = -1));
        yield return Case("Batch_ack_time_beyond_the_senders_clock", c => Mutated(c, b => b.HeldThrough[0] = b.Clock + 1));
        yield return Case("Batch_delivered_time_beyond_the_senders_clock", c => Mutated(c, b => b.DeliveredThrough[2] = b.Clock + 1000));
        yield return Case("Batch_ack_and_delivered_times_at_long_max", c => Mutated(c, b => { b.Clock = long.MaxValue; b.HeldThrough[0] = long.MaxValue; b.DeliveredThrough[0] = long.MaxValue; }));
        yield return Case("Batch_negative_clock", c => Mutated(c, b => { b.Writes = []; b.Clock = -5; b.HeldThrough = [0, 0, 0]; b.DeliveredThrough = [0, 0, 0]; }));
        yield return Case("Batch_clock_beyond_the_largest_lamport_time", c => Mutated(c, b => b.Clock = Max + 1));
        yield return Case("Batch_write_at_long_max_overflowing_the_clock", c => Mutated(c, b => { b.Writes = [Write(long.MaxValue)]; b.Clock = long.MaxValue; }));
        yield return Case("Batch_write_beyond_the_senders_clock", c => Mutated(c, b => b.Clock = b.Writes[0].Time - 1));
        yield return Case("Batch_write_at_time_zero", c => Mutated(c, b => b.Writes = [Write(0)]));
        yield return Case("Batch_nil_write", c => Mutated(c, b => b.Writes = [null!]));
        yield return Case("Batch_write_with_unknown_operation", c => Mutated(c, b => b.Writes[0].Operation = (Operation)99));
        yield return Case("Batch_write_with_empty_key", c => Mutated(c, b => b.Writes[0].Key = ""));
        yield return Case("Batch_write_with_null_key", c => Mutated(c, b => b.Writes[0].Key = null!));
        yield return Case("Batch_put_without_value", c => Mutated(c, b => b.Writes[0].Value = null));
        yield return Case("Batch_without_writes_array", c => Mutated(c, b => b.Writes = null!));
        yield return Case("Batch_without_delivered_times_array", c => Mutated(c, b => b.DeliveredThrough = null!));
        yield return Case("Batch_without_suspects_array", c => Mutated(c, b => b.Suspects = null!));
        yield return Case("Batch_suspecting_an_unknown_replica", c => Mutated(c, b => b.Suspects = [42]));
        yield return Case("Batch_negative_view", c => Mutated(c, b => b.View = -1));
        yield return Case("Batch_wedged_for_a_view_beyond_the_limit", c => Mutated(c, b => b.WedgedFor = long.MaxValue));
        yield return Case("Batch_negative_send_time", c => Mutated(c, b => b.SentAt = -1));
        yield return Case("Batch_negative_echo", c => Mutated(c, b => b.EchoSentAt = long.MinValue));
        yield return Case("Null_message", _ => null);

        // Reads.
        yield return Case("Read_query_with_null_key", _ => new ReadQuery { ReadId = 1, Key = null! });
        yield return Case("Read_query_with_oversized_key", _ => new ReadQuery { ReadId = 1, Key = new string('k', 2000) });
        yield return Case("Read_answer_found_without_value", _ => new ReadAnswer { ReadId = 1, Found = true, Value = null, VersionTime = 1, VersionReplica = 2 });
        yield return Case("Read_answer_version_of_unknown_replica", _ => new ReadAnswer { ReadId = 1, Found = true, Value = [1], VersionTime = 1, VersionReplica = 77 });
        yield return Case("Read_answer_negative_version", _ => new ReadAnswer { ReadId = 1, Found = false, VersionTime = -3 });

        // View change.
        yield return Case("Propose_view_zero", _ => new ViewPropose { Number = 0, Members = [1, 2] });
        yield return Case("Propose_negative_view", _ => new ViewPropose { Number = -7, Members = [1, 2] });
        yield return Case("Propose_view_beyond_the_limit", _ => new ViewPropose { Number = long.MaxValue, Members = [1, 2] });
        yield return Case("Propose_no_members", _ => new ViewPropose { Number = 5, Members = [] });
        yield return Case("Propose_null_members", _ => new ViewPropose { Number = 5, Members = null! });
        yield return Case("Propose_unknown_member", _ => new ViewPropose { Number = 5, Members = [1, 2, 9] });
        yield return Case("Propose_member_twice", _ => new ViewPropose { Number = 5, Members = [1, 2, 2] });
        yield return Case("Join_origins_and_times_of_different_lengths", _ => Join(j => j.HeldThrough = [1, 1]));
        yield return Case("Join_missing_an_origin", _ => Join(j => { j.Origins = [1, 2]; j.HeldThrough = [1, 1]; }));
        yield return Case("Join_unknown_origin", _ => Join(j => j.Origins = [1, 2, 4]));
        yield return Case("Join_negative_held_time", _ => Join(j => j.HeldThrough = [1, -1, 1]));
        yield return Case("Join_delivered_by_unknown_replica", _ => Join(j => { j.DeliveredTime = 3; j.DeliveredReplica = 8; }));
        yield return Case("Join_reporting_a_malformed_installed_view", _ => Join(j => j.InstalledView = Install(v => v.Members = [])));
        yield return Case("Install_no_members", _ => Install(v => v.Members = []));
        yield return Case("Install_null_members", _ => Install(v => v.Members = null!));
        yield return Case("Install_unknown_member", _ => Install(v => v.Members = [1, 2, 5]));
        yield return Case("Install_trim_times_shorter_than_trim_origins", _ => Install(v => v.TrimTimes = []));
        yield return Case("Install_trimming_an_unknown_origin", _ => Install(v => { v.TrimOrigins = [6]; v.TrimTimes = [0]; }));
        yield return Case("Install_trimming_a_member", _ => Install(v => { v.TrimOrigins = [2]; v.TrimTimes = [0]; }));
        yield return Case("Install_negative_trim_time", _ => Install(v => v.TrimTimes = [-1]));
        yield return Case("Install_catching_up_a_non_member", _ => Install(v => v.CaughtUp = [3]));
        yield return Case("Install_negative_view", _ => Install(v => v.Number = -1));
        yield return Case("Install_view_beyond_the_limit", _ => Install(v => v.Number = Max + 1));
        yield return Case("Join_request_negative_delivered_time", _ => new JoinRequest { DeliveredTime = -1, View = 0 });
        yield return Case("Join_request_delivered_by_unknown_replica", _ => new JoinRequest { DeliveredTime = 1, DeliveredReplica = 1000, View = 0 });
        yield return Case("Join_request_negative_view", _ => new JoinRequest { View = -2 });
        yield return Case("Join_refused_unknown_replica", _ => new JoinRefused { KeptAfterTime = 1, KeptAfterReplica = -4 });
        yield return Case("Join_refused_negative_time", _ => new JoinRefused { KeptAfterTime = -1 });

        // Catch-up writes.
        yield return Case("Catch_up_origins_and_times_of_different_lengths", _ => CatchUp(c => c.HeldThrough = [1]));
        yield return Case("Catch_up_unknown_origin", _ => CatchUp(c => c.Origins = [1, 2, 12]));
        yield return Case("Catch_up_null_delivered", _ => CatchUp(c => c.Delivered = null!));
        yield return Case("Catch_up_nil_carried_write", _ => CatchUp(c => c.Held = [null!]));
        yield return Case("Catch_up_carried_write_without_entry", _ => CatchUp(c => c.Held = [new CarriedWrite { Origin = 3, Write = null! }]));
        yield return Case("Catch_up_write_of_unknown_origin", _ => CatchUp(c => c.Held = [new CarriedWrite { Origin = 33, Write = Write(60) }]));
        yield return Case("Catch_up_held_writes_out_of_order", _ => CatchUp(c => c.Held = [new CarriedWrite { Origin = 3, Write = Write(60) }, new CarriedWrite { Origin = 2, Write = Write(55) }]));
        yield return Case("Catch_up_same_write_twice", _ => CatchUp(c => c.Held = [new CarriedWrite { Origin = 3, Write = Write(60) }, new CarriedWrite { Origin = 3, Write = Write(60) }]));
        yield return Case("Catch_up_write_beyond_its_clock", _ => CatchUp(c => c.Held = [new CarriedWrite { Origin = 3, Write = Write(101) }]));
        yield return Case("Catch_up_held_through_beyond_its_clock", _ => CatchUp(c => c.HeldThrough = [10, 50, 500]));
        yield return Case("Catch_up_view_zero", _ => CatchUp(c => c.ViewNumber = 0));
        yield return Case("Catch_up_negative_clock", _ => CatchUp(c => c.Clock = -1));
    }

    [TestCaseSource(nameof(Malformed))]
    public void A_malformed_peer_message_is_a_violation_that_changes_nothing_and_the_core_works_on(Func<ReplicaCore, PeerMessage?> make)
    {
        var (cluster, core) = Prepared();
        var message = make(core);
        string before = Fingerprint(core);

        Assert.That(() => core.OnPeerMessage(2, message!), Throws.TypeOf<ProtocolViolationException>());

        Assert.That(Fingerprint(core), Is.EqualTo(before), "no state changed");
        var ready = core.TakeReady();
        Assert.That(ready.NewlyHeld, Is.Empty, "nothing to persist");
        Assert.That(ready.Delivered, Is.Empty, "nothing delivered");
        Assert.That(ready.Joined, Is.Null);
        Assert.That(ready.InstalledView, Is.Null);
        Assert.That(ready.Rebase, Is.Null);
        core.Advance(ready);
        Assert.That(ready.Messages, Is.Empty, "nothing sent");
        Assert.That(ready.Replies, Is.Empty);

        // It goes on working: replica 3 speaks again, the held write and a new one are delivered.
        cluster.Silent.Clear();
        cluster.Settle();
        long put = cluster.Put(1, "after", "y");
        cluster.Settle();
        Assert.That(cluster.ReplyTo(put)?.Status, Is.EqualTo(ReplyStatus.Ok));
        foreach (int id in new[] { 1, 2, 3 })
        {
            Assert.That(cluster.Delivered[id].Select(d => d.Command.Key), Is.EqualTo(new[] { "a", "held", "after" }), $"replica {id}");
        }
    }

    [Test]
    public void The_valid_batch_the_mutations_start_from_is_accepted()
    {
        var (_, core) = Prepared();
        int pending = core.PendingWrites;
        core.OnPeerMessage(2, ValidBatch(core));
        Assert.That(core.PendingWrites, Is.EqualTo(pending + 1));
    }

    [Test]
    public void A_well_formed_batch_claiming_more_than_this_replica_holds_is_still_the_lost_state_signal()
    {
        // Not a violation: this is how a replica whose data directory went back in time finds
        // out (design.md §7), and it must stop rather than deliver a different order.
        var (_, core) = Prepared();
        var batch = Mutated(core, b => b.HeldThrough[0] = b.Clock);
        string before = Fingerprint(core);
        core.OnPeerMessage(2, batch);
        Assert.That(Fingerprint(core), Is.EqualTo(before));
        Assert.That(core.TakeReady().Stop?.Kind, Is.EqualTo(CoreStopKind.StateLost), "the core stops, and says why");
    }

    [Test]
    public void A_batch_that_waited_for_an_install_and_then_breaks_the_order_is_reported_not_thrown()
    {
        // Replica 2 sends a batch of view 1 before replica 1 installs view 1; the batch carries
        // a write older than one replica 1 already holds of replica 2, which it can only tell
        // once the install lets it handle the batch. The install itself must stand, and the
        // violation name replica 2, not the installer.
        var cluster = new WiredCores();
        var core = cluster.Cores[1];
        core.OnPeerMessage(2, new OrderBatch { Writes = [Write(20)], Clock = 20 });
        core.TakeReady();
        core.OnPeerMessage(2, new OrderBatch { Writes = [Write(25), Write(22, "late")], Clock = 30, View = 1 });
        core.OnPeerMessage(2, new ViewInstall { Number = 1, Members = [1, 2, 3] });
        Assert.That(core.ViewNumber, Is.EqualTo(1));
        var ready = core.TakeReady();
        Assert.That(ready.PeerViolations.Select(v => v.Peer), Is.EqualTo(new[] { 2 }));
        Assert.That(ready.InstalledView?.Number, Is.EqualTo(1));
    }

    // Times that matter: around zero, around what replica 1 holds, and at the limits.
    private static readonly Gen<long> Longs = Gen.OneOf(
        Gen.Choose(-10, 60).Select(i => (long)i),
        Gen.Elements(long.MinValue, -1L, Max - 1, Max, Max + 1, long.MaxValue - 1, long.MaxValue));

    private static readonly Gen<Action<OrderBatch>> Mutation = Gen.OneOf(
        from i in Gen.Choose(0, 2)
        from v in Longs
        select (Action<OrderBatch>)(b => { if (i < b.HeldThrough.Length) b.HeldThrough[i] = v; }),
        from i in Gen.Choose(0, 2)
        from v in Longs
        select (Action<OrderBatch>)(b => { if (i < b.DeliveredThrough.Length) b.DeliveredThrough[i] = v; }),
        from i in Gen.Choose(0, 2)
        from v in Gen.Choose(-3, 6)
        select (Action<OrderBatch>)(b => { if (i < b.Origins.Length) b.Origins[i] = v; }),
        from n in Gen.Choose(0, 5)
        select (Action<OrderBatch>)(b => b.HeldThrough = [.. Enumerable.Repeat(0L, n)]),
        from n in Gen.Choose(0, 5)
        select (Action<OrderBatch>)(b => b.DeliveredThrough = [.. Enumerable.Repeat(1L, n)]),
        from v in Longs
        select (Action<OrderBatch>)(b => b.Clock = v),
        from v in Longs
        select (Action<OrderBatch>)(b => b.View = v),
        from v in Longs
        select (Action<OrderBatch>)(b => b.WedgedFor = v),
        from v in Longs
        select (Action<OrderBatch>)(b => b.SentAt = v),
        from v in Longs
        select (Action<OrderBatch>)(b => b.EchoSentAt = v),
        from v in Longs
        select (Action<OrderBatch>)(b => b.Writes[0].Time = v),
        from v in Gen.Choose(-1, 5)
        select (Action<OrderBatch>)(b => b.Writes[0].Operation = (Operation)v),
        from ids in Gen.Choose(-2, 5).ArrayOf()
        select (Action<OrderBatch>)(b => b.Suspects = ids),
        Gen.Constant<Action<OrderBatch>>(b => b.Writes = [.. b.Writes, .. b.Writes]),
        Gen.Constant<Action<OrderBatch>>(b => b.Writes[0].Key = ""),
        Gen.Constant<Action<OrderBatch>>(b => b.Writes[0].Value = null));

    [Test, Category("Property")]
    public void Random_mutations_of_a_valid_batch_raise_only_a_violation_and_then_change_nothing() =>
        Prop.ForAll(Mutation.ListOf().Select(l => l.ToArray()).ToArbitrary(), mutations =>
        {
            var (_, core) = Prepared();
            var batch = ValidBatch(core);
            foreach (var mutate in mutations)
            {
                mutate(batch);
            }
            string before = Fingerprint(core);
            try
            {
                long clockBefore = core.ClockNow;
                core.OnPeerMessage(2, batch);
                if (core.Stopped)
                {
                    // A well-formed claim that this replica holds less than it promised: the
                    // designed stop (design.md §7), also with nothing changed.
                    return Fingerprint(core) == before;
                }
                // Accepted (or queued for a later view): a batch a peer could send, and the clock stays where
                // stamps can still be made (no overflow into negative times).
                return core.ClockNow >= clockBefore && core.ClockNow <= Max + 1;
            }
            catch (ProtocolViolationException)
            {
                return Fingerprint(core) == before;
            }
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(1000));
}
