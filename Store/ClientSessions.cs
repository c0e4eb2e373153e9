using KvReplica.Protocol.Wire;
using KvReplica.Store.Engine;

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
/// Recency is a counter bumped on every touch and stored with each session, so the engine keeps
/// the order across restarts. Changes since the last commit are tracked for the next one.
/// </remarks>
internal sealed class ClientSessions(int maxSessions)
{
    private sealed class Session(ulong clientId)
    {
        public ulong ClientId { get; } = clientId;
        public long Floor;
        public long LastTouched;
        public readonly SortedDictionary<long, ReplyStatus> Results = new();
        public LinkedListNode<Session> RecencyNode = null!;
    }

    private readonly Dictionary<ulong, Session> _sessions = new();
    private readonly LinkedList<Session> _recency = new();
    private readonly HashSet<ulong> _changed = [];
    private readonly HashSet<ulong> _forgotten = [];

    public int Count => _sessions.Count;

    /// <summary>The recency counter: <see cref="SessionRecord.LastTouched"/> of the most recent touch.</summary>
    public long Touches { get; private set; }

    /// <summary>Sessions changed or forgotten since the last <see cref="TakeChanges"/>.</summary>
    public int Changes => _changed.Count + _forgotten.Count;

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
            session = new Session(clientId);
            session.RecencyNode = _recency.AddLast(session);
            _sessions.Add(clientId, session);
            _forgotten.Remove(clientId);
            if (_sessions.Count > maxSessions)
            {
                var oldest = _recency.First!.Value;
                _recency.RemoveFirst();
                _sessions.Remove(oldest.ClientId);
                _changed.Remove(oldest.ClientId);
                _forgotten.Add(oldest.ClientId);
            }
        }
        Touch(session);
        session.Results[sequence] = result;
    }

    /// <summary>Every session, least recently used first, with its watermark and remembered results.</summary>
    public IEnumerable<SessionRecord> Export() => _recency.Select(ToRecord);

    /// <summary>Loads a stored session; load in <see cref="SessionRecord.LastTouched"/> order to rebuild the recency list.</summary>
    public void Import(SessionRecord record)
    {
        var session = new Session(record.ClientId) { Floor = record.Floor, LastTouched = record.LastTouched };
        for (int i = 0; i < record.Sequences.Length; i++)
        {
            session.Results[record.Sequences[i]] = record.Results[i];
        }
        session.RecencyNode = _recency.AddLast(session);
        _sessions[record.ClientId] = session;
        Touches = Math.Max(Touches, record.LastTouched);
    }

    /// <summary>Sets the recency counter (from the engine's applied point).</summary>
    public void RestoreTouches(long touches) => Touches = Math.Max(Touches, touches);

    /// <summary>The sessions written and forgotten since the last call, into <paramref name="batch"/>.</summary>
    public void TakeChanges(EngineBatch batch)
    {
        foreach (ulong clientId in _changed)
        {
            batch.SessionsWritten.Add(ToRecord(_sessions[clientId]));
        }
        batch.SessionsForgotten.AddRange(_forgotten);
        _changed.Clear();
        _forgotten.Clear();
    }

    private static SessionRecord ToRecord(Session session) =>
        new(session.ClientId, session.Floor, session.LastTouched, [.. session.Results.Keys], [.. session.Results.Values]);

    private void Touch(Session session)
    {
        if (session.RecencyNode.Next is not null)
        {
            _recency.Remove(session.RecencyNode);
            _recency.AddLast(session.RecencyNode);
        }
        session.LastTouched = ++Touches;
        _changed.Add(session.ClientId);
    }
}
