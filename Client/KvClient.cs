using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using KvReplica.Client.Transport;
using KvReplica.Protocol.Auth;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;
using KvReplica.Transport;

namespace KvReplica.Client;

/// <summary>
/// A client of a KvReplica cluster over one pipelined TCP connection to one replica at a time.
/// Thread-safe: any number of operations may be in flight at once; replies are matched by request id.
/// </summary>
/// <remarks>
/// <para>Failover: when the connection fails, cannot be established, the replica stays silent on
/// a request for twice the suspicion timeout (it is paused or cut off), or the replica answers
/// ShuttingDown or NoMajority, the client moves on to the next replica (preferred replica first,
/// then by id, wrapping around) and re-sends every unanswered request there with the same request
/// id, client id and sequence number, so the cluster applies each write once.</para>
/// <para>Deadlines: every operation completes within its request timeout: with its result, a
/// <see cref="KvException"/>, or an <see cref="OperationCanceledException"/> when the caller's token
/// fires first. Busy answers are retried after a growing pause until the deadline, after which the
/// last error is reported.</para>
/// <para>Exactly-once writes: the client picks a random 64-bit <see cref="ClientId"/> once and numbers
/// its writes 1, 2, 3… Every write carries the lowest sequence number still awaiting its outcome
/// (AckedBelow), so the cluster can forget deduplication state for older writes. A write the client
/// gave up on (timeout, cancellation) after sending it is never retried, but it keeps holding
/// AckedBelow down for a grace period (twice the longer of the request and write timeouts), because
/// a copy sent before a failover may still be on its way through the cluster and must still be
/// recognised as a duplicate.</para>
/// </remarks>
public sealed class KvClient : IAsyncDisposable
{
    private static readonly TimeSpan MaxRetryPause = TimeSpan.FromSeconds(1);

    private readonly ClusterConfig _config;
    private readonly DialSettings _dial;
    private readonly ReadMode _readMode;
    private readonly TimeSpan _requestTimeout;
    // How long one replica may stay silent on a request before the client tries the next one.
    private readonly TimeSpan _silentReplicaTimeout;
    private readonly TimeSpan _connectAttemptTimeout;
    // Failover order: preferred replica first, then the others by id.
    private readonly ReplicaAddress[] _candidates;
    private readonly ConcurrentDictionary<long, TaskCompletionSource<ClientReply>> _awaitingReply = new();
    private readonly CancellationTokenSource _disposed = new();
    private readonly Lock _gate = new();
    // Guarded by _gate.
    private readonly SortedSet<long> _unfinishedWrites = [];
    private long _nextSequence = 1;
    private ReplicaConnection? _connection;
    private Task<ReplicaConnection>? _connectRound;
    private int _nextCandidate;
    // Not guarded: Interlocked only.
    private long _lastRequestId;
    private readonly TimeSpan _abandonedWriteGrace;

