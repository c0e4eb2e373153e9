using System.Text;
using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Store;
using KvReplica.Tests.Linearizability;
using MessagePack;

namespace KvReplica.Tests.Simulation;

/// <summary>Knobs of one simulated run.</summary>
public sealed record SimulationSettings
{
    public int Replicas { get; init; } = 3;
    public int Clients { get; init; } = 4;
    public int OpsPerClient { get; init; } = 15;
    public int Keys { get; init; } = 3;
    /// <summary>Simulated milliseconds the network gets to quiet down after the last operation.</summary>
    public long QuiesceMs { get; init; } = 3000;
    /// <summary>Builds each replica's state machine; tests of the checkers plug in a broken one.</summary>
    public Func<IReplicatedStateMachine> StoreFactory { get; init; } = () => new KvStore();
}

/// <summary>A check that failed; the message names the seed, the simulated time and what broke.</summary>
public sealed class SimulationFailure(string message) : Exception(message);

/// <summary>
/// A whole cluster of replica cores, their clients and the network between them, run on one
/// thread from one seed: the same seed replays the same run exactly (TigerBeetle's VOPR idea).
/// </summary>
/// <remarks>
/// The network delays every message randomly, keeps each link FIFO (as the reliable link layer
/// guarantees) and interleaves links at random. Clients run closed loops of PUT, DELETE and GET
/// on a few keys, through random replicas, and sometimes send the same write to a second replica
/// as a timed-out client would. After every event the checkers run; at the end the network
/// quiets down and liveness, convergence and linearizability are checked.
/// </remarks>
public sealed class SimulatedCluster
{
    private abstract record Event;
    private sealed record PeerDelivery(int From, int To, PeerMessage Message) : Event;
    private sealed record ClientArrival(int Replica, int Client, ClientRequest Request) : Event;
    private sealed record ClientReplyArrival(int Client, ClientReply Reply) : Event;
    private sealed record TickEvent(int Replica) : Event;
    private sealed record ClientStart(int Client) : Event;

    private sealed class SimClient(int id, ulong clientId, int concurrency)
    {
        public int Id { get; } = id;
        public ulong ClientId { get; } = clientId;
        /// <summary>Operations this client keeps in flight at once (pipelining).</summary>
        public int Concurrency { get; } = concurrency;
        public long NextSequence = 1;
        public int Started;
        public int Done;
        public long RequestId;
        public readonly Dictionary<long, (ClientRequest Request, long InvokedAt)> Pending = new();
        /// <summary>Write sequences without a final reply; AckedBelow is the smallest of them.</summary>
        public readonly SortedSet<long> UnansweredWrites = [];
    }

    private readonly long _seed;
    private readonly SimulationSettings _settings;
    private readonly Random _random;
    private readonly PriorityQueue<Event, (long Time, long Order)> _events = new();
    private readonly Dictionary<int, ReplicaCore> _cores = new();
    private readonly Dictionary<int, IReplicatedStateMachine> _stores = new();
    private readonly Dictionary<(int From, int To), long> _linkTail = new();
    private readonly List<SimClient> _clients = [];
    private readonly List<KvOperation> _history = [];
    private readonly List<Stamp> _canonical = [];
    private readonly Dictionary<int, int> _deliveredCount = new();
    private readonly Dictionary<int, HashSet<(ulong, long)>> _appliedWrites = new();
    private readonly HashSet<Stamp> _stamped = [];
    private long _now;
    private long _order;

    public SimulatedCluster(long seed, SimulationSettings settings)
    {
        _seed = seed;
        _settings = settings;
        _random = new Random(unchecked((int)seed ^ (int)(seed >> 32)));
        var ids = Enumerable.Range(1, settings.Replicas).ToArray();
        foreach (int id in ids)
        {
            _stores[id] = settings.StoreFactory();
            _cores[id] = new ReplicaCore(new ReplicaCoreOptions
            {
                SelfId = id,
                Members = ids,
                HeartbeatIntervalMs = 20,
                ReadTimeoutMs = 2000,
                WriteTimeoutMs = 5000,
            }, _stores[id]);
            _deliveredCount[id] = 0;
            _appliedWrites[id] = [];
            Schedule(_random.Next(0, 10), new TickEvent(id));
        }
        for (int c = 1; c <= settings.Clients; c++)
        {
            // Three clients in ten pipeline 2 or 3 operations, so pipelined sequences reach the
            // replicas out of order and exercise the exactly-once watermark.
            int concurrency = _random.Next(10) < 3 ? 2 + _random.Next(2) : 1;
            var client = new SimClient(c, (ulong)_random.NextInt64(1, long.MaxValue), concurrency);
            _clients.Add(client);
            for (int k = 0; k < concurrency; k++)
            {
                Schedule(_random.Next(0, 20), new ClientStart(c));
            }
        }
    }

