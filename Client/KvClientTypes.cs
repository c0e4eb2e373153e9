using KvReplica.Protocol.Wire;

namespace KvReplica.Client;

/// <summary>How a <see cref="KvClient"/> behaves.</summary>
public sealed record KvClientOptions
{
    /// <summary>The replica to talk to first; the others follow in id order on failover. Null: the lowest id.</summary>
    public int? PreferredReplica { get; init; }

    /// <summary>How GETs are answered (majority by default: linearizable).</summary>
    public ReadMode ReadMode { get; init; } = ReadMode.Majority;

    /// <summary>How long one call may take in all, retries and failovers included. Null: the cluster's clientRequestTimeoutMs.</summary>
    public TimeSpan? RequestTimeout { get; init; }

    /// <summary>How long to wait for one replica to accept a connection and answer the handshake.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(2);
}

/// <summary>The answer to a GET.</summary>
/// <param name="Found">Whether the key has a value.</param>
/// <param name="Value">The value's bytes when found.</param>
/// <param name="VersionTime">Lamport time of the write that set the value (0 when not found).</param>
/// <param name="VersionReplica">Replica that stamped that write.</param>
public sealed record GetResult(bool Found, byte[]? Value, long VersionTime, int VersionReplica);

/// <summary>
/// A request the cluster refused or could not complete. <see cref="Code"/> says whether to retry:
/// InvalidRequest never succeeds; NoMajority and Busy may succeed later. A write that failed with
/// NoMajority or a timeout has an unknown outcome: it may still be applied.
/// </summary>
public sealed class KvException(ErrorCode code, string message) : Exception(message)
{
    public ErrorCode Code { get; } = code;
}

/// <summary>No reply arrived within the request timeout; for a write, the outcome is unknown.</summary>
public sealed class KvTimeoutException(string message) : TimeoutException(message);
