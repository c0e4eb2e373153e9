using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client;

/// <summary>
/// The KvReplica client library: async, pipelined (any number of calls in flight on one
/// connection, replies matched by request id), with failover to another replica.
/// </summary>
/// <remarks>
/// <para>Thread-safe: call it from any number of tasks at once.</para>
/// <para>Writes are exactly-once: each carries this client's random id and its own sequence
/// number, and a write re-sent after a connection failure or failover keeps both, so the
/// cluster applies it once (docs/protocol.md, "Exactly-once writes").</para>
/// <para>Every call completes within <see cref="KvClientOptions.RequestTimeout"/>: with the
/// result, a <see cref="KvException"/> from the cluster, or a <see cref="KvTimeoutException"/>.</para>
/// </remarks>
public sealed class KvClient : IAsyncDisposable
{
    private readonly ClusterConfig _config;
    private readonly KvClientOptions _options;
    private readonly TimeSpan _requestTimeout;
    private readonly ConcurrentDictionary<long, TaskCompletionSource<ClientReply>> _waiting = new();
    private readonly SemaphoreSlim _connectGate = new(1, 1);
    private readonly ulong _clientId = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)) | 1;
    private readonly SortedSet<long> _unansweredWrites = [];
    private readonly IReadOnlyList<ReplicaAddress> _order;
    private ReplicaConnection? _connection;
    private int _nextIndex;
    private long _nextRequestId;
    private long _nextSequence;
    private bool _disposed;

    private KvClient(ClusterConfig config, KvClientOptions options)
    {
        _config = config;
        _options = options;
        _requestTimeout = options.RequestTimeout ?? config.ClientRequestTimeout;
        // Preferred replica first, then the others in id order: failover is predictable.
        int start = options.PreferredReplica is int preferred ? Math.Max(0, config.Replicas.ToList().FindIndex(r => r.Id == preferred)) : 0;
        _order = [.. config.Replicas.Skip(start), .. config.Replicas.Take(start)];
    }

    /// <summary>The replica currently connected, if any.</summary>
    public ReplicaAddress? ConnectedReplica => _connection is { IsOpen: true } c ? c.Replica : null;

    /// <summary>
    /// Connects to the preferred replica (or the first that answers). Throws
    /// <see cref="KvTimeoutException"/> naming every replica's failure if none answers in time.
    /// </summary>
    public static async Task<KvClient> ConnectAsync(ClusterConfig config, KvClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new KvClientOptions();
        if (options.PreferredReplica is int id && config.Find(id) is null)
        {
            throw new ArgumentException($"replica {id} is not in the cluster (replicas: {string.Join(", ", config.Replicas.Select(r => r.Id))})", nameof(options));
        }
        var client = new KvClient(config, options);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(client._requestTimeout);
        await client.EnsureConnectedAsync(deadline.Token, cancellationToken).ConfigureAwait(false);
        return client;
    }

    /// <summary>Sets <paramref name="key"/> to <paramref name="value"/>.</summary>
    public async Task PutAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken = default) =>
        await WriteAsync(Operation.Put, key, value.ToArray(), cancellationToken).ConfigureAwait(false);

    /// <summary>Sets <paramref name="key"/> to the UTF-8 bytes of <paramref name="value"/>.</summary>
    public Task PutAsync(string key, string value, CancellationToken cancellationToken = default) =>
        PutAsync(key, Encoding.UTF8.GetBytes(value), cancellationToken);

    /// <summary>Removes <paramref name="key"/>; returns whether it existed.</summary>
    public async Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default) =>
        (await WriteAsync(Operation.Delete, key, null, cancellationToken).ConfigureAwait(false)).Status == ReplyStatus.Ok;

    /// <summary>Reads <paramref name="key"/> (from a majority, unless the options say local).</summary>
    public async Task<GetResult> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        var request = new ClientRequest { Operation = Operation.Get, Key = key, ReadMode = _options.ReadMode };
        Validate(request);
        var reply = await CallAsync(request, cancellationToken).ConfigureAwait(false);
        return new GetResult(reply.Status == ReplyStatus.Ok, reply.Value, reply.VersionTime, reply.VersionReplica);
    }

    private async Task<ClientReply> WriteAsync(Operation operation, string key, byte[]? value, CancellationToken cancellationToken)
    {
        long sequence;
        long ackedBelow;
        lock (_unansweredWrites)
        {
            sequence = ++_nextSequence;
            _unansweredWrites.Add(sequence);
            ackedBelow = _unansweredWrites.Min;
        }
        try
        {
            var request = new ClientRequest
            {
                Operation = operation, Key = key, Value = value,
                ClientId = _clientId, Sequence = sequence, AckedBelow = ackedBelow,
            };
            Validate(request);
            return await CallAsync(request, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // Only a final answer may release the sequence: after a timeout the write may still
            // be applied, and a later retry by the application is a new write anyway.
            lock (_unansweredWrites)
            {
                _unansweredWrites.Remove(sequence);
            }
        }
    }

    private void Validate(ClientRequest request)
    {
        if (request.Sequence == 0 && request.Operation != Operation.Get)
        {
            throw new InvalidOperationException("writes carry a sequence number");
        }
        string? problem = RequestValidation.Check(request.Operation == Operation.Get ? new ClientRequest { Operation = Operation.Get, Key = request.Key } : request, _config.MaxValueBytes);
        if (problem is not null)
        {
            throw new ArgumentException(problem);
        }
    }

    // Sends the request and waits for its reply, re-sending it (same ids) on another connection
    // if the current one fails, until the request timeout.
    private async Task<ClientReply> CallAsync(ClientRequest request, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        request.RequestId = Interlocked.Increment(ref _nextRequestId);
        var waiter = new TaskCompletionSource<ClientReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiting[request.RequestId] = waiter;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_requestTimeout);
        string lastProblem = "no reply";
        try
        {
            while (true)
            {
                var connection = await EnsureConnectedAsync(deadline.Token, cancellationToken).ConfigureAwait(false);
                connection.Send(request);
                var finished = await Task.WhenAny(waiter.Task, connection.Closed).WaitAsync(deadline.Token).ConfigureAwait(false);
                if (finished == waiter.Task)
                {
                    var reply = await waiter.Task.ConfigureAwait(false);
                    if (reply.Status != ReplyStatus.Error)
                    {
                        return reply;
                    }
                    if (reply.Error == ErrorCode.ShuttingDown)
                    {
                        // That replica is stopping: move on, keeping the request's ids.
                        lastProblem = reply.ErrorMessage ?? "replica shutting down";
                        connection.Abort(lastProblem);
                        waiter = new TaskCompletionSource<ClientReply>(TaskCreationOptions.RunContinuationsAsynchronously);
                        _waiting[request.RequestId] = waiter;
                        continue;
                    }
                    throw new KvException(reply.Error, reply.ErrorMessage ?? reply.Error.ToString());
                }
                lastProblem = await connection.Closed.ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            string what = request.Operation == Operation.Get ? "" : "; the write's outcome is unknown";
            throw new KvTimeoutException($"no reply within {_requestTimeout.TotalMilliseconds:0} ms ({lastProblem}){what}");
        }
        finally
        {
            _waiting.TryRemove(request.RequestId, out _);
        }
    }

    private void OnReply(ClientReply reply)
    {
        if (_waiting.TryGetValue(reply.RequestId, out var waiter))
        {
            waiter.TrySetResult(reply);
        }
    }

    private async Task<ReplicaConnection> EnsureConnectedAsync(CancellationToken deadline, CancellationToken caller)
    {
        var current = _connection;
        if (current is { IsOpen: true })
        {
            return current;
        }
        await _connectGate.WaitAsync(deadline).ConfigureAwait(false);
        try
        {
            if (_connection is { IsOpen: true } fresh)
            {
                return fresh;
            }
            var failures = new Dictionary<int, string>();
            var backoff = TimeSpan.FromMilliseconds(50);
            while (true)
            {
                for (int attempt = 0; attempt < _order.Count; attempt++)
                {
                    var replica = _order[_nextIndex % _order.Count];
                    try
                    {
                        var connection = await ReplicaConnection.OpenAsync(replica, _config, _options.ConnectTimeout, OnReply, deadline).ConfigureAwait(false);
                        _connection = connection;
                        return connection;
                    }
                    catch (IOException e)
                    {
                        failures[replica.Id] = e.Message;
                        // Next call starts from the next replica: failover.
                        _nextIndex++;
                    }
                    catch (OperationCanceledException) when (!caller.IsCancellationRequested)
                    {
                        throw new KvTimeoutException($"no replica reachable: {string.Join("; ", failures.Values.DefaultIfEmpty("connect timed out"))}");
                    }
                }
                try
                {
                    await Task.Delay(backoff, deadline).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!caller.IsCancellationRequested)
                {
                    throw new KvTimeoutException($"no replica reachable: {string.Join("; ", failures.Values)}");
                }
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 1000));
            }
        }
        finally
        {
            _connectGate.Release();
        }
    }

    public ValueTask DisposeAsync()
    {
        _disposed = true;
        _connection?.Abort("client disposed");
        foreach (var waiter in _waiting.Values)
        {
            waiter.TrySetException(new ObjectDisposedException(nameof(KvClient)));
        }
        return ValueTask.CompletedTask;
    }
}
