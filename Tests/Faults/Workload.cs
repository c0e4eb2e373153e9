using KvReplica.Transport;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using KvReplica.Client;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;
using KvReplica.Tests.Linearizability;

namespace KvReplica.Tests.Faults;

/// <summary>One operation as the workload saw it: the checker's record, and for a failure when the client gave up and why.</summary>
internal sealed record RecordedOperation(KvOperation Operation, long GaveUpAtUs, string? Error, string? ErrorKind);

/// <summary>
/// Clients in closed loops, each its own <see cref="KvClient"/> (spread over the replicas as
/// preferred replica, failing over as the library does), running a mix of GET (45%), PUT (35%)
/// and DELETE (20%) over a few keys at a time, and recording every operation with its
/// invocation and completion time on the run clock.
/// </summary>
/// <remarks>
/// <para>Keys rotate: every <see cref="WorkloadShape.KeyEpoch"/> all clients move to a fresh
/// set of <see cref="WorkloadShape.KeysPerEpoch"/> keys. Within an epoch the clients contend on
/// few keys, so the checker sees real concurrency; and each key's history stays short, above
/// all its unknown writes, which the checker must try both applied and not applied from their
/// invocation to the end of the key's history.</para>
/// <para>What counts as failed: only an outcome the cluster proves did not happen. Through
/// <see cref="KvClient"/>, no error does. The client re-sends an unanswered request to the next
/// replica after a lost connection and retries NoMajority and Busy answers until its deadline,
/// so the error it finally throws describes the last attempt only, while an earlier attempt may
/// have been ordered (sent to a replica that then died, or answered "write not delivered
/// within ...; outcome unknown", which shares NoMajority with the refusal "no majority: k of N
/// replicas reachable" that comes before any ordering). So every failed write is recorded as
/// unknown: it may take effect at any point after its invocation, or never. A failed GET
/// changes nothing and constrains nothing; it is recorded as unknown too and the checker skips
/// it. The error's kind is kept for the summary.</para>
/// </remarks>
internal sealed class Workload
{
    private readonly ClusterConfig _config;
    private readonly RunClock _clock;
    private readonly WorkloadShape _shape;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<RecordedOperation> _operations = new();
    private readonly Task[] _clients;
    private readonly KvClient?[] _connections;
    private long _writesSucceeded;

    private readonly ClientCredentials _credentials;

    private Workload(ClusterConfig config, ClientCredentials credentials, RunClock clock, WorkloadShape shape, int seed)
    {
        _config = config;
        _credentials = credentials;
        _clock = clock;
        _shape = shape;
        _connections = new KvClient?[shape.Clients];
        _clients = [.. Enumerable.Range(1, shape.Clients).Select(c => Task.Run(() => RunClientAsync(c, new Random(seed + c))))];
    }

    /// <summary>Starts the clients at once.</summary>
    public static Workload Start(ClusterConfig config, ClientCredentials credentials, RunClock clock, WorkloadShape shape, int seed) => new(config, credentials, clock, shape, seed);

    /// <summary>Writes (PUT, DELETE) acknowledged so far.</summary>
    public long WritesSucceeded => Interlocked.Read(ref _writesSucceeded);

    /// <summary>Waits until <paramref name="count"/> more writes than now have been acknowledged; throws <see cref="FaultRunFailure"/> at the deadline.</summary>
    public async Task WaitForMoreWritesAsync(long count, TimeSpan deadline, string when, Func<string> evidence)
    {
        long target = WritesSucceeded + count;
        var clock = Stopwatch.StartNew();
        while (WritesSucceeded < target)
        {
            if (clock.Elapsed > deadline)
            {
                throw new FaultRunFailure($"only {WritesSucceeded - target + count} of {count} writes acknowledged within {deadline.TotalSeconds:0} s {when}\n{evidence()}");
            }
            if (_clients.FirstOrDefault(c => c.IsFaulted) is { } broken)
            {
                await broken;
            }
            await Task.Delay(50);
        }
    }

    /// <summary>Which replica each client is connected to right now ("client 1 -> 2, ..."; "-" between connections).</summary>
    public string DescribeConnections() => string.Join(", ", _connections.Select((kv, i) =>
        $"client {i + 1} -> {(kv?.ConnectedReplica is { } replica ? replica.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) : "-")}"));

