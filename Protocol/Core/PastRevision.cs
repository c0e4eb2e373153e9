using KvReplica.Clock;

namespace KvReplica.Protocol.Core;

/// <summary>
/// The keys of a range as they were at a past revision, without keeping old versions in the
/// engine: the state now, with every change after that revision undone. The earliest change to a
/// key after the revision carries the value the key had at it.
/// </summary>
public static class PastRevision
{
    /// <summary>
    /// The present keys of <paramref name="range"/> in key order as of the revision that
    /// <paramref name="changesAfter"/> follows.
    /// </summary>
    /// <param name="current">The present keys of <paramref name="range"/> now, in key order.</param>
    /// <param name="changesAfter">Every change after the revision, oldest first (any keys).</param>
    /// <param name="range">The keys wanted.</param>
    public static IEnumerable<StoredEntry> Scan(IEnumerable<StoredEntry> current, IEnumerable<KeyChange> changesAfter, KeyRange range)
    {
        var then = new Dictionary<string, StoredValue>(StringComparer.Ordinal);
        foreach (var change in changesAfter)
        {
            if (range.Contains(change.Key))
            {
                then.TryAdd(change.Key, change.Previous);
            }
        }
        if (then.Count == 0)
        {
            return current;
        }
        return Merge(current, [.. then.OrderBy(p => p.Key, KeyOrder.Instance)]);
    }

    private static IEnumerable<StoredEntry> Merge(IEnumerable<StoredEntry> current, List<KeyValuePair<string, StoredValue>> then)
    {
        int next = 0;
        foreach (var entry in current)
        {
            while (next < then.Count && KeyOrder.Instance.Compare(then[next].Key, entry.Key) < 0)
            {
                if (AsEntry(then[next]) is { } earlier)
                {
                    yield return earlier;
                }
                next++;
            }
            if (next < then.Count && then[next].Key == entry.Key)
            {
                if (AsEntry(then[next]) is { } replaced)
                {
                    yield return replaced;
                }
                next++;
                continue;
            }
            yield return entry;
        }
        for (; next < then.Count; next++)
        {
            if (AsEntry(then[next]) is { } earlier)
            {
                yield return earlier;
            }
        }
    }

    private static StoredEntry? AsEntry(KeyValuePair<string, StoredValue> then) =>
        then.Value.Found ? new StoredEntry(then.Key, then.Value.Value ?? [], then.Value.Version) : null;

    /// <summary>
    /// The largest stamp below <paramref name="stamp"/> in the stamp order ((time, replica)
    /// pairs): changes after it are exactly those at <paramref name="stamp"/> and later.
    /// </summary>
    public static Stamp JustBefore(Stamp stamp) => new(stamp.Time, stamp.ReplicaId - 1);
}
