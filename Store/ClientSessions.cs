using KvReplica.Protocol.Wire;

namespace KvReplica.Store;

/// <summary>
/// Exactly-once bookkeeping per client id: the results of the client's recent writes, so a retry
/// (same client id and sequence, possibly through another replica and so with a new stamp) gets
/// the first result instead of applying twice.
/// </summary>
/// <remarks>
/// A client may have many writes in flight and retries may be delivered out of sequence order,
/// so a single "highest sequence" would wrongly drop a late first attempt. Instead each session
/// keeps the results of sequences at or above the client's AckedBelow watermark (every sequence
/// below it has had its reply, so it will never be retried) and forgets the rest. Sessions are
/// evicted least-recently-used beyond a cap, counted in applied writes, identically everywhere.
/// </remarks>
internal sealed class ClientSessions(int maxSessions)
{
    private sealed class Session
    {
        public long Floor;
        public readonly SortedDictionary<long, ReplyStatus> Results = new();
        public LinkedListNode<ulong> RecencyNode = null!;
    }

    private readonly Dictionary<ulong, Session> _sessions = new();
    private readonly LinkedList<ulong> _recency = new();

    public int Count => _sessions.Count;

    /// <summary>
    /// True if (client, sequence) was applied before, with its result. Also advances the
    /// client's watermark to <paramref name="ackedBelow"/>, forgetting results below it.
    /// </summary>
    public bool TryGetResult(ulong clientId, long sequence, long ackedBelow, out ReplyStatus result)
    {
        result = ReplyStatus.Ok;
        if (!_sessions.TryGetValue(clientId, out var session))
        {
            return false;
        }
        Touch(session);
        if (ackedBelow > session.Floor)
        {
            session.Floor = ackedBelow;
            while (session.Results.Count > 0 && session.Results.Keys.First() < ackedBelow)
            {
                session.Results.Remove(session.Results.Keys.First());
            }
        }
        if (session.Results.TryGetValue(sequence, out result))
        {
            return true;
        }
        // Below the watermark the client has its reply already; this copy is a stale retry.
        // Its exact result is forgotten, but it must not apply again.
        return sequence < session.Floor;
    }

    public void Record(ulong clientId, long sequence, ReplyStatus result)
    {
        if (!_sessions.TryGetValue(clientId, out var session))
        {
            session = new Session();
            session.RecencyNode = _recency.AddLast(clientId);
            _sessions.Add(clientId, session);
            if (_sessions.Count > maxSessions)
            {
                ulong oldest = _recency.First!.Value;
                _recency.RemoveFirst();
                _sessions.Remove(oldest);
            }
        }
        else
        {
            Touch(session);
        }
        session.Results[sequence] = result;
    }

    /// <summary>Every session, least recently used first, with its watermark and remembered results.</summary>
    public IEnumerable<(ulong ClientId, long Floor, IReadOnlyList<(long Sequence, ReplyStatus Result)> Results)> Export()
    {
        foreach (ulong clientId in _recency)
        {
            var session = _sessions[clientId];
            yield return (clientId, session.Floor, [.. session.Results.Select(r => (r.Key, r.Value))]);
        }
    }

    /// <summary>Adds a session as most recently used (restoring in exported order rebuilds the recency list).</summary>
    public void Import(ulong clientId, long floor, IEnumerable<(long Sequence, ReplyStatus Result)> results)
    {
        var session = new Session { Floor = floor };
        foreach (var (sequence, result) in results)
        {
            session.Results[sequence] = result;
        }
        session.RecencyNode = _recency.AddLast(clientId);
        _sessions[clientId] = session;
    }

    private void Touch(Session session)
    {
        _recency.Remove(session.RecencyNode);
        _recency.AddLast(session.RecencyNode);
    }
}
