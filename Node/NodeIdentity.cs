namespace KvReplica.Node;

/// <summary>Who this process is: its replica id, and an incarnation number fresh for every process start.</summary>
internal sealed record NodeIdentity(int ReplicaId, long Incarnation, bool Verbose);