    /// <summary>Operations performed, for the summary line.</summary>
    public int Operations => _history.Count;

    /// <summary>The most operations one client had in flight at once (above 1 means pipelining happened).</summary>
    public int MaxInFlight { get; private set; }

    /// <summary>Writes delivered (in the agreed order).</summary>
    public int WritesDelivered => _canonical.Count;

    /// <summary>Runs to the end and checks everything; throws <see cref="SimulationFailure"/> on any violation.</summary>
    public void Run()
    {
        long lastActivity = 0;
        while (_events.TryDequeue(out var next, out var at))
        {
            _now = at.Time;
            bool clientsDone = _clients.All(c => c.Done >= _settings.OpsPerClient && c.Pending.Count == 0);
            if (clientsDone && _now > lastActivity + _settings.QuiesceMs)
            {
                break;
            }
            if (!clientsDone)
            {
                lastActivity = _now;
            }
            Handle(next);
        }
        CheckQuiescent();
        var verdict = LinearizabilityChecker.Check(_history, TimeSpan.FromSeconds(30));
        if (!verdict.IsLinearizable)
        {
            Fail($"history {verdict.Verdict}: {verdict.Explanation}");
        }
    }

    private void Schedule(long delay, Event e) => _events.Enqueue(e, (_now + delay, ++_order));

    private void Handle(Event e)
    {
        switch (e)
        {
            case TickEvent tick:
                _cores[tick.Replica].Tick(_now);
                Drain(tick.Replica);
                Schedule(5 + _random.Next(0, 6), tick);
                break;
            case PeerDelivery d:
                _cores[d.To].OnPeerMessage(d.From, d.Message);
                Drain(d.To);
                break;
            case ClientArrival a:
                _cores[a.Replica].OnClientRequest(a.Client, a.Request);
                Drain(a.Replica);
                break;
            case ClientReplyArrival r:
                Complete(r.Client, r.Reply);
                break;
            case ClientStart s:
                StartOperation(_clients[s.Client - 1]);
                break;
        }
    }

    // Takes the core's outputs, checks what it delivered, and puts its messages on the network.
    private void Drain(int replica)
    {
        var ready = _cores[replica].TakeReady();
        foreach (var delivered in ready.Delivered)
        {
            CheckDelivery(replica, delivered);
        }
        foreach (var message in ready.Messages)
        {
            Send(replica, message.To, message.Message);
        }
        foreach (var reply in ready.Replies)
        {
            Schedule(_random.Next(0, 4), new ClientReplyArrival((int)reply.ConnectionId, reply.Reply));
        }
    }

    private void Send(int from, int to, PeerMessage message)
    {
        // Usually a few milliseconds, sometimes a long stall; never ahead of an earlier message
        // on the same link (FIFO), but links overtake each other freely.
        long delay = _random.Next(100) < 5 ? _random.Next(50, 250) : _random.Next(0, 15);
        long at = Math.Max(_now + delay, _linkTail.GetValueOrDefault((from, to)));
        _linkTail[(from, to)] = at;
        // A copy through the wire format, so no replica shares an object with another.
        var copy = MessagePackSerializer.Deserialize<PeerMessage>(MessagePackSerializer.Serialize(message, FrameCodec.Options), FrameCodec.Options);
        _events.Enqueue(new PeerDelivery(from, to, copy), (at, ++_order));
    }

    private void StartOperation(SimClient client)
    {
        if (client.Started >= _settings.OpsPerClient)
        {
            return;
        }
        client.Started++;
        string key = "k" + _random.Next(_settings.Keys);
        int roll = _random.Next(100);
        var request = roll switch
        {
            < 45 => new ClientRequest { Operation = Operation.Put, Key = key, Value = Encoding.UTF8.GetBytes($"c{client.Id}-{client.Started}") },
            < 60 => new ClientRequest { Operation = Operation.Delete, Key = key },
            _ => new ClientRequest { Operation = Operation.Get, Key = key, ReadMode = _random.Next(4) == 0 ? ReadMode.Local : ReadMode.Majority },
        };
        if (request.Operation != Operation.Get)
        {
            request.ClientId = client.ClientId;
            request.Sequence = client.NextSequence++;
            client.UnansweredWrites.Add(request.Sequence);
            request.AckedBelow = client.UnansweredWrites.Min;
        }
        request.RequestId = ++client.RequestId;
        client.Pending[request.RequestId] = (request, _now);
        MaxInFlight = Math.Max(MaxInFlight, client.Pending.Count);
        int replica = 1 + _random.Next(_settings.Replicas);
        Schedule(_random.Next(0, 4), new ClientArrival(replica, client.Id, request));
        if (request.Operation != Operation.Get && _random.Next(100) < 15)
        {
            // A client that timed out and retried elsewhere: same client id and sequence.
            int other = 1 + (replica % _settings.Replicas);
            Schedule(_random.Next(0, 60), new ClientArrival(other, client.Id, request));
        }
    }

