using FsCheck;
using FsCheck.Fluent;
using KvReplica.Clock;
using NUnit.Framework;

namespace KvReplica.Tests.Clock;

[TestFixture]
public sealed class LamportClockTests
{
    [Test, Category("Unit")]
    public void Witness_moves_past_the_larger_of_local_and_received_time()
    {
        var clock = new LamportClock();
        Assert.That(clock.Tick(), Is.EqualTo(1));
        Assert.That(clock.Witness(10), Is.EqualTo(11));
        Assert.That(clock.Witness(3), Is.EqualTo(12), "an older time still counts as an event");
        Assert.That(() => clock.Witness(-1), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test, Category("Property")]
    public void The_clock_strictly_increases_and_passes_every_witnessed_time() =>
        Prop.ForAll(Gen.Choose(-1, 1000).ListOf().ToArbitrary(), events =>
        {
            // -1 stands for a local tick, anything else for a received time.
            var clock = new LamportClock();
            long previous = clock.Now;
            foreach (int e in events)
            {
                long now = e < 0 ? clock.Tick() : clock.Witness(e);
                if (now <= previous || (e >= 0 && now <= e))
                {
                    return false;
                }
                previous = now;
            }
            return true;
        }).QuickCheckThrowOnFailure();

    [Test, Category("Property")]
    public void Stamps_are_ordered_by_time_then_replica_id() =>
        Prop.ForAll(Gen.Choose(0, 5).Two().Two().ToArbitrary(), pair =>
        {
            var a = new Stamp(pair.Item1.Item1, pair.Item1.Item2);
            var b = new Stamp(pair.Item2.Item1, pair.Item2.Item2);
            int expected = (a.Time, a.ReplicaId).CompareTo((b.Time, b.ReplicaId));
            return Math.Sign(a.CompareTo(b)) == Math.Sign(expected)
                && (a < b) == (expected < 0) && (a > b) == (expected > 0)
                && (a <= b) == (expected <= 0) && (a == b) == (expected == 0);
        }).QuickCheckThrowOnFailure();
}

[TestFixture]
public sealed class HoldBackQueueTests
{
    /// <summary>The delivery rule stated as plainly as possible: a sorted list and an ack table.</summary>
    private sealed class NaiveQueue(int[] members)
    {
        public readonly List<Stamp> Held = [];
        public readonly Dictionary<(int Member, int Origin), long> Acks = new();

        public bool Deliverable(out Stamp head)
        {
            head = Held.Count > 0 ? Held.Min() : default;
            var h = head;
            return Held.Count > 0 && members.All(m => Acks.GetValueOrDefault((m, h.ReplicaId)) >= h.Time);
        }
    }

    private abstract record Step;
    private sealed record AddStep(int Origin, int Gap) : Step;
    private sealed record AckStep(int Member, int Origin, int Time) : Step;
    private sealed record TakeStep : Step;

    private static Gen<(int Members, List<Step> Steps)> Scenarios =>
        from members in Gen.Choose(1, 5)
        from steps in Gen.OneOf(
                Gen.Choose(1, members).SelectMany(o => Gen.Choose(1, 3).Select(g => (Step)new AddStep(o, g))),
                Gen.Choose(1, members).SelectMany(m => Gen.Choose(1, members).SelectMany(o => Gen.Choose(0, 40).Select(t => (Step)new AckStep(m, o, t)))),
                Gen.Constant((Step)new TakeStep()))
            .ListOf()
        select (members, steps.ToList());

