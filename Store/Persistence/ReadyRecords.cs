using KvReplica.Clock;
using KvReplica.Protocol.Core;

namespace KvReplica.Store.Persistence;

/// <summary>
/// The one mapping from a round of the core's <see cref="Ready"/> to write-ahead log records.
/// The Node (ReplicaStorage.Persist), the simulation and the core tests all log through it, so
/// the simulation runs the code that ships.
/// </summary>
public static class ReadyRecords
{
    /// <summary>
    /// Appends the round's records to <paramref name="records"/>, in the order recovery relies on:
    /// the rebase first (it forgets every undelivered write logged before it), the newly held
    /// writes in the order held, the promise, the installed view (whose trims apply to the writes
    /// before it), then the delivered-through marker.
    /// </summary>
    public static void AppendTo(Ready ready, ICollection<LogEntry> records)
    {
        if (ready.Rebase is { } rebase)
        {
            records.Add(LogEntry.Rebased(rebase));
        }
        foreach (var write in ready.NewlyHeld)
        {
            records.Add(LogEntry.HeldWrite(write));
        }
        if (ready.Joined is { } join)
        {
            records.Add(LogEntry.Joined(join));
        }
        if (ready.InstalledView is { } view)
        {
            records.Add(LogEntry.InstalledView(view));
        }
        if (ready.LastDelivered != Stamp.Zero)
        {
            records.Add(LogEntry.Delivered(ready.LastDelivered));
        }
    }

    /// <summary>The round's records as a new list; see <see cref="AppendTo"/> for their order.</summary>
    public static IReadOnlyList<LogEntry> ToLogEntries(Ready ready)
    {
        var records = new List<LogEntry>();
        AppendTo(ready, records);
        return records;
    }
}
