using System.Text;
using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Store;
using KvReplica.Tests.Linearizability;

namespace KvReplica.Tests.Simulation;

// The operations beyond PUT, GET and DELETE in the simulated clients' mix (UPDATE, compare-and-set,
// put-if-absent, EXISTS, TXN, MSET, MGET, LIST by pages), recorded for the linearizability
// checker; and watchers, whose streams are checked against the agreed order at the end.
public sealed partial class SimulatedCluster
{
    // What a client last saw of a key (from a read, or its own write's reply): the version and the
    // value that carried it. Values are unique per write, so the checker models a compare on this
    // version as a compare on this value.
    private sealed class KeyObservation
    {
        public Dictionary<string, (Stamp Version, byte[] Value)> Seen { get; } = new(StringComparer.Ordinal);
    }

    private readonly Dictionary<int, KeyObservation> _observations = new();

    // The value each CAS in flight expects (the one that carried its expected version when it was sent).
    private readonly Dictionary<(int Client, long RequestId), byte[]> _casExpected = new();

    // A LIST in progress: its pages so far, and the revision they are read at.
    private readonly Dictionary<(int Client, long RequestId), List<KeyValue>> _listPages = new();

    private KeyObservation ObservationsOf(SimClient client) =>
        _observations.TryGetValue(client.Id, out var seen) ? seen : _observations[client.Id] = new KeyObservation();

    private string RandomKey() => "k" + _random.Next(_settings.Keys);

    // One request of the extended mix; null for the classic PUT, DELETE and GET.
    private ClientRequest? ExtendedRequest(SimClient client, int roll, string key, byte[] value, out byte[]? casExpected)
    {
        var seen = ObservationsOf(client).Seen;
        casExpected = null;
        switch (roll)
        {
            case < 8:
                return new ClientRequest { Operation = Operation.Update, Key = key, Value = value };
            case < 18:
            {
                // Compare-and-set from what this client last saw, or put-if-absent.
                var expected = seen.TryGetValue(key, out var last) && _random.Next(4) != 0 ? last.Version : Stamp.Zero;
                casExpected = expected == Stamp.Zero ? null : last.Value;
                return new ClientRequest { Operation = Operation.CompareAndSet, Key = key, Value = value, ExpectedTime = expected.Time, ExpectedReplica = expected.ReplicaId };
            }
            case < 26:
            {
                string other = RandomKey();
                var compares = new List<TxnCompare>();
                int kind = _random.Next(3);
                compares.Add(kind == 0 && seen.TryGetValue(key, out var last)
                    ? new TxnCompare { Key = key, Kind = TxnCompareKind.ValueEquals, Value = last.Value }
                    : new TxnCompare { Key = key, Kind = kind == 1 ? TxnCompareKind.Absent : TxnCompareKind.Exists });
                var then = new List<TxnOp> { new() { Operation = Operation.Put, Key = key, Value = value } };
                if (other != key)
                {
                    then.Add(_random.Next(3) == 0
                        ? new TxnOp { Operation = Operation.Delete, Key = other }
                        : new TxnOp { Operation = Operation.Put, Key = other, Value = value });
                }
                TxnOp[] otherwise = _random.Next(2) == 0 ? [] : [new TxnOp { Operation = Operation.Put, Key = other, Value = value }];
                return new ClientRequest { Operation = Operation.Txn, Txn = new TxnBody { Compares = [.. compares], Then = [.. then], Else = otherwise } };
            }
            case < 32:
                return new ClientRequest { Operation = Operation.MultiGet, Keys = [.. new[] { key, RandomKey(), RandomKey() }.Distinct()], ReadMode = _random.Next(4) == 0 ? ReadMode.Local : ReadMode.Majority };
            case < 38:
                return new ClientRequest { Operation = Operation.Scan, Scan = new ScanRequest { Prefix = "k", Limit = 1 + _random.Next(3) } };
            case < 43:
                return new ClientRequest { Operation = Operation.Exists, Key = key };
            default:
                return null;
        }
    }