    [Test, Category("Property")]
    public void The_queue_agrees_with_a_naive_sorted_list_oracle() =>
        Prop.ForAll(Scenarios.ToArbitrary(), scenario =>
        {
            int[] members = [.. Enumerable.Range(1, scenario.Members)];
            var queue = new HoldBackQueue<string>(members);
            var oracle = new NaiveQueue(members);
            var tails = members.ToDictionary(m => m, _ => 0L);
            var delivered = new List<Stamp>();
            foreach (var step in scenario.Steps)
            {
                switch (step)
                {
                    case AddStep add:
                        // Per-origin FIFO with increasing times, always past what was delivered.
                        long time = Math.Max(tails[add.Origin], delivered.Count > 0 ? delivered[^1].Time : 0) + add.Gap;
                        tails[add.Origin] = time;
                        var stamp = new Stamp(time, add.Origin);
                        queue.Add(stamp, stamp.ToString());
                        oracle.Held.Add(stamp);
                        break;
                    case AckStep ack:
                        queue.RecordAck(ack.Member, ack.Origin, ack.Time);
                        oracle.Acks[(ack.Member, ack.Origin)] = Math.Max(oracle.Acks.GetValueOrDefault((ack.Member, ack.Origin)), ack.Time);
                        break;
                    case TakeStep:
                        bool expected = oracle.Deliverable(out var head);
                        bool took = queue.TryTakeDeliverable(out var got, out var item);
                        if (took != expected || (took && (got != head || item != head.ToString())))
                        {
                            return false;
                        }
                        if (took)
                        {
                            oracle.Held.Remove(head);
                            delivered.Add(got);
                        }
                        break;
                }
                if (queue.Count != oracle.Held.Count)
                {
                    return false;
                }
            }
            return delivered.Zip(delivered.Skip(1)).All(p => p.First < p.Second);
        }).QuickCheckThrowOnFailure();

    [Test, Category("Unit")]
    public void Adds_out_of_FIFO_order_or_behind_delivery_are_rejected()
    {
        var queue = new HoldBackQueue<int>([1, 2]);
        queue.Add(new Stamp(5, 2), 0);
        Assert.That(() => queue.Add(new Stamp(4, 2), 0), Throws.InvalidOperationException, "older write from the same origin");
        queue.RecordAck(1, 2, 5);
        queue.RecordAck(2, 2, 5);
        Assert.That(queue.TryTakeDeliverable(out var s, out _), Is.True);
        Assert.That(s, Is.EqualTo(new Stamp(5, 2)));
        Assert.That(() => queue.Add(new Stamp(5, 1), 0), Throws.InvalidOperationException, "at or below the last delivered stamp");
    }

    [Test, Category("Unit")]
    public void A_head_waits_for_every_member_its_origin_included()
    {
        var queue = new HoldBackQueue<int>([1, 2, 3]);
        queue.Add(new Stamp(1, 1), 0);
        queue.RecordAck(2, 1, 1);
        queue.RecordAck(3, 1, 1);
        Assert.That(queue.TryTakeDeliverable(out _, out _), Is.False, "its origin has not acknowledged it (in this view)");
        queue.RecordAck(1, 1, 1);
        queue.ResetAcks();
        queue.RecordAck(1, 1, 1);
        queue.RecordAck(2, 1, 1);
        Assert.That(queue.TryTakeDeliverable(out _, out _), Is.False, "replica 3 has not acknowledged");
        queue.RecordAck(3, 1, 0);
        Assert.That(queue.TryTakeDeliverable(out _, out _), Is.False, "an older acknowledgement does not cover it");
        queue.RecordAck(3, 1, 1);
        Assert.That(queue.TryTakeDeliverable(out _, out _), Is.True);
    }

    [Test, Category("Unit")]
    public void Changing_members_keeps_the_acks_of_members_that_stay()
    {
        var queue = new HoldBackQueue<int>([1, 2, 3]);
        queue.Add(new Stamp(1, 1), 0);
        queue.RecordAck(1, 1, 1);
        queue.RecordAck(2, 1, 1);
        Assert.That(queue.TryTakeDeliverable(out _, out _), Is.False);
        queue.ChangeMembers([1, 2]);
        Assert.That(queue.AckedThrough(2, 1), Is.EqualTo(1));
        Assert.That(queue.TryTakeDeliverable(out _, out _), Is.True, "without replica 3 the write is stable");
    }
}
