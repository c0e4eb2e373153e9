namespace KvReplica.Node.Transport;

/// <summary>
/// Counts the accepted connections that have not finished their handshake, refuses beyond
/// <see cref="ConnectionLimits.MaxUnauthenticatedConnections"/>, and rate-limits the log line
/// about refusals to one per <see cref="ConnectionLimits.RefusedLogInterval"/>. Thread-safe: the
/// accept loop admits, each connection's task releases.
/// </summary>
internal sealed class HandshakeAdmission(int limit, TimeSpan refusedLogInterval)
{
    private int _handshaking;
    private long _refusedSinceLog;
    private long _refusedLoggedAt = long.MinValue / 2;

    /// <summary>Connections admitted and not yet released.</summary>
    public int Handshaking => Volatile.Read(ref _handshaking);

    /// <summary>Admits one more connection into its handshake, or false if <c>limit</c> are already in one.</summary>
    public bool TryAdmit()
    {
        if (Interlocked.Increment(ref _handshaking) > limit)
        {
            Interlocked.Decrement(ref _handshaking);
            return false;
        }
        return true;
    }

    /// <summary>
    /// A ticket for one admitted connection: releasing it (once, whatever calls it first: the
    /// end of its handshake or the end of the connection) frees its place.
    /// </summary>
    public Ticket Admitted() => new(this);

    /// <summary>
    /// Counts a refused connection at <paramref name="nowMs"/>; returns how many were refused
    /// since the last log line when one is due now, else 0.
    /// </summary>
    public long Refused(long nowMs)
    {
        Interlocked.Increment(ref _refusedSinceLog);
        long last = Interlocked.Read(ref _refusedLoggedAt);
        if (nowMs - last >= (long)refusedLogInterval.TotalMilliseconds
            && Interlocked.CompareExchange(ref _refusedLoggedAt, nowMs, last) == last)
        {
            return Interlocked.Exchange(ref _refusedSinceLog, 0);
        }
        return 0;
    }

    /// <summary>One admitted connection's place; <see cref="Release"/> is idempotent.</summary>
    public sealed class Ticket(HandshakeAdmission owner)
    {
        private int _held = 1;

        public void Release()
        {
            if (Interlocked.Exchange(ref _held, 0) == 1)
            {
                Interlocked.Decrement(ref owner._handshaking);
            }
        }
    }
}