    private void Complete(int clientId, ClientReply reply)
    {
        var client = _clients[clientId - 1];
        if (!client.Pending.Remove(reply.RequestId, out var pending))
        {
            return; // the second answer to a duplicated write
        }
        var (request, invokedAt) = pending;
        client.Done++;
        if (request.Operation != Operation.Get)
        {
            // Any reply is final for the client: after an error the outcome is unknown, and the
            // client will not retry this sequence again.
            client.UnansweredWrites.Remove(request.Sequence);
        }
        var kind = request.Operation switch
        {
            Operation.Put => KvOperationKind.Put,
            Operation.Delete => KvOperationKind.Delete,
            _ => KvOperationKind.Get,
        };
        var outcome = reply.Status switch
        {
            ReplyStatus.Ok => KvOutcomeKind.Ok,
            ReplyStatus.NotFound => KvOutcomeKind.NotFound,
            _ => KvOutcomeKind.Unknown,
        };
        _history.Add(new KvOperation(client.Id, request.Key, kind, request.Value, outcome,
            reply.Status == ReplyStatus.Ok && kind == KvOperationKind.Get ? reply.Value : null,
            invokedAt, outcome == KvOutcomeKind.Unknown ? long.MaxValue : _now));
        Schedule(_random.Next(0, 10), new ClientStart(client.Id));
    }

    private void CheckDelivery(int replica, DeliveredWrite delivered)
    {
        var stamp = delivered.Command.Stamp;
        int index = _deliveredCount[replica]++;
        if (index > 0 && _canonical.Count > index - 1 && _canonical[index - 1] >= stamp)
        {
            Fail($"replica {replica} delivered {stamp} after {_canonical[index - 1]}: not in stamp order");
        }
        if (index < _canonical.Count)
        {
            if (_canonical[index] != stamp)
            {
                Fail($"agreement violated: replica {replica} delivered {stamp} as write #{index + 1}, others delivered {_canonical[index]}");
            }
        }
        else
        {
            if (!_stamped.Add(stamp))
            {
                Fail($"write {stamp} delivered twice");
            }
            _canonical.Add(stamp);
        }
        var clientWrite = (delivered.Command.ClientId, delivered.Command.Sequence);
        if (!delivered.Duplicate && delivered.Command.ClientId != 0 && !_appliedWrites[replica].Add(clientWrite))
        {
            Fail($"replica {replica} applied client {clientWrite.Item1:x} sequence {clientWrite.Item2} twice");
        }
    }

    private void CheckQuiescent()
    {
        foreach (var (id, core) in _cores)
        {
            if (core.PendingWrites != 0 || _deliveredCount[id] != _canonical.Count)
            {
                Fail($"liveness: after the network quieted, replica {id} delivered {_deliveredCount[id]} of {_canonical.Count} writes with {core.PendingWrites} still held");
            }
        }
        var reference = Snapshot(_stores[1]);
        foreach (var (id, store) in _stores)
        {
            if (Snapshot(store) != reference)
            {
                Fail($"replica {id}'s store differs from replica 1's after quiescence");
            }
        }
        var unfinished = _clients.Where(c => c.Done < _settings.OpsPerClient).Select(c => c.Id).ToList();
        if (unfinished.Count > 0)
        {
            Fail($"liveness: clients {string.Join(",", unfinished)} never completed their operations");
        }
    }

    private string Snapshot(IReplicatedStateMachine store) =>
        string.Join("|", Enumerable.Range(0, _settings.Keys).Select(k => store.Read("k" + k)).Select(v => v.Found ? $"{Convert.ToHexString(v.Value!)}@{v.Version}" : "-"));

    private void Fail(string what) =>
        throw new SimulationFailure($"seed {_seed} ({_settings.Replicas} replicas): {what} at t={_now}ms; replay with SEED={_seed} ./run_tests.sh");
}
