using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Config;

/// <summary>One replica's address as listed in cluster.json.</summary>
public sealed record ReplicaAddress(int Id, string Host, int Port)
{
    public override string ToString() => $"replica {Id} at {Host}:{Port}";
}

/// <summary>
/// The cluster as described by cluster.json, shared by every replica and every client.
/// Field names, units and defaults are documented in README.md ("cluster.json").
/// </summary>
public sealed record ClusterConfig
{
    /// <summary>Name every connection's handshake must match, so two clusters never mix.</summary>
    public required string ClusterName { get; init; }

    /// <summary>All configured replicas, ordered by id.</summary>
    public required IReadOnlyList<ReplicaAddress> Replicas { get; init; }

    /// <summary>Largest value a PUT may carry, in bytes.</summary>
    public int MaxValueBytes { get; init; } = Limits.DefaultMaxValueBytes;

    /// <summary>Largest frame payload a replica or client accepts, in bytes.</summary>
    public int MaxFrameBytes { get; init; } = Limits.DefaultMaxFrameBytes;

    /// <summary>How often a replica sends its acknowledgements and a heartbeat to each peer.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>How long a replica waits for a majority of read answers before failing the GET.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a replica lets a write wait for delivery before replying with an error.</summary>
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long the client waits for any reply before it gives up on a request.</summary>
    public TimeSpan ClientRequestTimeout { get; init; } = TimeSpan.FromSeconds(6);

    /// <summary>Held writes beyond which a replica refuses new writes with <see cref="ErrorCode.Busy"/>.</summary>
    public int MaxPendingWrites { get; init; } = 100_000;

    /// <summary>A majority of the configured replicas.</summary>
    public int Majority => Replicas.Count / 2 + 1;

    public ReplicaAddress? Find(int id) => Replicas.FirstOrDefault(r => r.Id == id);
}

/// <summary>A cluster.json that cannot be used. The message names the field and what is wrong with it.</summary>
public sealed class ConfigException(string message) : Exception(message);