    /// <summary>
    /// Lets each client finish the operation it has in flight (each is bounded by the client's
    /// request timeout) and returns every operation, ordered by invocation.
    /// </summary>
    public async Task<IReadOnlyList<RecordedOperation>> StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_clients);
        return [.. _operations.OrderBy(o => o.Operation.InvokedAt)];
    }

    private async Task RunClientAsync(int client, Random random)
    {
        var options = new KvClientOptions { PreferredReplicaId = _config.Replicas[(client - 1) % _config.Replicas.Count].Id, Credentials = _credentials };
        KvClient? kv = null;
        long sequence = 0;
        var seen = new Dictionary<string, (KvVersion Version, byte[] Value)>(StringComparer.Ordinal);
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                if (kv is null)
                {
                    try
                    {
                        kv = await KvClient.ConnectAsync(_config, options);
                        Volatile.Write(ref _connections[client - 1], kv);
                    }
                    catch (KvUnavailableException)
                    {
                        // Nothing was invoked; try again shortly.
                        await Task.Delay(100);
                        continue;
                    }
                }
                long epoch = _clock.NowUs / (long)_shape.KeyEpoch.TotalMicroseconds;
                string key = $"e{epoch}-k{random.Next(_shape.KeysPerEpoch)}";
                double pick = random.NextDouble();
                var kind = pick < 0.35 ? KvOperationKind.Get : pick < 0.6 ? KvOperationKind.Put : pick < 0.7 ? KvOperationKind.Delete
                    : pick < 0.8 ? KvOperationKind.Cas : pick < 0.88 ? KvOperationKind.Txn : pick < 0.95 ? KvOperationKind.List : KvOperationKind.Update;
                byte[] value = Encoding.UTF8.GetBytes($"c{client}-{++sequence}");
                long invoked = _clock.NowUs;
                var operation = new PlannedOperation(client, key, kind, value, $"e{epoch}-k{random.Next(_shape.KeysPerEpoch)}", $"e{epoch}-", random.Next(3));
                try
                {
                    var done = await RunAsync(kv, operation, seen, invoked);
                    long returned = done.ReturnedAt;
                    if (IsWrite(kind))
                    {
                        Interlocked.Increment(ref _writesSucceeded);
                    }
                    _operations.Enqueue(new RecordedOperation(done, returned, null, null));
                }
                catch (KvException e)
                {
                    // Unknown, never failed: see the remarks.
                    long gaveUp = _clock.NowUs;
                    _operations.Enqueue(new RecordedOperation(operation.Unknown(invoked), gaveUp, e.Message, Classify(e)));
                }
            }
        }
        finally
        {
            if (kv is not null)
            {
                await kv.DisposeAsync();
            }
        }
    }

    /// <summary>Operations that change state (what counts as a write in the figures).</summary>
    public static bool IsWrite(KvOperationKind kind) =>
        kind is KvOperationKind.Put or KvOperationKind.Delete or KvOperationKind.Update or KvOperationKind.Cas or KvOperationKind.Txn;

    // One operation as planned before it runs: a key, a unique value, a second key and the epoch's
    // prefix for TXN and LIST, and a choice of compare for TXN.
    private sealed record PlannedOperation(int Client, string Key, KvOperationKind Kind, byte[] Value, string OtherKey, string Prefix, int Choice)
    {
        public byte[]? Expected { get; set; }
        public Linearizability.KvTxn? Txn { get; set; }

        // What the checker is told when no definite answer came (reads with it constrain nothing).
        public KvOperation Unknown(long invoked) => Kind switch
        {
            KvOperationKind.Get => new KvOperation(Client, Key, Kind, null, KvOutcomeKind.Unknown, null, invoked, long.MaxValue),
            KvOperationKind.Put => new KvOperation(Client, Key, Kind, Value, KvOutcomeKind.Unknown, null, invoked, long.MaxValue),
            KvOperationKind.Delete => new KvOperation(Client, Key, Kind, null, KvOutcomeKind.Unknown, null, invoked, long.MaxValue),
            KvOperationKind.Update => KvOperation.Update(Client, Key, Value, KvOutcomeKind.Unknown, invoked, long.MaxValue),
            KvOperationKind.Cas => KvOperation.CompareAndSet(Client, Key, Expected, Value, KvOutcomeKind.Unknown, invoked, long.MaxValue),
            KvOperationKind.Txn => KvOperation.Transaction(Client, Txn!, KvOutcomeKind.Unknown, invoked, long.MaxValue),
            _ => KvOperation.ListPrefix(Client, Prefix, [], KvOutcomeKind.Unknown, invoked, long.MaxValue),
        };
    }

    // Runs one operation and returns it as the checker records it. What a client last saw of each
    // key (version and value) feeds its compare-and-set and transaction compares; values are unique
    // per write, so the checker models a compare on a version as a compare on the value it carried.
    private async Task<KvOperation> RunAsync(KvClient kv, PlannedOperation op, Dictionary<string, (KvVersion Version, byte[] Value)> seen, long invoked)
    {
        switch (op.Kind)
        {
            case KvOperationKind.Get:
            {
                var got = await kv.GetAsync(op.Key);
                if (got.Found)
                {
                    seen[op.Key] = (got.Version, got.Value.ToArray());
                }
                return new KvOperation(op.Client, op.Key, op.Kind, null, got.Found ? KvOutcomeKind.Ok : KvOutcomeKind.NotFound, got.Found ? got.Value.ToArray() : null, invoked, _clock.NowUs);
            }
            case KvOperationKind.Put:
            {
                var version = await kv.PutAsync(op.Key, op.Value);
                Saw(seen, op.Key, version, op.Value);
                return new KvOperation(op.Client, op.Key, op.Kind, op.Value, KvOutcomeKind.Ok, null, invoked, _clock.NowUs);
            }
            case KvOperationKind.Delete:
            {
                bool existed = await kv.DeleteAsync(op.Key);
                return new KvOperation(op.Client, op.Key, op.Kind, null, existed ? KvOutcomeKind.Ok : KvOutcomeKind.NotFound, null, invoked, _clock.NowUs);
            }
            case KvOperationKind.Update:
            {
                var updated = await kv.UpdateAsync(op.Key, op.Value);
                if (updated.Written)
                {
                    Saw(seen, op.Key, updated.Version, op.Value);
                }
                return KvOperation.Update(op.Client, op.Key, op.Value, updated.Written ? KvOutcomeKind.Ok : KvOutcomeKind.NotFound, invoked, _clock.NowUs);
            }
            case KvOperationKind.Cas:
            {
                var expected = seen.TryGetValue(op.Key, out var last) ? last : (KvVersion.None, (byte[]?)null);
                op.Expected = expected.Item2;
                var swapped = await kv.CompareAndSetAsync(op.Key, expected.Item1, op.Value);
                if (swapped.Written)
                {
                    Saw(seen, op.Key, swapped.Version, op.Value);
                }
                return KvOperation.CompareAndSet(op.Client, op.Key, op.Expected, op.Value, swapped.Written ? KvOutcomeKind.Ok : KvOutcomeKind.ConditionFailed, invoked, _clock.NowUs);
            }
            case KvOperationKind.Txn:
            {
                var txn = new KvReplica.Client.KvTxn();
                KvCompare compare;
                if (op.Choice == 0 && seen.TryGetValue(op.Key, out var last))
                {
                    txn.IfValue(op.Key, last.Value);
                    compare = new KvCompare(op.Key, KvCompareKind.ValueEquals, last.Value);
                }
                else if (op.Choice == 1)
                {
                    txn.IfAbsent(op.Key);
                    compare = new KvCompare(op.Key, KvCompareKind.Absent);
                }
                else
                {
                    txn.IfExists(op.Key);
                    compare = new KvCompare(op.Key, KvCompareKind.Exists);
                }
                txn.ThenPut(op.Key, op.Value);
                var then = new List<KvWrite> { new(op.Key, op.Value) };
                if (op.OtherKey != op.Key)
                {
                    txn.ThenPut(op.OtherKey, op.Value);
                    then.Add(new KvWrite(op.OtherKey, op.Value));
                }
                txn.ElsePut(op.OtherKey, op.Value);
                op.Txn = new Linearizability.KvTxn([compare], then, [new KvWrite(op.OtherKey, op.Value)]);
                var result = await kv.TxnAsync(txn);
                return KvOperation.Transaction(op.Client, op.Txn, result.Succeeded ? KvOutcomeKind.Then : KvOutcomeKind.Else, invoked, _clock.NowUs);
            }
            default:
            {
                // Every key of the epoch, two to a page, all pages at the first page's revision.
                var entries = new List<KvRead>();
                await foreach (var entry in kv.ScanAsync(op.Prefix, pageSize: 2))
                {
                    entries.Add(new KvRead(entry.Key, entry.Value.ToArray()));
                }
                return KvOperation.ListPrefix(op.Client, op.Prefix, entries, KvOutcomeKind.Ok, invoked, _clock.NowUs);
            }
        }
    }

    // (A write the cluster recognised as a retry reports no version: nothing learnt.)
    private static void Saw(Dictionary<string, (KvVersion Version, byte[] Value)> seen, string key, KvVersion version, byte[] value)
    {
        if (version != KvVersion.None)
        {
            seen[key] = (version, value);
        }
    }

    public static string Classify(KvException e) => e switch
    {
        KvTimeoutException => "client timeout (no reply)",
        KvUnavailableException => "no replica reachable",
        { Error: ErrorCode.NoMajority } when e.Message.Contains("outcome unknown", StringComparison.Ordinal) => "write timeout at the replica (outcome unknown)",
        { Error: ErrorCode.NoMajority } when e.Message.Contains("removed from the view", StringComparison.Ordinal) => "refused: replica removed from the view",
        { Error: ErrorCode.NoMajority } when e.Message.Contains("no majority", StringComparison.Ordinal) => "refused: no majority",
        { Error: ErrorCode.NoMajority } => "NoMajority (other)",
        { Error: ErrorCode.Busy } => "refused: busy",
        _ => e.Error.ToString(),
    };
}

/// <summary>How many clients, and how many keys at a time for how long.</summary>
internal sealed record WorkloadShape(int Clients, int KeysPerEpoch, TimeSpan KeyEpoch);
