using System.Text;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Store;
using NUnit.Framework;

namespace KvReplica.Tests.Core;

/// <summary>Regression tests for a core driven across a peer's restart (found by the crash simulation).</summary>
[TestFixture]
[Category("Unit")]
public sealed class ReplicaCoreRestartTests
{
    private static ReplicaCore NewCore(int id) => new(new ReplicaCoreOptions { SelfId = id, Members = [1, 2, 3] }, new KvStore());

    // Messages each core produced, per destination, in order (the links of the test).
    private static Dictionary<int, List<PeerMessage>> Take(ReplicaCore core, List<ClientResponse>? replies = null)
    {
        var ready = core.TakeReady();
        core.Advance(ready);
        replies?.AddRange(ready.Replies);
        return ready.Messages.GroupBy(m => m.To).ToDictionary(g => g.Key, g => g.Select(m => m.Message).ToList());
    }

    private static void Hand(Dictionary<int, List<PeerMessage>> sent, int from, int to, ReplicaCore target)
    {
        foreach (var message in sent.GetValueOrDefault(to) ?? [])
        {
            target.OnPeerMessage(from, message);
        }
    }

    [Test]
    public void A_read_fenced_for_a_peers_old_incarnation_is_not_answered_to_its_new_one()
    {
        // Read ids restart at 1 in a new process. A read query from replica 3's old incarnation,
        // fenced at replica 2 behind a held write, used to be answered after 3 restarted, and 3's
        // new read with the same id took that answer, for another key, as its own: a GET of "j"
        // returned the value of "k". Seed 1083312776 of the crash simulation found it.
        var a = NewCore(1);
        var b = NewCore(2);
        var c = NewCore(3);

        // A write to k from replica 1 reaches 2 only: 2 holds it, undeliverable without 3.
        a.OnClientRequest(10, new ClientRequest { RequestId = 1, Operation = Operation.Put, Key = "k", Value = "x"u8.ToArray(), ClientId = 9, Sequence = 1, AckedBelow = 1 });
        Hand(Take(a), 1, 2, b);
        Take(b); // its acknowledgement to 1 is not needed for the point of the test

        // Replica 3 starts a read of k (read id 1); 2 fences it behind the held write.
        c.OnClientRequest(20, new ClientRequest { RequestId = 1, Operation = Operation.Get, Key = "k" });
        Hand(Take(c), 3, 2, b);
        Assert.That(Take(b).GetValueOrDefault(3), Is.Null.Or.Empty, "2 must wait for the write to k before answering");

        // Replica 3 restarts with an empty disk (it never held the write); 1 and 2 learn of it.
        var c2 = NewCore(3);
        a.OnPeerRestarted(3);
        b.OnPeerRestarted(3);

        // The new incarnation reads j (read id 1 again) and answers itself: j is absent.
        var replies = new List<ClientResponse>();
        c2.OnClientRequest(21, new ClientRequest { RequestId = 2, Operation = Operation.Get, Key = "j" });
        var fromC2 = Take(c2, replies);

        // 1 re-sends its write to the new 3, which holds and acknowledges it; 2 can deliver the
        // write to k, which releases the old fenced read.
        Hand(Take(a), 1, 3, c2);
        var ackFromC2 = Take(c2, replies);
        Hand(ackFromC2, 3, 2, b);
        Hand(fromC2, 3, 2, b); // the query for j
        var fromB = Take(b);
        Hand(fromB, 2, 3, c2);
        Take(c2, replies);

        var reply = replies.Select(r => r.Reply).Single(r => r.RequestId == 2);
        Assert.That(reply.Status, Is.EqualTo(ReplyStatus.NotFound), $"GET j returned {(reply.Value is null ? "nothing" : Encoding.UTF8.GetString(reply.Value))}");
    }
}
