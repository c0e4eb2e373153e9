namespace KvReplica.Protocol.Core;

/// <summary>
/// A replica core found one of its own invariants broken (<see cref="ReplicaCore.CheckInvariants"/>):
/// a programmer error, never an operating condition. <see cref="Invariant"/> names the rule broken.
/// </summary>
public sealed class InvariantViolationException(int replica, string invariant, string detail)
    : Exception($"replica {replica} broke invariant \"{invariant}\": {detail}")
{
    /// <summary>The replica whose core found the breach.</summary>
    public int Replica { get; } = replica;

    /// <summary>The invariant's name, as listed in docs/design.md ("Asserted invariants").</summary>
    public string Invariant { get; } = invariant;
}
