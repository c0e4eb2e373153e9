using C = KvReplica.Protocol.Config.Setting<KvReplica.Protocol.Config.ClusterConfig>;
using R = KvReplica.Protocol.Config.Setting<KvReplica.Protocol.Config.ReplicaAddress>;

namespace KvReplica.Protocol.Config;

/// <summary>
/// Every key cluster.json may hold, with its type, range and the <see cref="ClusterConfig"/>
/// property it sets: the one place a new setting is declared. Defaults are the initial values of
/// <see cref="ClusterConfig"/>'s properties. A key not listed here is refused with the nearest one
/// that is, and README.md's table of cluster.json lists the same keys (a test holds them equal).
/// </summary>
/// <remarks>
/// A nested object is one <see cref="Setting{T}.Section"/> entry with its own table, e.g.
/// <c>C.Section("tls", Tls, TlsSettings.None, (c, v) =&gt; c with { Tls = v })</c> where <c>Tls</c>
/// lists <c>Setting&lt;TlsSettings&gt;.Text("ca", ...)</c> and the rest.
/// Checks that span several settings (a frame must hold the largest value, replica ids unique)
/// are in <see cref="ClusterConfigReader"/>, after every setting has been read.
/// </remarks>
public static class ClusterSettings
{
    /// <summary>The keys of one entry of <c>replicas</c>.</summary>
    public static SettingTable<ReplicaAddress> Replica { get; } = new(
    [
        R.WholeNumber("id", 1, 1_000_000, (r, v) => r with { Id = v }, required: true),
        R.Text("host", (r, v) => r with { Host = v }, required: true, nonBlank: true),
        R.WholeNumber("port", 1, 65535, (r, v) => r with { Port = v }, required: true),
    ]);

    /// <summary>The keys of <c>tls</c>: PEM files, relative to cluster.json's directory; <c>{id}</c> stands for the replica id.</summary>
    public static SettingTable<TlsSettings> Tls { get; } = new(
    [
        Setting<TlsSettings>.Text("ca", (t, v) => t with { Ca = v }, required: true, nonBlank: true),
        Setting<TlsSettings>.Text("cert", (t, v) => t with { Cert = v }, required: true, nonBlank: true),
        Setting<TlsSettings>.Text("key", (t, v) => t with { Key = v }, required: true, nonBlank: true),
    ]);

    /// <summary>The keys of <c>auth</c>.</summary>
    public static SettingTable<AuthSettings> Auth { get; } = new(
    [
        Setting<AuthSettings>.Text("bootstrapAdmin", (a, v) => a with { BootstrapAdmin = v }, nonBlank: true),
    ]);

    /// <summary>The top-level keys.</summary>
    public static SettingTable<ClusterConfig> Cluster { get; } = new(
    [
        C.Text("clusterName", (c, v) => c with { ClusterName = v }, required: true, nonBlank: true),
        C.ListOf("replicas", Replica, new ReplicaAddress(0, "", 0), (c, v) => c with { Replicas = v }, "replica with id, host and port", required: true),
        C.WholeNumber("maxValueBytes", 1, 64 << 20, (c, v) => c with { MaxValueBytes = v }),
        C.WholeNumber("maxFrameBytes", 1024, int.MaxValue, (c, v) => c with { MaxFrameBytes = v }),
        C.WholeNumber("heartbeatIntervalMs", 1, 60_000, (c, v) => c with { HeartbeatInterval = Milliseconds(v) }),
        C.WholeNumber("suspicionTimeoutMs", 10, 600_000, (c, v) => c with { SuspicionTimeout = Milliseconds(v) }),
        C.WholeNumber("recentDeliveredWrites", 1, 10_000_000, (c, v) => c with { RecentDeliveredWrites = v }),
        C.WholeNumber("readTimeoutMs", 10, 600_000, (c, v) => c with { ReadTimeout = Milliseconds(v) }),
        C.WholeNumber("writeTimeoutMs", 10, 600_000, (c, v) => c with { WriteTimeout = Milliseconds(v) }),
        C.WholeNumber("clientRequestTimeoutMs", 10, 600_000, (c, v) => c with { ClientRequestTimeout = Milliseconds(v) }),
        C.WholeNumber("maxPendingWrites", 1, 10_000_000, (c, v) => c with { MaxPendingWrites = v }),
        C.Text("dataDir", (c, v) => c with { DataDir = v }),
        C.Choice("fsync", [("always", FsyncPolicy.Always), ("batch", FsyncPolicy.Batch), ("none", FsyncPolicy.None)], (c, v) => c with { Fsync = v }),
        C.WholeNumber("fsyncBatchMs", 1, 10_000, (c, v) => c with { FsyncBatchInterval = Milliseconds(v) }),
        C.WholeNumber("engineCommitEveryWrites", 1, 10_000_000, (c, v) => c with { EngineCommitEveryWrites = v }),
        C.WholeNumber("engineCommitIntervalMs", 1, 600_000, (c, v) => c with { EngineCommitInterval = Milliseconds(v) }),
        C.WholeNumber("engineMaxGiB", 1, 1 << 16, (c, v) => c with { EngineMaxBytes = v * Gibibyte }),
        C.WholeNumber("historyChanges", 0, 100_000_000, (c, v) => c with { HistoryChanges = v }),
        C.WholeNumber("historyMiB", 0, 1 << 20, (c, v) => c with { HistoryBytes = v * Mebibyte }),
        // The snapshot files these tuned are gone (the storage engine holds the state); still
        // accepted so that a cluster.json written before keeps working, and without effect.
        C.WholeNumber("snapshotEveryWrites", 1, int.MaxValue, (c, _) => c),
        C.WholeNumber("snapshotEveryLogMiB", 1, 1 << 20, (c, _) => c),
        C.WholeNumber("walSegmentMiB", 1, 4096, (c, v) => c with { WalSegmentBytes = v * Mebibyte }),
        C.Section("tls", Tls, new TlsSettings("", "", ""), (c, v) => c with { Tls = v }),
        C.Section("auth", Auth, new AuthSettings(null), (c, v) => c with { BootstrapAdminFile = v.BootstrapAdmin }),
    ]);

    private const long Mebibyte = 1L << 20;
    private const long Gibibyte = 1L << 30;

    private static TimeSpan Milliseconds(int ms) => TimeSpan.FromMilliseconds(ms);
}
