namespace KvReplica.Protocol.Config;

/// <summary>When the write-ahead log forces its appends to disk (cluster.json <c>fsync</c>).</summary>
public enum FsyncPolicy
{
    /// <summary>Every group-commit batch is fsynced before anything that depends on it is sent. The default.</summary>
    Always,
    /// <summary>At most one fsync per interval: a power loss can cost the writes of the last interval on this replica.</summary>
    Batch,
    /// <summary>Never fsync: for tests and benchmarks only; a power loss can lose anything not yet written back by the OS.</summary>
    None,
}
