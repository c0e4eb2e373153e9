namespace KvReplica.Clock;

/// <summary>
/// Lamport's logical clock. Every write a replica originates is stamped with a fresh, strictly
/// larger time; every time a replica learns of a remote time it moves past it. Together these give
/// the clock condition: if write a happened-before write b, then stamp(a) &lt; stamp(b).
/// </summary>
public sealed class LamportClock
{
    /// <summary>Starts at <paramref name="start"/> (0 for a new replica; a recovered value later).</summary>
    public LamportClock(long start = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        Now = start;
    }

    /// <summary>The latest time this replica has used or observed.</summary>
    public long Now { get; private set; }

    /// <summary>A local event that needs a new time (stamping a write): time = time + 1.</summary>
    public long Tick() => ++Now;

    /// <summary>
    /// Receipt of a message carrying <paramref name="received"/>: time = max(local, received) + 1,
    /// the rule of Lamport (1978). Returns the new time.
    /// </summary>
    public long Witness(long received)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(received);
        Now = Math.Max(Now, received) + 1;
        return Now;
    }
}