    // What the checker is told of a finished operation; null while a LIST has pages to go (its
    // next page was sent instead).
    private KvOperation? ToCheckedOperation(SimClient client, ClientRequest request, long invokedAt, KvOutcomeKind outcome, ClientReply? reply, long returnedAt)
    {
        bool ok = reply is not null && outcome != KvOutcomeKind.Unknown;
        var seen = ObservationsOf(client).Seen;
        switch (request.Operation)
        {
            case Operation.Put or Operation.Update or Operation.CompareAndSet when ok && reply!.Status == ReplyStatus.Ok && reply.VersionTime != 0:
                // (A retry the cluster recognised reports no version.)
                seen[request.Key] = (new Stamp(reply.VersionTime, reply.VersionReplica), request.Value!);
                break;
            case Operation.Get when ok && reply!.Status == ReplyStatus.Ok:
                seen[request.Key] = (new Stamp(reply.VersionTime, reply.VersionReplica), reply.Value!);
                break;
        }
        switch (request.Operation)
        {
            case Operation.Update:
                return KvOperation.Update(client.Id, request.Key, request.Value!, outcome, invokedAt, returnedAt);
            case Operation.CompareAndSet:
            {
                var expected = new Stamp(request.ExpectedTime, request.ExpectedReplica);
                byte[]? expectedValue = expected == Stamp.Zero ? null
                    : _casExpected.Remove((client.Id, request.RequestId), out var value) ? value
                    : throw new InvalidOperationException($"client {client.Id}'s CAS {request.RequestId} has no recorded expected value");
                var casOutcome = ok && reply!.Status == ReplyStatus.ConditionFailed ? KvOutcomeKind.ConditionFailed : outcome;
                return KvOperation.CompareAndSet(client.Id, request.Key, expectedValue, request.Value!, casOutcome, invokedAt, returnedAt);
            }
            case Operation.Exists:
                return KvOperation.KeyExists(client.Id, request.Key, ok ? reply!.Status == ReplyStatus.Ok : null, invokedAt, returnedAt);
            case Operation.Txn:
            {
                var txn = request.Txn!;
                var model = new Linearizability.KvTxn(
                    [.. txn.Compares.Select(c => new KvCompare(c.Key, c.Kind switch
                    {
                        TxnCompareKind.ValueEquals => KvCompareKind.ValueEquals,
                        TxnCompareKind.Absent => KvCompareKind.Absent,
                        _ => KvCompareKind.Exists,
                    }, c.Value))],
                    [.. txn.Then.Select(o => new KvWrite(o.Key, o.Operation == Operation.Put ? o.Value : null))],
                    [.. txn.Else.Select(o => new KvWrite(o.Key, o.Operation == Operation.Put ? o.Value : null))]);
                var branch = !ok ? KvOutcomeKind.Unknown : reply!.Status == ReplyStatus.Ok ? KvOutcomeKind.Then : KvOutcomeKind.Else;
                return KvOperation.Transaction(client.Id, model, branch, invokedAt, returnedAt);
            }
            case Operation.MultiGet:
            {
                var reads = ok ? reply!.Entries!.Select(e => new KvRead(e.Key, e.Found ? e.Value : null)).ToList() : request.Keys!.Select(k => new KvRead(k, null)).ToList();
                return KvOperation.MultiGet(client.Id, reads, ok ? KvOutcomeKind.Ok : KvOutcomeKind.Unknown, invokedAt, returnedAt);
            }
            case Operation.Scan:
            {
                var key = (client.Id, request.RequestId);
                var pages = _listPages.TryGetValue(key, out var sofar) ? sofar : [];
                _listPages.Remove(key);
                if (!ok)
                {
                    return KvOperation.ListPrefix(client.Id, "k", [], KvOutcomeKind.Unknown, invokedAt, returnedAt);
                }
                pages.AddRange(reply!.Entries!);
                if (reply.More)
                {
                    // The next page at the same revision, from any replica; the LIST ends when the last page returns.
                    var next = new ClientRequest
                    {
                        Operation = Operation.Scan,
                        RequestId = ++client.RequestId,
                        Scan = new ScanRequest { Prefix = "k", Limit = request.Scan!.Limit, After = reply.Entries![^1].Key, RevisionTime = reply.RevisionTime, RevisionReplica = reply.RevisionReplica },
                    };
                    _listPages[(client.Id, next.RequestId)] = pages;
                    client.Pending[next.RequestId] = (next, invokedAt);
                    SendRequest(1 + _random.Next(_settings.Replicas), client, next, _random.Next(0, 4));
                    Schedule(_settings.ClientTimeoutMs, new ClientTimeout(client.Id, next.RequestId));
                    return null;
                }
                if (pages.Select(p => p.Key).Distinct().Count() != pages.Count)
                {
                    Fail($"client {client.Id}'s LIST returned a key twice across its pages: {string.Join(", ", pages.Select(p => p.Key))}");
                }
                return KvOperation.ListPrefix(client.Id, "k", [.. pages.Select(p => new KvRead(p.Key, p.Value))], KvOutcomeKind.Ok, invokedAt, returnedAt);
            }
            default:
                return null;
        }
    }
}

