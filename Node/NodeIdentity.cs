namespace KvReplica.Node;

/// <summary>
/// Who this process is: its replica id, an incarnation number fresh for every process start, and
/// the data directory when the command line overrides cluster.json's.
/// </summary>
internal sealed record NodeIdentity(int ReplicaId, long Incarnation, bool Verbose, string? DataDirectory = null);
