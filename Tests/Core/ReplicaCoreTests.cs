using System.Text;
using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Store;
using NUnit.Framework;

namespace KvReplica.Tests.Core;

/// <summary>
/// Three cores wired directly: messages are handed over FIFO per link when the test says so,
/// and a link can be held back to play a silent member.
/// </summary>
/// <summary>A core of <see cref="WiredCores"/> stopped (<see cref="Ready.Stop"/>); the test sees it as this.</summary>
internal sealed class CoreStoppedException(int replica, CoreStop stop) : Exception($"replica {replica} stopped ({stop.Kind}): {stop.Reason}")
{
    public CoreStop Stop { get; } = stop;
}

internal sealed class WiredCores
{
    public readonly Dictionary<int, ReplicaCore> Cores = new();
    public readonly Dictionary<int, KvStore> Stores = new();
    public readonly Dictionary<int, List<DeliveredWrite>> Delivered = new();
    public readonly List<ClientResponse> Replies = [];
    private readonly Dictionary<(int From, int To), Queue<PeerMessage>> _links = new();
    public readonly HashSet<int> Silent = [];
    /// <summary>What each core asked to persist, in order: the write-ahead log a Node would keep.</summary>
    public readonly Dictionary<int, List<KvReplica.Store.Persistence.LogEntry>> Logs = new();
    public long Now;
    private readonly int[] _ids;
    private readonly int _maxPendingWrites;

    private readonly int _recentDeliveredWrites;

    public WiredCores(int count = 3, int maxPendingWrites = 100_000, int recentDeliveredWrites = 50_000)
    {
        _recentDeliveredWrites = recentDeliveredWrites;
        var ids = Enumerable.Range(1, count).ToArray();
        _ids = ids;
        _maxPendingWrites = maxPendingWrites;
        foreach (int id in ids)
        {
            Stores[id] = new KvStore();
            Cores[id] = NewCore(id, Stores[id], null);
            Logs[id] = [];
            Delivered[id] = [];
            foreach (int other in ids.Where(o => o != id))
            {
                _links[(id, other)] = new Queue<PeerMessage>();
            }
        }
    }

    private ReplicaCore NewCore(int id, KvStore store, CoreRecoveryState? recovered) => new(new ReplicaCoreOptions
    {
        SelfId = id,
        Members = _ids,
        ReadTimeoutMs = 1000,
        WriteTimeoutMs = 2000,
        MaxPendingWrites = _maxPendingWrites,
        RecentDeliveredWrites = _recentDeliveredWrites,
    }, store, recovered);

    /// <summary>
    /// Crashes replica <paramref name="id"/> and starts it again from its log alone, as a Node
    /// would after SIGKILL: messages in flight to and from it are lost (the links start afresh)
    /// and its peers are told it restarted. Returns how many writes recovery replayed.
    /// </summary>
    public int Restart(int id, Func<List<KvReplica.Store.Persistence.LogEntry>, IEnumerable<KvReplica.Store.Persistence.LogEntry>>? damage = null)
    {
        foreach (var ((from, to), queue) in _links)
        {
            if (from == id || to == id)
            {
                queue.Clear();
            }
        }
        var store = new KvStore();
        var log = damage is null ? Logs[id] : [.. damage(Logs[id])];
        Logs[id] = log;
        var recovered = KvReplica.Store.Persistence.Recovery.Rebuild(store, log, out int replayed);
        Stores[id] = store;
        Cores[id] = NewCore(id, store, recovered);
        foreach (int other in _ids.Where(o => o != id))
        {
            Cores[other].OnPeerRestarted(id);
        }
        return replayed;
    }

    /// <summary>Collects every core's outputs and passes messages on until nothing moves.</summary>
    public void Settle()
    {
        bool moved = true;
        while (moved)
        {
            moved = false;
            foreach (var (id, core) in Cores)
            {
                var ready = core.TakeReady();
                if (ready.Stop is { } stop)
                {
                    throw new CoreStoppedException(id, stop);
                }
                // Persist before anything of this round leaves, through the mapping the Node uses.
                KvReplica.Store.Persistence.ReadyRecords.AppendTo(ready, Logs[id]);
                core.Advance(ready);
                Delivered[id].AddRange(ready.Delivered);
                Replies.AddRange(ready.Replies);
                foreach (var m in ready.Messages)
                {
                    _links[(id, m.To)].Enqueue(m.Message);
                }
            }
            foreach (var ((from, to), queue) in _links)
            {
                if (Silent.Contains(from) || Silent.Contains(to))
                {
                    continue;
                }
                while (queue.TryDequeue(out var message))
                {
                    Cores[to].OnPeerMessage(from, message);
                    moved = true;
                }
            }
        }
    }

    public void Advance(long ms)
    {
        Now += ms;
        foreach (int id in Cores.Keys.Where(i => !Silent.Contains(i)))
        {
            Cores[id].Tick(Now);
        }
        Settle();
    }