// Watchers.
public sealed partial class SimulatedCluster
{
    private sealed record WatchOpen(int Watcher) : Event;
    private sealed record WatchCheck(int Watcher) : Event;

    // Replies to watchers come on connection ids above every client's and every probe's.
    private const int WatcherConnectionBase = 2_000_000;

    private sealed class SimWatcher(int index)
    {
        public int Index { get; } = index;
        public int Replica;
        public int Incarnation;
        // The watch request on the current connection; replies to an older one are stale.
        public long RequestId;
        public bool Open;
        // The revision the stream starts after (learnt from the first confirmation).
        public Stamp? Start;
        public Stamp LastSeen;
        public List<WatchEvent> Events { get; } = [];
        // Replicas that answered "compacted" for the current resume point.
        public HashSet<int> CompactedAt { get; } = [];
        // Every replica's history starts after where the stream is (each restarted since): it
        // can only keep asking, and what it saw so far is all that can be checked.
        public bool CompactedEverywhere;
        public int Moves;
    }

    private readonly List<SimWatcher> _watchers = [];
    // When the last reply on each watcher's connection arrives: a connection is FIFO (TCP), and a
    // stream of watch replies must arrive in the order it was sent. (Other clients take one reply
    // per request, so their replies may overtake each other.)
    private readonly Dictionary<long, long> _lastReplyArrival = new();

    private long ReplyDelay(long connectionId)
    {
        long delay = _random.Next(0, 4);
        if (connectionId < WatcherConnectionBase)
        {
            return delay;
        }
        long at = Math.Max(_now + delay, _lastReplyArrival.GetValueOrDefault(connectionId));
        _lastReplyArrival[connectionId] = at;
        return at - _now;
    }

    private void OpenWatch(SimWatcher watcher)
    {
        var candidates = _replicas.Values.Where(r => r.Up && !watcher.CompactedAt.Contains(r.Id)).Select(r => r.Id).ToList();
        if (candidates.Count == 0)
        {
            // Every replica is down, or has no history back to where the stream is: try later
            // (a restarted replica's history starts at its recovered state, so this can last).
            watcher.CompactedEverywhere |= watcher.CompactedAt.Count == _replicas.Count;
            watcher.CompactedAt.Clear();
            Schedule(200, new WatchOpen(watcher.Index));
            return;
        }
        int replica = candidates[_random.Next(candidates.Count)];
        watcher.Replica = replica;
        watcher.Incarnation = _replicas[replica].Incarnation;
        watcher.RequestId++;
        watcher.Open = true;
        var after = watcher.Start is null ? Stamp.Zero : watcher.LastSeen;
        var request = new ClientRequest
        {
            RequestId = watcher.RequestId,
            Operation = Operation.Watch,
            Watch = new WatchRequest { Prefix = "k", AfterTime = after.Time, AfterReplica = after.ReplicaId, FromNow = watcher.Start is null },
        };
        Schedule(_random.Next(0, 4), new ClientArrival(replica, watcher.Incarnation, WatcherConnectionBase + watcher.Index, request));
        Schedule(100, new WatchCheck(watcher.Index));
    }

