using KvReplica.Clock;
using KvReplica.Protocol.Core;

namespace KvReplica.Store.Persistence;

/// <summary>
/// Rebuilds a replica at start-up from its newest valid snapshot and the log after it
/// (docs/design.md, "Durability"): the writes up to the last delivered-through marker are applied
/// in stamp order, and the rest go back into the hold-back queue.
/// </summary>
/// <remarks>
/// Why "every logged write up to the marker" is exactly the delivered set: a write with stamp s
/// is delivered only once every member acknowledged holding s, so every write with a smaller
/// stamp had already arrived (design.md §2) and, being logged on arrival, precedes the marker in
/// the log. The log is a prefix of what was appended, so a marker read back implies every write
/// it covers was read back too.
/// </remarks>
public static class Recovery
{
    /// <summary>
    /// Applies to <paramref name="store"/> (a snapshot, or empty) the delivered writes of
    /// <paramref name="log"/> it does not include, and returns the core's recovery state.
    /// </summary>
    public static CoreRecoveryState Rebuild(KvStore store, IEnumerable<LogEntry> log, out int replayed)
    {
        var snapshotThrough = store.LastApplied;
        var deliveredThrough = snapshotThrough;
        var writes = new SortedDictionary<Stamp, WriteCommand>();
        var heldThrough = new Dictionary<int, long>(store.AppliedThroughByOrigin);
        long clock = snapshotThrough.Time;
        Protocol.Wire.ViewJoin? join = null;
        Protocol.Wire.ViewInstall? view = null;
        foreach (var entry in log)
        {
            if (entry.View is { } installed)
            {
                // A view change discarded the removed members' writes above their trim; so does recovery.
                view = installed.Number > (view?.Number ?? -1) ? installed : view;
                for (int i = 0; i < installed.TrimOrigins.Length; i++)
                {
                    int origin = installed.TrimOrigins[i];
                    long through = installed.TrimTimes[i];
                    foreach (var trimmed in writes.Keys.Where(s => s.ReplicaId == origin && s.Time > through).ToList())
                    {
                        writes.Remove(trimmed);
                    }
                    if (heldThrough.TryGetValue(origin, out long heldOfOrigin) && heldOfOrigin > through)
                    {
                        heldThrough[origin] = Math.Max(through, store.AppliedThroughByOrigin.GetValueOrDefault(origin));
                    }
                }
                continue;
            }
            if (entry.Rebase is { } rebase)
            {
                // Added back after a removal, the replica replaced what it held with the
                // coordinator's: nothing undelivered logged before this survives.
                foreach (var forgotten in writes.Keys.Where(s => s > deliveredThrough).ToList())
                {
                    writes.Remove(forgotten);
                }
                for (int i = 0; i < rebase.Origins.Length; i++)
                {
                    int origin = rebase.Origins[i];
                    heldThrough[origin] = Math.Max(rebase.HeldThrough[i], store.AppliedThroughByOrigin.GetValueOrDefault(origin));
                }
                continue;
            }
            if (entry.Join is { } joined)
            {
                join = joined.Number > (join?.Number ?? -1) ? joined : join;
                continue;
            }
            if (entry.Held is not { } write)
            {
                deliveredThrough = entry.LastDelivered > deliveredThrough ? entry.LastDelivered : deliveredThrough;
                continue;
            }
            var stamp = write.Stamp;
            clock = Math.Max(clock, stamp.Time);
            heldThrough[stamp.ReplicaId] = Math.Max(heldThrough.GetValueOrDefault(stamp.ReplicaId), stamp.Time);
            if (stamp > snapshotThrough)
            {
                writes.TryAdd(stamp, write);
            }
        }
        replayed = 0;
        var held = new List<WriteCommand>();
        var applied = new List<WriteCommand>();
        foreach (var (stamp, write) in writes)
        {
            if (stamp <= deliveredThrough)
            {
                store.Apply(write, out _);
                applied.Add(write);
                replayed++;
            }
            else
            {
                held.Add(write);
            }
        }
        return new CoreRecoveryState(store.LastApplied, held, heldThrough, new Dictionary<int, long>(store.AppliedThroughByOrigin), Math.Max(clock, deliveredThrough.Time))
        {
            LastView = view,
            LastJoin = join,
            Replayed = applied,
            ReplayedAfter = snapshotThrough,
        };
    }
}
