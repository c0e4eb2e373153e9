using KvReplica.Protocol.Core;

namespace KvReplica.Store.Persistence;

/// <summary>
/// Rebuilds a replica's store at start-up: the newest valid snapshot, then every logged write
/// after the snapshot's last applied stamp, applied in log order (which is delivery order).
/// </summary>
public static class Recovery
{
    /// <summary>Applies the writes of <paramref name="log"/> that the snapshot does not include; returns how many.</summary>
    public static int Replay(KvStore store, IEnumerable<WriteCommand> log)
    {
        int replayed = 0;
        var after = store.LastApplied;
        foreach (var write in log)
        {
            if (write.Stamp <= after)
            {
                continue;
            }
            store.Apply(write, out _);
            replayed++;
        }
        return replayed;
    }
}
