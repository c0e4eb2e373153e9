namespace KvReplica.Protocol.Core;

/// <summary>Settings of one replica core. All durations are in the core's time unit, milliseconds.</summary>
public sealed record ReplicaCoreOptions
{
    /// <summary>This replica's id.</summary>
    public required int SelfId { get; init; }

    /// <summary>Ids of every configured replica, this one included; the initial view.</summary>
    public required IReadOnlyList<int> Members { get; init; }

    /// <summary>Largest PUT value accepted, in bytes.</summary>
    public int MaxValueBytes { get; init; } = Wire.Limits.DefaultMaxValueBytes;

    /// <summary>Interval at which acknowledgements are re-sent as a heartbeat when nothing else flows.</summary>
    public long HeartbeatIntervalMs { get; init; } = 50;

    /// <summary>A GET without a majority of answers after this long fails with NoMajority.</summary>
    public long ReadTimeoutMs { get; init; } = 2000;

    /// <summary>A write not delivered after this long gets an error reply; its outcome is then unknown to the client.</summary>
    public long WriteTimeoutMs { get; init; } = 5000;

    /// <summary>A member silent for longer than this is suspected, and a view change removes it.</summary>
    public long SuspicionTimeoutMs { get; init; } = 1000;

    /// <summary>
    /// Delivered writes kept in memory to bring a removed replica back (sent to it when a view
    /// change adds it), by count and by value bytes. A replica further behind restarts and
    /// catches up from a snapshot.
    /// </summary>
    public int RecentDeliveredWrites { get; init; } = 50_000;
    public long RecentDeliveredBytes { get; init; } = 64L << 20;

    /// <summary>Held writes beyond which new writes are refused with Busy.</summary>
    public int MaxPendingWrites { get; init; } = 100_000;
}
