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
                var kind = pick < 0.45 ? KvOperationKind.Get : pick < 0.8 ? KvOperationKind.Put : KvOperationKind.Delete;
                byte[]? input = kind == KvOperationKind.Put ? Encoding.UTF8.GetBytes($"c{client}-{++sequence}") : null;
                long invoked = _clock.NowUs;
                try
                {
                    (KvOutcomeKind outcome, byte[]? output) = kind switch
                    {
                        KvOperationKind.Get => await GetAsync(kv, key),
                        KvOperationKind.Put => await PutAsync(kv, key, input!),
                        _ => await DeleteAsync(kv, key),
                    };
                    long returned = _clock.NowUs;
                    if (kind != KvOperationKind.Get)
                    {
                        Interlocked.Increment(ref _writesSucceeded);
                    }
                    _operations.Enqueue(new RecordedOperation(new KvOperation(client, key, kind, input, outcome, output, invoked, returned), returned, null, null));
                }
                catch (KvException e)
                {
                    // Unknown, never failed: see the remarks.
                    long gaveUp = _clock.NowUs;
                    _operations.Enqueue(new RecordedOperation(new KvOperation(client, key, kind, input, KvOutcomeKind.Unknown, null, invoked, long.MaxValue), gaveUp, e.Message, Classify(e)));
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

    private static async Task<(KvOutcomeKind, byte[]?)> GetAsync(KvClient kv, string key)
    {
        var got = await kv.GetAsync(key);
        return got.Found ? (KvOutcomeKind.Ok, got.Value.ToArray()) : (KvOutcomeKind.NotFound, null);
    }

    private static async Task<(KvOutcomeKind, byte[]?)> PutAsync(KvClient kv, string key, byte[] value)
    {
        await kv.PutAsync(key, value);
        return (KvOutcomeKind.Ok, null);
    }

    private static async Task<(KvOutcomeKind, byte[]?)> DeleteAsync(KvClient kv, string key) =>
        (await kv.DeleteAsync(key) ? KvOutcomeKind.Ok : KvOutcomeKind.NotFound, null);

    /// <summary>A short name for why an operation failed, from the last error the client saw.</summary>
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