    private long _nextRequest;
    private long _nextSequence;

    public long Put(int via, string key, string value, ulong client = 7)
    {
        long id = ++_nextRequest;
        Cores[via].OnClientRequest(via, new ClientRequest
        {
            RequestId = id, Operation = Operation.Put, Key = key, Value = Encoding.UTF8.GetBytes(value),
            ClientId = client, Sequence = ++_nextSequence, AckedBelow = 1,
        });
        return id;
    }

    public long Get(int via, string key, ReadMode mode = ReadMode.Majority)
    {
        long id = ++_nextRequest;
        Cores[via].OnClientRequest(via, new ClientRequest { RequestId = id, Operation = Operation.Get, Key = key, ReadMode = mode });
        return id;
    }

    public ClientReply? ReplyTo(long requestId) => Replies.Select(r => r.Reply).SingleOrDefault(r => r.RequestId == requestId);
}

[TestFixture]
[Category("Unit")]
public sealed class ReplicaCoreTests
{
    private static string Text(ClientReply? reply) => reply?.Value is null ? "<none>" : Encoding.UTF8.GetString(reply.Value);

    [Test]
    public void A_put_is_delivered_at_every_replica_and_a_majority_read_anywhere_sees_it()
    {
        var cluster = new WiredCores();
        long put = cluster.Put(1, "k", "v1");
        cluster.Settle();
        Assert.That(cluster.ReplyTo(put)?.Status, Is.EqualTo(ReplyStatus.Ok));
        foreach (int id in new[] { 1, 2, 3 })
        {
            Assert.That(cluster.Delivered[id].Select(d => d.Command.Key), Is.EqualTo(new[] { "k" }), $"replica {id}");
        }
        long get = cluster.Get(3, "k");
        cluster.Settle();
        Assert.That(Text(cluster.ReplyTo(get)), Is.EqualTo("v1"));
    }

    [Test]
    public void Concurrent_writes_at_every_replica_are_delivered_in_one_order_everywhere()
    {
        var cluster = new WiredCores();
        for (int round = 0; round < 5; round++)
        {
            foreach (int id in new[] { 1, 2, 3 })
            {
                cluster.Put(id, "shared", $"r{id}-{round}", client: (ulong)id);
            }
        }
        cluster.Settle();
        var orders = cluster.Delivered.Values.Select(d => d.Select(w => w.Command.Stamp).ToList()).ToList();
        Assert.That(orders[0], Has.Count.EqualTo(15));
        Assert.That(orders[0], Is.Ordered, "delivered in stamp order");
        Assert.That(orders[1], Is.EqualTo(orders[0]));
        Assert.That(orders[2], Is.EqualTo(orders[0]));
        Assert.That(cluster.Stores[2].Read("shared").Value, Is.EqualTo(cluster.Stores[1].Read("shared").Value));
    }

    [Test]
    public void A_write_waits_for_a_silent_member_and_then_fails_naming_it()
    {
        var cluster = new WiredCores();
        cluster.Silent.Add(3);
        long put = cluster.Put(1, "k", "v");
        cluster.Settle();
        Assert.That(cluster.ReplyTo(put), Is.Null, "not delivered without replica 3's acknowledgement");
        Assert.That(cluster.Delivered[1], Is.Empty);
        cluster.Advance(2500);
        var reply = cluster.ReplyTo(put);
        Assert.That(reply?.Error, Is.EqualTo(ErrorCode.NoMajority));
        Assert.That(reply?.ErrorMessage, Does.Contain("replica 3"));
    }

    [Test]
    public void A_majority_read_answers_while_one_member_is_silent()
    {
        var cluster = new WiredCores();
        cluster.Put(2, "k", "before");
        cluster.Settle();
        cluster.Silent.Add(3);
        long get = cluster.Get(1, "k");
        cluster.Settle();
        Assert.That(Text(cluster.ReplyTo(get)), Is.EqualTo("before"));
    }

    [Test]
    public void A_read_without_a_majority_times_out_with_no_majority()
    {
        var cluster = new WiredCores();
        cluster.Silent.Add(2);
        cluster.Silent.Add(3);
        long get = cluster.Get(1, "k");
        cluster.Settle();
        Assert.That(cluster.ReplyTo(get), Is.Null);
        cluster.Advance(1500);
        Assert.That(cluster.ReplyTo(get)?.ErrorMessage, Does.StartWith("no majority: 1 of 3"));
    }

    [Test]
    public void A_read_waits_behind_a_held_write_to_its_key_but_not_to_other_keys()
    {
        var cluster = new WiredCores();
        cluster.Put(1, "other", "o");
        cluster.Settle();
        cluster.Silent.Add(3);
        cluster.Put(1, "k", "pending");
        cluster.Settle();
        long blocked = cluster.Get(1, "k", ReadMode.Local);
        long free = cluster.Get(1, "other", ReadMode.Local);
        cluster.Settle();
        Assert.That(Text(cluster.ReplyTo(free)), Is.EqualTo("o"));
        Assert.That(cluster.ReplyTo(blocked), Is.Null, "the fence holds the read until the write to k is delivered");
        cluster.Silent.Clear();
        cluster.Settle();
        Assert.That(Text(cluster.ReplyTo(blocked)), Is.EqualTo("pending"));
    }

