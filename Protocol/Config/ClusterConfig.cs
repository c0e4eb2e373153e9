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

    /// <summary>A member silent for this long is suspected and removed from the view by a view change.</summary>
    public TimeSpan SuspicionTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a replica waits for a majority of read answers before failing the GET.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a replica lets a write wait for delivery before replying with an error.</summary>
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long the client waits for any reply before it gives up on a request.</summary>
    public TimeSpan ClientRequestTimeout { get; init; } = TimeSpan.FromSeconds(6);

    /// <summary>Held writes beyond which a replica refuses new writes with <see cref="ErrorCode.Busy"/>.</summary>
    public int MaxPendingWrites { get; init; } = 100_000;

    /// <summary>Delivered writes each replica keeps in memory to bring a removed replica back without a snapshot.</summary>
    public int RecentDeliveredWrites { get; init; } = 50_000;

    /// <summary>
    /// Where each replica keeps its write-ahead log and snapshots. <c>{id}</c> is replaced by the
    /// replica id; a relative path is relative to the directory holding cluster.json.
    /// </summary>
    public string DataDir { get; init; } = "data/replica-{id}";

    /// <summary>The directory cluster.json was read from (relative data directories start there).</summary>
    public string ConfigDirectory { get; init; } = ".";

    /// <summary>When the write-ahead log is forced to disk; see <see cref="Config.FsyncPolicy"/>.</summary>
    public FsyncPolicy Fsync { get; init; } = FsyncPolicy.Always;

    /// <summary>Under <see cref="FsyncPolicy.Batch"/>: the longest time an appended batch stays unsynced.</summary>
    public TimeSpan FsyncBatchInterval { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// The storage engine commits the writes delivered since its last commit after this many...
    /// (docs/design.md, "The storage engine": batching commits keeps the engine's own fsync off
    /// most writes' path; recovery replays at most this much log beyond the engine).
    /// </summary>
    public int EngineCommitEveryWrites { get; init; } = 10_000;

    /// <summary>...or once this long has passed since the last commit, whichever comes first.</summary>
    public TimeSpan EngineCommitInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The largest the storage engine's file may grow to (LMDB's map size). Address space is
    /// reserved for it, not memory or disk; a full engine stops the replica like a full disk.
    /// </summary>
    public long EngineMaxBytes { get; init; } = 256L << 30;

    /// <summary>
    /// Changes each replica keeps in memory for watches and the later pages of scans (docs/design.md,
    /// "Every page of a scan at one revision"); older revisions answer <c>compacted</c>. 0 keeps none.
    /// </summary>
    public int HistoryChanges { get; init; } = 100_000;

    /// <summary>...and at most this many bytes of keys and values (64 MiB).</summary>
    public long HistoryBytes { get; init; } = 64L << 20;

    /// <summary>Size at which a write-ahead log segment is closed and a new one started.</summary>
    public long WalSegmentBytes { get; init; } = 64L << 20;

    /// <summary>
    /// TLS for every connection, mutual between replicas, and client authentication: on when set
    /// (README, "Security"). Null: plaintext and no authentication, allowed only on loopback
    /// addresses or with <c>--insecure</c>.
    /// </summary>
    public TlsSettings? Tls { get; init; }

    /// <summary>
    /// File holding the bootstrap administrator's SCRAM verifier (<c>name:SCRAM-SHA-256$...</c>),
    /// or null. Relative to the directory holding cluster.json.
    /// </summary>
    public string? BootstrapAdminFile { get; init; }

    /// <summary>The data directory of replica <paramref name="id"/>, absolute.</summary>
    public string DataDirectoryOf(int id) =>
        Path.GetFullPath(Path.Combine(ConfigDirectory, DataDir.Replace("{id}", id.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)));

    /// <summary>A majority of the configured replicas.</summary>
    public int Majority => Replicas.Count / 2 + 1;

    public ReplicaAddress? Find(int id) => Replicas.FirstOrDefault(r => r.Id == id);
}

/// <summary>
/// Paths (absolute once read; <c>{id}</c> in <see cref="Cert"/> and <see cref="Key"/> stands for
/// the replica id) of the cluster CA's certificate and of each replica's certificate and key, PEM.
/// </summary>
public sealed record TlsSettings(string Ca, string Cert, string Key)
{
    public string CertOf(int id) => Cert.Replace("{id}", id.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);

    public string KeyOf(int id) => Key.Replace("{id}", id.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
}

/// <summary>The <c>auth</c> object of cluster.json, as read (see <see cref="ClusterConfig.BootstrapAdminFile"/>).</summary>
public sealed record AuthSettings(string? BootstrapAdmin);

/// <summary>A cluster.json that cannot be used. The message names the field and what is wrong with it.</summary>
public sealed class ConfigException(string message) : Exception(message);
