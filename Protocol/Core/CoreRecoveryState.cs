using KvReplica.Clock;

namespace KvReplica.Protocol.Core;

/// <summary>
/// What a restarted replica's core needs besides its state machine, rebuilt from the data
/// directory (Store/Persistence/Recovery): where delivery stopped, the writes it held but had not
/// delivered, and the acknowledgement vector it had promised.
/// </summary>
/// <param name="LastDelivered">Stamp of the last write applied to the state machine.</param>
/// <param name="Held">Held, undelivered writes, in stamp order; all after <paramref name="LastDelivered"/>.</param>
/// <param name="HeldThrough">For each origin, the largest time of its writes this replica held or delivered.</param>
/// <param name="DeliveredThrough">For each origin, the largest time of its writes delivered here.</param>
/// <param name="ClockTime">The largest Lamport time the replica logged; its clock restarts above it.</param>
public sealed record CoreRecoveryState(
    Stamp LastDelivered,
    IReadOnlyList<WriteCommand> Held,
    IReadOnlyDictionary<int, long> HeldThrough,
    IReadOnlyDictionary<int, long> DeliveredThrough,
    long ClockTime)
{
    /// <summary>
    /// The delivered writes replayed from the log, in order, and the stamp just before the first
    /// (the snapshot's): the start of the window of recent writes a rejoining replica is sent.
    /// </summary>
    public IReadOnlyList<WriteCommand> Replayed { get; init; } = [];
    public Stamp ReplayedAfter { get; init; }

    /// <summary>The last installed view, with its trims; null for the configured view.</summary>
    public Wire.ViewInstall? LastView { get; init; }

    /// <summary>The last installed view's number (0: the configured one).</summary>
    public long ViewNumber => LastView?.Number ?? 0;

    /// <summary>The last installed view's members; empty for the configured view.</summary>
    public IReadOnlyList<int> ViewMembers => LastView?.Members ?? [];

    /// <summary>The last join this replica sent (its promise and frozen acknowledgements); null if none.</summary>
    public Wire.ViewJoin? LastJoin { get; init; }

    /// <summary>The highest view number promised (at least <see cref="ViewNumber"/>).</summary>
    public long Promised => Math.Max(LastJoin?.Number ?? 0, ViewNumber);
}
