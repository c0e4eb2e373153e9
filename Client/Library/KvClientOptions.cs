using KvReplica.Client.Transport;
using KvReplica.Protocol.Wire;
using KvReplica.Transport;

namespace KvReplica.Client;

/// <summary>How a <see cref="KvClient"/> picks replicas, reads and gives up.</summary>
public sealed record KvClientOptions
{
    /// <summary>
    /// Id of the replica to try first (it must be listed in cluster.json). When null the client tries
    /// replicas in id order. Either way, on failure it moves on to the next replica in that order.
    /// </summary>
    public int? PreferredReplicaId { get; init; }

    /// <summary>How GETs are answered; <see cref="ReadMode.Majority"/> (linearizable) unless set.</summary>
    public ReadMode ReadMode { get; init; } = ReadMode.Majority;

    /// <summary>
    /// The deadline of every operation, counted from the call, covering connecting, failover,
    /// retries and waiting for the reply. Null means the cluster's <c>clientRequestTimeoutMs</c>.
    /// Must be positive.
    /// </summary>
    public TimeSpan? RequestTimeout { get; init; }

    /// <summary>
    /// How long one attempt to reach one replica (TCP connect plus handshake) may take before the
    /// client moves on to the next replica. Null means half the request timeout, at most 2 seconds,
    /// so that one silent replica cannot eat a whole request's deadline.
    /// </summary>
    public TimeSpan? ConnectAttemptTimeout { get; init; }

    /// <summary>
    /// The user to authenticate as (SCRAM-SHA-256) when the cluster has TLS on; ignored when it
    /// has not. Without it, a cluster with TLS refuses the connection with "authentication required".
    /// </summary>
    public ClientCredentials? Credentials { get; init; }
}
