using System.Collections.Concurrent;
using System.Runtime.InteropServices;
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
/// fires first. A write that times out says in <see cref="KvTimeoutException.OutcomeUnknown"/>
/// whether it may have been applied. Busy answers are retried after a growing pause until the deadline, after which the
/// last error is reported.</para>
/// <para>Exactly-once writes: the client picks a random 64-bit <see cref="ClientId"/> once and numbers
/// its writes 1, 2, 3… Every write carries the lowest sequence number still awaiting its outcome
/// (AckedBelow), so the cluster can forget deduplication state for older writes. A write the client
/// gave up on (timeout, cancellation) after sending it is never retried, but it keeps holding
/// AckedBelow down for a grace period (twice the longer of the request and write timeouts), because
/// a copy sent before a failover may still be on its way through the cluster and must still be
/// recognised as a duplicate.</para>
/// </remarks>
public sealed partial class KvClient : IAsyncDisposable
{
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
    /// in time (or at once, if every replica refused the handshake, the message carrying their
    /// reasons, e.g. "authentication failed", or every replica's host refused the connection, so
    /// that no replica is running), <see cref="ArgumentException"/> for options that do
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
            throw KvExceptionFactory.CredentialsRequired();
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
    /// <remarks>
    /// A value that is a whole array is sent from that array, not a copy of it: do not change it
    /// until the returned task completes (a retry sends it again).
    /// </remarks>
    /// <exception cref="KvInvalidRequestException">The key or value breaks a data-model rule; nothing was sent.</exception>
    /// <exception cref="KvException">A replica refused the write, or the timeout passed (<see cref="KvTimeoutException"/>, <see cref="KvUnavailableException"/>).</exception>
    /// <returns>The version the value got: the stamp of this write.</returns>
    public async Task<KvVersion> PutAsync(string key, ReadOnlyMemory<byte> value, CancellationToken ct = default)
    {
        var reply = await ExecuteAsync(Operation.Put, key, AsArray(value), ct).ConfigureAwait(false);
        return new KvVersion(reply.VersionTime, reply.VersionReplica);
    }

    // The array behind a whole-array memory, so a value is not copied; otherwise a copy.
    private static byte[] AsArray(ReadOnlyMemory<byte> value) =>
        MemoryMarshal.TryGetArray(value, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : value.ToArray();

    /// <summary>Stores the UTF-8 encoding of <paramref name="value"/> under <paramref name="key"/>; see <see cref="PutAsync(string, ReadOnlyMemory{byte}, CancellationToken)"/>.</summary>
    public Task<KvVersion> PutAsync(string key, string value, CancellationToken ct = default)
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
}
