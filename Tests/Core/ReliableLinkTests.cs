using FsCheck;
using FsCheck.Fluent;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Link;
using KvReplica.Protocol.Wire;
using NUnit.Framework;

namespace KvReplica.Tests.Core;

[TestFixture]
public sealed class ReliableLinkTests
{
    private static ReadQuery Message(long n) => new() { ReadId = n, Key = "k" };

    /// <summary>
    /// Sender and receiver exchange envelopes over a sequence of connections, each of which
    /// carries some prefix of what was sent on it and then breaks; the receiver confirms at
    /// random moments. Whatever the pattern, the receiver gets every message exactly once, in
    /// order, and once it has confirmed everything the sender holds nothing.
    /// </summary>
    [Test]
    [Category("Property")]
    public void Reconnects_at_any_point_deliver_every_message_once_in_order()
    {
        var plans = Gen.Choose(0, 40).Select(n => n).ListOf().Where(l => l.Count > 0)
            .SelectMany(cuts => Gen.Choose(1, 30).Select(total => (Cuts: cuts.ToArray(), Total: total)));
        Prop.ForAll(plans.ToArbitrary(), plan =>
        {
            var sender = new ReliableLink();
            var receiver = new ReliableLink();
            var received = new List<long>();
            long produced = 0;
            foreach (int cut in plan.Cuts)
            {
                // New messages keep arriving from the core between connections.
                for (int i = 0; i < 3 && produced < plan.Total; i++)
                {
                    sender.Wrap(Message(++produced));
                }
                // Reconnect: the receiver says where to resume; the sender resends from there.
                sender.Confirm(receiver.NextExpected);
                var pending = new List<ReplicaEnvelope>();
                sender.CopyPendingFrom(receiver.NextExpected, pending);
                foreach (var envelope in pending.Take(cut))
                {
                    if (receiver.Accept(envelope) is ReadQuery q)
                    {
                        received.Add(q.ReadId);
                    }
                    // A duplicate of an already delivered envelope must be dropped.
                    Assert.That(receiver.Accept(envelope), Is.Null);
                }
            }
            while (produced < plan.Total)
            {
                sender.Wrap(Message(++produced));
            }
            var rest = new List<ReplicaEnvelope>();
            sender.CopyPendingFrom(receiver.NextExpected, rest);
            foreach (var envelope in rest)
            {
                if (receiver.Accept(envelope) is ReadQuery q)
                {
                    received.Add(q.ReadId);
                }
            }
            sender.Confirm(receiver.NextExpected);
            Assert.That(received, Is.EqualTo(Enumerable.Range(1, plan.Total).Select(i => (long)i)));
            Assert.That(sender.UnconfirmedCount, Is.Zero);
        }).QuickCheckThrowOnFailure();
    }

    [Test]
    [Category("Unit")]
    public void A_gap_in_sequence_numbers_is_a_violation()
    {
        var sender = new ReliableLink();
        var receiver = new ReliableLink();
        sender.Wrap(Message(1));
        var second = sender.Wrap(Message(2));
        Assert.That(() => receiver.Accept(second), Throws.TypeOf<ProtocolViolationException>().With.Message.Contains("expected envelope 1, got 2"));
    }

    [Test]
    [Category("Unit")]
    public void A_confirmation_beyond_what_was_sent_is_a_violation()
    {
        var link = new ReliableLink();
        link.Wrap(Message(1));
        Assert.That(() => link.Confirm(5), Throws.TypeOf<ProtocolViolationException>());
    }

    [Test]
    [Category("Unit")]
    public void Confirmed_envelopes_are_forgotten_and_not_resent()
    {
        var link = new ReliableLink();
        for (int i = 1; i <= 2000; i++)
        {
            link.Wrap(Message(i));
        }
        link.Confirm(1500);
        var pending = new List<ReplicaEnvelope>();
        link.CopyPendingFrom(1, pending);
        Assert.That(link.UnconfirmedCount, Is.EqualTo(501));
        Assert.That(pending.Select(e => e.Sequence), Is.EqualTo(Enumerable.Range(1500, 501).Select(i => (long)i)));
    }
}