    private KvClient(ClusterConfig config, KvClientOptions options)
    {
        if (config.Replicas.Count == 0)
        {
            throw new ArgumentException("the cluster configuration lists no replicas", nameof(config));
        }
        _config = config;
        _dial = DialSettings.ForClient(config, options.Credentials);
        _readMode = options.ReadMode;
        _requestTimeout = options.RequestTimeout ?? config.ClientRequestTimeout;
        if (_requestTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "RequestTimeout must be positive");
        }
        // A replica silent for twice the suspicion timeout is paused or cut off: the others have
        // removed it by then and can take the request (a retried write is applied once).
        _silentReplicaTimeout = TimeSpan.FromTicks(Math.Min(_requestTimeout.Ticks / 2, 2 * config.SuspicionTimeout.Ticks));
        _connectAttemptTimeout = options.ConnectAttemptTimeout
            ?? TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(2).Ticks, _requestTimeout.Ticks / 2));
        if (_connectAttemptTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "ConnectAttemptTimeout must be positive");
        }
        var byId = config.Replicas.OrderBy(r => r.Id).ToList();
        if (options.PreferredReplicaId is int preferredId)
        {
            var preferred = byId.FirstOrDefault(r => r.Id == preferredId)
                ?? throw new ArgumentException($"replica {preferredId} is not in the cluster configuration (ids: {string.Join(", ", byId.Select(r => r.Id))})", nameof(options));
            byId.Remove(preferred);
            byId.Insert(0, preferred);
        }
        _candidates = [.. byId];
        _abandonedWriteGrace = 2 * (config.WriteTimeout > _requestTimeout ? config.WriteTimeout : _requestTimeout);
        Span<byte> id = stackalloc byte[8];
        RandomNumberGenerator.Fill(id);
        ClientId = BitConverter.ToUInt64(id);
    }

    /// <summary>The random id that makes this client's writes idempotent; fixed for the client's lifetime.</summary>
    public ulong ClientId { get; }

    /// <summary>The replica the client is connected to right now, or null between connections.</summary>
    public ReplicaAddress? ConnectedReplica
    {
        get
        {
            lock (_gate)
            {
                return _connection is { IsOpen: true } connection ? connection.Address : null;
            }
        }
    }

    /// <summary>The deadline each operation gets.</summary>
    public TimeSpan RequestTimeout => _requestTimeout;

    /// <summary>
    /// Creates a client and connects it to the first reachable replica in failover order, retrying
    /// until the request timeout. Throws <see cref="KvUnavailableException"/> if no replica accepted
    /// in time (or at once, if every replica refused the handshake; the message carries their
    /// reasons, e.g. "authentication failed"), <see cref="ArgumentException"/> for options that do
    /// not fit the configuration, <see cref="ConfigException"/> when the cluster's TLS CA file
    /// cannot be read, and <see cref="OperationCanceledException"/> when <paramref name="ct"/> fires.
    /// A cluster with <c>tls</c> needs <see cref="KvClientOptions.Credentials"/>; without them this
    /// throws <see cref="KvUnavailableException"/> at once, before dialling.
    /// </summary>
    public static async Task<KvClient> ConnectAsync(ClusterConfig config, KvClientOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        options ??= new KvClientOptions();
        if (config.Tls is not null && options.Credentials is null)
        {
            // Every replica would refuse: say so once, before dialling any.
            throw new KvUnavailableException("authentication required: this cluster uses TLS; give a user and password (KvClientOptions.Credentials; client --user NAME with --password-file or KVREPLICA_PASSWORD)", everyReplicaRejected: true);
        }
        var client = new KvClient(config, options);
        try
        {
            await client.ConnectWithinDeadlineAsync(ct).ConfigureAwait(false);
            return client;
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Stores <paramref name="value"/> under <paramref name="key"/>. Completes once the cluster acknowledged the write as durable.</summary>
    /// <exception cref="KvInvalidRequestException">The key or value breaks a data-model rule; nothing was sent.</exception>
    /// <exception cref="KvException">A replica refused the write, or the timeout passed (<see cref="KvTimeoutException"/>, <see cref="KvUnavailableException"/>).</exception>
    public async Task PutAsync(string key, ReadOnlyMemory<byte> value, CancellationToken ct = default)
    {
        await ExecuteAsync(Operation.Put, key, value.ToArray(), ct).ConfigureAwait(false);
    }

    /// <summary>Stores the UTF-8 encoding of <paramref name="value"/> under <paramref name="key"/>; see <see cref="PutAsync(string, ReadOnlyMemory{byte}, CancellationToken)"/>.</summary>
    public Task PutAsync(string key, string value, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(value);
        return PutAsync(key, Encoding.UTF8.GetBytes(value), ct);
    }

    /// <summary>Reads <paramref name="key"/> with the client's <see cref="ReadMode"/>.</summary>
    /// <exception cref="KvInvalidRequestException">The key breaks a data-model rule; nothing was sent.</exception>
    /// <exception cref="KvException">A replica answered with an error, or the timeout passed.</exception>
    public async Task<KvGetResult> GetAsync(string key, CancellationToken ct = default)
    {
        var reply = await ExecuteAsync(Operation.Get, key, null, ct).ConfigureAwait(false);
        return reply.Status == ReplyStatus.Ok
            ? new KvGetResult(true, reply.Value ?? [], new KvVersion(reply.VersionTime, reply.VersionReplica))
            : new KvGetResult(false, [], KvVersion.None);
    }

    /// <summary>Deletes <paramref name="key"/>. Returns true if it existed, false if there was nothing to delete.</summary>
    /// <exception cref="KvInvalidRequestException">The key breaks a data-model rule; nothing was sent.</exception>
    /// <exception cref="KvException">A replica refused the write, or the timeout passed.</exception>
    public async Task<bool> DeleteAsync(string key, CancellationToken ct = default)
    {
        var reply = await ExecuteAsync(Operation.Delete, key, null, ct).ConfigureAwait(false);
        return reply.Status == ReplyStatus.Ok;
    }

    /// <summary>
    /// Admin only: creates or replaces user <paramref name="name"/> with <paramref name="password"/>
    /// and <paramref name="roles"/>. The password stays here: the cluster gets its SCRAM-SHA-256
    /// verifier (a random salt, <see cref="Scram.DefaultIterations"/> iterations). Ordered like a write.
    /// </summary>
    /// <exception cref="KvException">Refused (<see cref="ErrorCode.PermissionDenied"/> for a non-admin), or the timeout passed.</exception>
    public async Task PutUserAsync(string name, string password, IReadOnlyList<string> roles, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(password);
        var record = new UserRecord { Credential = Scram.CreateCredential(password, RandomNumberGenerator.GetBytes(16)).ToString(), Roles = [.. roles] };
        await ExecuteAsync(Operation.UserPut, name, MessagePack.MessagePackSerializer.Serialize(record), ct).ConfigureAwait(false);
    }

    /// <summary>Admin only: deletes user <paramref name="name"/>; false if there was none. Its open connections lose every right at once.</summary>
    public async Task<bool> DeleteUserAsync(string name, CancellationToken ct = default) =>
        (await ExecuteAsync(Operation.UserDelete, name, null, ct).ConfigureAwait(false)).Status == ReplyStatus.Ok;

    /// <summary>
    /// Admin only: creates or replaces role <paramref name="name"/>: read or read-write on key
    /// prefixes (<see cref="RoleGrant"/>; prefix "" is every key), and admin rights when
    /// <paramref name="admin"/>. The role <c>admin</c> is built in and cannot be replaced.
    /// </summary>
    public async Task PutRoleAsync(string name, IReadOnlyList<RoleGrant> grants, bool admin = false, CancellationToken ct = default)
    {
        var record = new RoleRecord { Admin = admin, Grants = [.. grants] };
        await ExecuteAsync(Operation.RolePut, name, MessagePack.MessagePackSerializer.Serialize(record), ct).ConfigureAwait(false);
    }

    /// <summary>Admin only: deletes role <paramref name="name"/>; false if there was none. Users holding it lose its rights at once.</summary>
    public async Task<bool> DeleteRoleAsync(string name, CancellationToken ct = default) =>
        (await ExecuteAsync(Operation.RoleDelete, name, null, ct).ConfigureAwait(false)).Status == ReplyStatus.Ok;

    /// <summary>Closes the connection. Operations still in flight fail with <see cref="ObjectDisposedException"/>.</summary>
    public ValueTask DisposeAsync()
    {
        ReplicaConnection? connection;
        lock (_gate)
        {
            if (_disposed.IsCancellationRequested)
            {
                return ValueTask.CompletedTask;
            }
            _disposed.Cancel();
            connection = _connection;
            _connection = null;
        }
        connection?.Close("the client was disposed");
        return ValueTask.CompletedTask;
    }

    private async Task ConnectWithinDeadlineAsync(CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct, _disposed.Token);
        deadline.CancelAfter(_requestTimeout);
        NoReplicaReachableException? lastFailure = null;
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                await GetConnectionAsync(deadline.Token).ConfigureAwait(false);
                return;
            }
            catch (NoReplicaReachableException e)
            {
                if (e.EveryReplicaRejected)
                {
                    throw new KvUnavailableException(e.Message, everyReplicaRejected: true);
                }
                lastFailure = e;
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new KvUnavailableException(lastFailure?.Message
                    ?? $"no replica accepted a connection within {_requestTimeout.TotalMilliseconds:0} ms", everyReplicaRejected: false);
            }
            try
            {
                await Task.Delay(RetryPause(attempt), deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new KvUnavailableException(lastFailure.Message, everyReplicaRejected: false);
            }
        }
    }

    private async Task<ClientReply> ExecuteAsync(Operation operation, string key, byte[]? value, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
        bool isWrite = RequestValidation.IsWrite(operation);
        // Validate with a stand-in sequence number first, so a rejected request does not use one up.
        string? invalid = RequestValidation.Check(new ClientRequest
        {
            Operation = operation,
            Key = key ?? "",
            Value = value,
            Sequence = isWrite ? 1 : 0,
        }, _config.MaxValueBytes);
        if (invalid is not null)
        {
            throw new KvInvalidRequestException(invalid, invalid.StartsWith("value", StringComparison.Ordinal) ? "value" : "key");
        }

        long sequence = 0;
        if (isWrite)
        {
            lock (_gate)
            {
                sequence = _nextSequence++;
                _unfinishedWrites.Add(sequence);
            }
        }
        long requestId = Interlocked.Increment(ref _lastRequestId);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct, _disposed.Token);
        deadline.CancelAfter(_requestTimeout);
        // What stood in the way last, so a timeout says more than "timed out".
        string? lastProblem = null;
        ClientReply? lastErrorReply = null;
        int pauses = 0;
        int connectionsLost = 0;
        // Whether the cluster may hold a copy of this write whose outcome we never learnt.
        bool outcomeUnknown = false;
        try
        {
            while (true)
            {
                ReplicaConnection connection;
                try
                {
                    connection = await GetConnectionAsync(deadline.Token).ConfigureAwait(false);
                }
                catch (NoReplicaReachableException e)
                {
                    if (e.EveryReplicaRejected)
                    {
                        throw new KvUnavailableException(e.Message, everyReplicaRejected: true);
                    }
                    lastProblem = e.Message;
                    lastErrorReply = null;
                    await Task.Delay(RetryPause(pauses++), deadline.Token).ConfigureAwait(false);
                    continue;
                }

                var replyArrived = new TaskCompletionSource<ClientReply>(TaskCreationOptions.RunContinuationsAsynchronously);
                _awaitingReply[requestId] = replyArrived;
                var request = new ClientRequest
                {
                    RequestId = requestId,
                    Operation = operation,
                    Key = key!,
                    Value = value,
                    ClientId = isWrite ? ClientId : 0,
                    Sequence = sequence,
                    AckedBelow = isWrite ? AckedBelow() : 0,
                    ReadMode = _readMode,
                };
                if (!connection.TrySend(request))
                {
                    continue;
                }
                outcomeUnknown = true;
                Task first;
                try
                {
                    // (With one replica there is nowhere else to go: wait for it.)
                    var either = Task.WhenAny(replyArrived.Task, connection.Closed);
                    first = await (_candidates.Length > 1 ? either.WaitAsync(_silentReplicaTimeout, deadline.Token) : either.WaitAsync(deadline.Token)).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    // Paused (SIGSTOP, a long GC) or cut off while its socket stays open: move
                    // this and every other request on the connection to the next replica.
                    lastProblem = $"{connection.Address} did not answer within {_silentReplicaTimeout.TotalMilliseconds:0} ms";
                    lastErrorReply = null;
                    connection.Close(lastProblem);
                    continue;
                }
                if (first != replyArrived.Task)
                {
                    lastProblem = $"lost the connection to {connection.Address}: {connection.CloseReason}";
                    lastErrorReply = null;
                    // Fail over at once the first time; a replica that keeps accepting and then
                    // dropping the request must not turn this into a busy loop.
                    if (++connectionsLost > 1)
                    {
                        await Task.Delay(RetryPause(pauses++), deadline.Token).ConfigureAwait(false);
                    }
                    continue;
                }
                var reply = replyArrived.Task.Result;
                if (reply.Status is ReplyStatus.Ok or ReplyStatus.NotFound)
                {
                    outcomeUnknown = false;
                    return reply;
                }
                lastErrorReply = reply;
                lastProblem = $"{connection.Address}: {DescribeError(reply)}";
                switch (reply.Error)
                {
                    case ErrorCode.ShuttingDown:
                        // The replica is going away: move every request on this connection elsewhere now.
                        connection.Close($"{connection.Address} is shutting down");
                        break;
                    case ErrorCode.NoMajority:
                        // This replica cannot reach a majority (it may sit on the minority side of a
                        // partition); another one may. Pause so a cluster without any majority is not hammered.
                        connection.Close($"{connection.Address} has no majority");
                        await Task.Delay(RetryPause(pauses++), deadline.Token).ConfigureAwait(false);
                        break;
                    case ErrorCode.Busy:
                        await Task.Delay(RetryPause(pauses++), deadline.Token).ConfigureAwait(false);
                        break;
                    default:
                        // A refusal such as InvalidRequest is final: the write will never be applied.
                        outcomeUnknown = false;
                        throw new KvException(reply.Error, DescribeError(reply));
                }
            }
        }
        catch (OperationCanceledException) when (_disposed.IsCancellationRequested)
        {
            throw new ObjectDisposedException(nameof(KvClient), "the client was disposed while the request was in flight");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            string took = $"{_requestTimeout.TotalMilliseconds:0} ms";
            if (lastErrorReply is not null)
            {
                throw new KvException(lastErrorReply.Error, $"{DescribeError(lastErrorReply)} (still failing after {took})");
            }
            if (lastProblem is not null && lastProblem.StartsWith(NoReplicaReachableException.Prefix, StringComparison.Ordinal))
            {
                throw new KvUnavailableException(lastProblem, everyReplicaRejected: false);
            }
            ReplicaAddress? replica = ConnectedReplica;
            string detail = lastProblem is not null ? $"; last problem: {lastProblem}" : "";
            throw new KvTimeoutException(replica is not null
                ? $"no reply from {replica} within {took}{detail}"
                : $"no reply within {took}{detail}");
        }
        finally
        {
            _awaitingReply.TryRemove(requestId, out _);
            if (isWrite)
            {
                if (outcomeUnknown)
                {
                    _ = ForgetAbandonedWriteLaterAsync(sequence);
                }
                else
                {
                    ForgetWrite(sequence);
                }
            }
        }
    }

    private void ForgetWrite(long sequence)
    {
        lock (_gate)
        {
            _unfinishedWrites.Remove(sequence);
        }
    }

    private async Task ForgetAbandonedWriteLaterAsync(long sequence)
    {
        try
        {
            await Task.Delay(_abandonedWriteGrace, _disposed.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Disposed: no further writes will carry AckedBelow anyway.
        }
        ForgetWrite(sequence);
    }

    private long AckedBelow()
    {
        lock (_gate)
        {
            return _unfinishedWrites.Count > 0 ? _unfinishedWrites.Min : _nextSequence;
        }
    }

    private static string DescribeError(ClientReply reply)
    {
        string message = string.IsNullOrWhiteSpace(reply.ErrorMessage) ? "no details given" : OneLine(reply.ErrorMessage);
        // These two messages say what they are ("permission denied: ..."); the code name would only repeat it.
        return reply.Error is ErrorCode.PermissionDenied or ErrorCode.AuthenticationRequired ? message : $"{reply.Error}: {message}";
    }

    private static string OneLine(string text) =>
        text.Contains('\n') || text.Contains('\r') ? text.ReplaceLineEndings(" ") : text;

    private static TimeSpan RetryPause(int attempt) =>
        TimeSpan.FromMilliseconds(Math.Min(MaxRetryPause.TotalMilliseconds, 50 * Math.Pow(2, Math.Min(attempt, 10))));

    /// <summary>
    /// The open connection, or the outcome of the connect round under way, or of a new one. One
    /// round at a time serves every waiting request; a failed round throws
    /// <see cref="NoReplicaReachableException"/> and the next caller starts a fresh one.
    /// </summary>
    private async Task<ReplicaConnection> GetConnectionAsync(CancellationToken ct)
    {
        Task<ReplicaConnection> round;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
            if (_connection is { IsOpen: true } open)
            {
                return open;
            }
            if (_connection is { } closing)
            {
                // Closing right now; its close callback may not have run yet.
                ForgetConnection(closing);
            }
            if (_connectRound is null || _connectRound.IsCompleted)
            {
                _connectRound = ConnectRoundAsync(_nextCandidate);
            }
            round = _connectRound;
        }
        return await round.WaitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Tries each replica once, in failover order starting at <paramref name="start"/>, until one accepts.</summary>
    private async Task<ReplicaConnection> ConnectRoundAsync(int start)
    {
        // Leave the caller's lock before doing any I/O.
        await Task.Yield();
        var failures = new List<string>(_candidates.Length);
        bool everyReplicaRejected = true;
        for (int i = 0; i < _candidates.Length; i++)
        {
            int index = (start + i) % _candidates.Length;
            var address = _candidates[index];
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token);
            attempt.CancelAfter(_connectAttemptTimeout);
            try
            {
                var connection = await ReplicaConnection.OpenAsync(address, index, _dial, OnReply, OnConnectionClosed, attempt.Token)
                    .ConfigureAwait(false);
                bool disposed;
                lock (_gate)
                {
                    disposed = _disposed.IsCancellationRequested;
                    if (!disposed)
                    {
                        _connection = connection;
                        _nextCandidate = index;
                    }
                }
                if (disposed)
                {
                    // Closed outside the lock: the close callback takes it too.
                    connection.Close("the client was disposed");
                    throw new ObjectDisposedException(nameof(KvClient));
                }
                return connection;
            }
            catch (HandshakeRejectedException e)
            {
                failures.Add($"{address}: rejected: {e.Message}");
            }
            catch (OperationCanceledException) when (!_disposed.IsCancellationRequested)
            {
                everyReplicaRejected = false;
                failures.Add($"{address}: no answer within {_connectAttemptTimeout.TotalMilliseconds:0} ms");
            }
            catch (Exception e) when (e is not OperationCanceledException and not ObjectDisposedException)
            {
                everyReplicaRejected = false;
                failures.Add($"{address}: {ConnectionErrors.Describe(e)}");
            }
        }
        throw new NoReplicaReachableException(NoReplicaReachableException.Prefix + string.Join("; ", failures), everyReplicaRejected);
    }

    private void OnReply(ClientReply reply)
    {
        if (_awaitingReply.TryGetValue(reply.RequestId, out var waiting))
        {
            waiting.TrySetResult(reply);
        }
        // A reply nobody waits for belongs to a request that already gave up: nothing to do.
    }

    private void OnConnectionClosed(ReplicaConnection connection)
    {
        lock (_gate)
        {
            ForgetConnection(connection);
        }
    }

    // Caller holds _gate.
    private void ForgetConnection(ReplicaConnection connection)
    {
        if (ReferenceEquals(_connection, connection))
        {
            _connection = null;
            // Failover goes to the next replica in order; the failed one is tried again last.
            _nextCandidate = (connection.CandidateIndex + 1) % _candidates.Length;
        }
    }

    /// <summary>One connect round failed at every replica; the message lists each replica and why.</summary>
    private sealed class NoReplicaReachableException(string message, bool everyReplicaRejected) : Exception(message)
    {
        public const string Prefix = "no replica reachable: ";

        public bool EveryReplicaRejected { get; } = everyReplicaRejected;
    }
}
