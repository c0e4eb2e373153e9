namespace KvReplica.Clock;

/// <summary>
/// The position of a write in the total order: its Lamport time, ties broken by the id of the
/// replica that stamped it. Two distinct writes never share a stamp, because a replica's clock
/// strictly increases between the writes it stamps.
/// </summary>
/// <param name="Time">Lamport time at the originating replica; at least 1 for a real write.</param>
/// <param name="ReplicaId">Id of the originating replica (from cluster.json).</param>
public readonly record struct Stamp(long Time, int ReplicaId) : IComparable<Stamp>
{
    /// <summary>Smaller than every stamp a replica can produce; means "nothing yet".</summary>
    public static readonly Stamp Zero = new(0, 0);

    public int CompareTo(Stamp other)
    {
        int byTime = Time.CompareTo(other.Time);
        return byTime != 0 ? byTime : ReplicaId.CompareTo(other.ReplicaId);
    }

    public static bool operator <(Stamp a, Stamp b) => a.CompareTo(b) < 0;
    public static bool operator >(Stamp a, Stamp b) => a.CompareTo(b) > 0;
    public static bool operator <=(Stamp a, Stamp b) => a.CompareTo(b) <= 0;
    public static bool operator >=(Stamp a, Stamp b) => a.CompareTo(b) >= 0;

    public override string ToString() => $"{Time}.{ReplicaId}";
}