    [Test]
    public void A_retried_write_with_the_same_client_sequence_is_applied_once()
    {
        var cluster = new WiredCores();
        var request = new ClientRequest { RequestId = 101, Operation = Operation.Delete, Key = "k", ClientId = 99, Sequence = 1, AckedBelow = 1 };
        cluster.Put(1, "k", "v", client: 5);
        cluster.Settle();
        cluster.Cores[1].OnClientRequest(1, request);
        cluster.Cores[2].OnClientRequest(2, new ClientRequest { RequestId = 102, Operation = Operation.Delete, Key = "k", ClientId = 99, Sequence = 1, AckedBelow = 1 });
        cluster.Settle();
        Assert.That(cluster.ReplyTo(101)?.Status, Is.EqualTo(ReplyStatus.Ok));
        Assert.That(cluster.ReplyTo(102)?.Status, Is.EqualTo(ReplyStatus.Ok), "the retry gets the first attempt's result, not NotFound");
        Assert.That(cluster.Delivered[3].Count(d => d.Command.ClientId == 99 && !d.Duplicate), Is.EqualTo(1));
    }

    [Test]
    public void Writes_beyond_the_pending_limit_are_refused_as_busy()
    {
        var cluster = new WiredCores(maxPendingWrites: 2);
        cluster.Silent.Add(3);
        cluster.Put(1, "a", "1");
        cluster.Put(1, "b", "2");
        long third = cluster.Put(1, "c", "3");
        cluster.Settle();
        Assert.That(cluster.ReplyTo(third)?.Error, Is.EqualTo(ErrorCode.Busy));
    }

    [Test]
    public void An_invalid_request_gets_a_request_local_error()
    {
        var cluster = new WiredCores();
        cluster.Cores[1].OnClientRequest(1, new ClientRequest { RequestId = 5, Operation = Operation.Get, Key = new string('x', 1025) });
        cluster.Settle();
        Assert.That(cluster.ReplyTo(5)?.Error, Is.EqualTo(ErrorCode.InvalidRequest));
        Assert.That(cluster.ReplyTo(5)?.ErrorMessage, Does.Contain("1025 bytes"));
    }

    [Test]
    public void An_out_of_order_write_from_a_peer_is_a_violation_that_changes_nothing()
    {
        var cluster = new WiredCores();
        var core = cluster.Cores[1];
        core.OnPeerMessage(2, new OrderBatch { Writes = [new WriteEntry { Time = 5, Operation = Operation.Put, Key = "a", Value = [1] }], Clock = 5 });
        long clockBefore = core.ClockNow;
        int pendingBefore = core.PendingWrites;
        var stale = new OrderBatch
        {
            Writes = [new WriteEntry { Time = 6, Operation = Operation.Put, Key = "b", Value = [1] }, new WriteEntry { Time = 4, Operation = Operation.Put, Key = "c", Value = [1] }],
            Clock = 6,
        };
        Assert.That(() => core.OnPeerMessage(2, stale), Throws.TypeOf<ProtocolViolationException>());
        Assert.That(core.ClockNow, Is.EqualTo(clockBefore));
        Assert.That(core.PendingWrites, Is.EqualTo(pendingBefore));
    }

    [Test]
    public void Acknowledgements_are_batched_one_order_batch_per_peer_per_ready()
    {
        var cluster = new WiredCores();
        for (int i = 0; i < 50; i++)
        {
            cluster.Put(1, $"k{i}", "v");
        }
        var ready = cluster.Cores[1].TakeReady();
        cluster.Cores[1].Advance(ready);
        Assert.That(ready.Messages.Count(m => m.To == 2 && m.Message is OrderBatch), Is.EqualTo(1));
        Assert.That(ready.Messages.OfType<Outgoing>().Select(m => m.Message).OfType<OrderBatch>().First().Writes, Has.Length.EqualTo(50));
    }

    [Test]
    public void Lamport_clock_moves_past_every_received_time()
    {
        var cluster = new WiredCores();
        cluster.Cores[1].OnPeerMessage(2, new OrderBatch { Writes = [new WriteEntry { Time = 41, Operation = Operation.Put, Key = "a", Value = [] }], Clock = 41 });
        Assert.That(cluster.Cores[1].ClockNow, Is.EqualTo(42));
        long put = cluster.Put(1, "b", "x");
        cluster.Cores[1].TakeReady();
        Assert.That(cluster.Cores[1].ClockNow, Is.EqualTo(43), "a local write stamps a fresh time");
        Assert.That(put, Is.GreaterThan(0));
        Assert.That(new Stamp(43, 1), Is.GreaterThan(new Stamp(41, 2)));
    }
}