    // As TCP would tell the client: the process at the other end is gone, so move on.
    private void CheckWatchConnection(SimWatcher watcher)
    {
        if (!watcher.Open)
        {
            return;
        }
        var r = _replicas[watcher.Replica];
        if (!r.Up || r.Incarnation != watcher.Incarnation)
        {
            watcher.Open = false;
            watcher.Moves++;
            Schedule(_random.Next(0, 50), new WatchOpen(watcher.Index));
            return;
        }
        Schedule(100, new WatchCheck(watcher.Index));
    }

    private void OnWatchReply(int index, ClientReply reply)
    {
        var watcher = _watchers[index];
        if (!watcher.Open || reply.RequestId != watcher.RequestId)
        {
            return; // from a connection the watcher already left
        }
        if (reply.Status == ReplyStatus.Error)
        {
            if (reply.Error != ErrorCode.Compacted)
            {
                Fail($"watcher {index} got {reply.Error} from replica {watcher.Replica}: {reply.ErrorMessage}");
            }
            watcher.CompactedAt.Add(watcher.Replica);
            watcher.Open = false;
            watcher.Moves++;
            Schedule(_random.Next(0, 50), new WatchOpen(watcher.Index));
            return;
        }
        if (reply.Events is not { } events)
        {
            Fail($"watcher {index} got a reply without events from replica {watcher.Replica}");
            return;
        }
        watcher.CompactedAt.Clear();
        watcher.CompactedEverywhere = false;
        if (watcher.Start is null)
        {
            watcher.Start = new Stamp(reply.RevisionTime, reply.RevisionReplica);
            watcher.LastSeen = watcher.Start.Value;
        }
        foreach (var change in events)
        {
            var revision = new Stamp(change.Time, change.Replica);
            if (revision < watcher.LastSeen || (revision == watcher.LastSeen && watcher.Events.Count > 0 && new Stamp(watcher.Events[^1].Time, watcher.Events[^1].Replica) != revision))
            {
                Fail($"watcher {index} got {change.Key} at {revision} from replica {watcher.Replica} after {watcher.LastSeen}: out of order or repeated");
            }
            watcher.Events.Add(change);
        }
        if (events.Length > 0)
        {
            watcher.LastSeen = new Stamp(events[^1].Time, events[^1].Replica);
        }
    }

    // Once the network has quieted: every watcher saw exactly the changes of the agreed order
    // after where it started, in order, each once.
    private void CheckWatchers()
    {
        if (_watchers.Count == 0)
        {
            return;
        }
        var model = new KvStore(new KvReplica.Store.Engine.MemoryEngine(), historyChanges: int.MaxValue, historyBytes: long.MaxValue);
        foreach (var write in _canonical)
        {
            model.Apply(write, out _);
        }
        foreach (var watcher in _watchers)
        {
            if (watcher.Start is not { } start)
            {
                continue; // never got going (every replica down whenever it tried)
            }
            var expected = model.ChangesAfter(start).Where(c => c.Key.StartsWith('k'))
                .Select(c => $"{c.Key}={(c.Value is null ? "(deleted)" : Encoding.UTF8.GetString(c.Value))}@{c.Revision}").ToList();
            if (watcher.CompactedAt.Count > 0 || watcher.CompactedEverywhere)
            {
                // Still looking for a replica whose history reaches back to where it is: what
                // it saw so far must still be exactly the start of the order.
                expected = [.. expected.Take(watcher.Events.Count)];
            }
            var actual = watcher.Events.Select(e => $"{e.Key}={(e.Deleted ? "(deleted)" : Encoding.UTF8.GetString(e.Value ?? []))}@{new Stamp(e.Time, e.Replica)}").ToList();
            if (!actual.SequenceEqual(expected))
            {
                int first = Enumerable.Range(0, Math.Min(actual.Count, expected.Count)).FirstOrDefault(i => actual[i] != expected[i], Math.Min(actual.Count, expected.Count));
                Fail($"watcher {watcher.Index} (from {start}, moved {watcher.Moves} times) saw {actual.Count} changes, the agreed order has {expected.Count}; first difference at #{first}: " +
                     $"saw {(first < actual.Count ? actual[first] : "nothing")}, expected {(first < expected.Count ? expected[first] : "nothing")}");
            }
        }
    }
}
