using KvReplica.Clock;
using KvReplica.Protocol.Auth;
using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

// Watches: a client's stream of the changes to keys with a prefix, in delivery order. A watch
// starts after a revision: the changes after it come from the change history, then each
// delivered write's changes follow as it is delivered. Every replica delivers the same writes in
// the same order, so a client that resumes at another replica after the last revision it saw
// gets every later change once (docs/design.md, "Watches").
public sealed partial class ReplicaCore
{
    private sealed class ClientWatch(long connectionId, long requestId, string prefix, Stamp sentThrough)
    {
        public long ConnectionId { get; } = connectionId;
        public long RequestId { get; } = requestId;
        public string Prefix { get; } = prefix;
        // Changes at or before this revision were sent (or precede the watch's start).
        public Stamp SentThrough { get; set; } = sentThrough;
        public List<WatchEvent> Pending { get; } = [];
    }

    /// <summary>Most events in one watch reply; a revision's changes are never split across replies.</summary>
    public const int MaxEventsPerWatchReply = 1000;

    private readonly Dictionary<(long ConnectionId, long RequestId), ClientWatch> _watches = new();

    private void StartWatch(long connectionId, ClientRequest request)
    {
        var spec = request.Watch!;
        var after = spec.FromNow ? _holdBack.LastDelivered : new Stamp(spec.AfterTime, spec.AfterReplica);
        var start = _stateMachine.HistoryStart;
        if (after < start)
        {
            ReplyError(connectionId, request.RequestId, ErrorCode.Compacted,
                $"compacted: oldest revision is {Revision(start)}; read the keys again and watch from their revision");
            return;
        }
        var watch = new ClientWatch(connectionId, request.RequestId, spec.Prefix, after);
        _watches[(connectionId, request.RequestId)] = watch;
        // The first reply confirms the watch and names the revision it starts after.
        _ready.ReplyOutbox.Add(new ClientResponse(connectionId, new ClientReply
        {
            RequestId = request.RequestId,
            Status = ReplyStatus.Ok,
            Events = [],
            RevisionTime = after.Time,
            RevisionReplica = after.ReplicaId,
        }));
        foreach (var change in _stateMachine.ChangesAfter(after))
        {
            Offer(watch, change);
        }
        FlushWatch(watch, final: true);
    }

    // A write was delivered and applied (not a retry): its changes go to the watches they match.
    private void NotifyWatches(Stamp stamp)
    {
        var start = _stateMachine.HistoryStart;
        if (start >= stamp)
        {
            // The history could not even keep this write's changes (one larger than the whole
            // history's byte budget): no watch can be given them.
            foreach (var watch in _watches.Values.ToList())
            {
                EndWatch(watch, ErrorCode.Compacted, $"compacted: oldest revision is {Revision(start)}; a change was too large for the watch history");
            }
            return;
        }
        foreach (var change in _stateMachine.ChangesAfter(PastRevision.JustBefore(stamp)))
        {
            foreach (var watch in _watches.Values)
            {
                Offer(watch, change);
            }
        }
        foreach (var watch in _watches.Values)
        {
            FlushWatch(watch, final: false);
        }
    }

    private static void Offer(ClientWatch watch, KeyChange change)
    {
        if (change.Revision <= watch.SentThrough || AccessKeys.IsReserved(change.Key) || !change.Key.StartsWith(watch.Prefix, StringComparison.Ordinal))
        {
            return;
        }
        watch.Pending.Add(new WatchEvent
        {
            Key = change.Key,
            Deleted = change.Value is null,
            Value = change.Value,
            Time = change.Revision.Time,
            Replica = change.Revision.ReplicaId,
        });
    }

    // Sends a watch's pending events once they fill a reply, or all of them when final (the end
    // of a round): whole revisions only, so a client that resumes after the last revision it got
    // misses nothing.
    private void FlushWatch(ClientWatch watch, bool final)
    {
        while (watch.Pending.Count >= MaxEventsPerWatchReply || (final && watch.Pending.Count > 0))
        {
            int count = Math.Min(watch.Pending.Count, MaxEventsPerWatchReply);
            // Extend to the end of the last revision in the reply.
            while (count < watch.Pending.Count && SameRevision(watch.Pending[count], watch.Pending[count - 1]))
            {
                count++;
            }
            var events = watch.Pending.GetRange(0, count).ToArray();
            watch.Pending.RemoveRange(0, count);
            var last = new Stamp(events[^1].Time, events[^1].Replica);
            watch.SentThrough = last;
            _ready.ReplyOutbox.Add(new ClientResponse(watch.ConnectionId, new ClientReply
            {
                RequestId = watch.RequestId,
                Status = ReplyStatus.Ok,
                Events = events,
                RevisionTime = last.Time,
                RevisionReplica = last.ReplicaId,
            }));
        }
    }

    private static bool SameRevision(WatchEvent a, WatchEvent b) => a.Time == b.Time && a.Replica == b.Replica;

    private void FlushWatches()
    {
        foreach (var watch in _watches.Values)
        {
            FlushWatch(watch, final: true);
        }
    }

    private void EndWatch(ClientWatch watch, ErrorCode code, string message)
    {
        _watches.Remove((watch.ConnectionId, watch.RequestId));
        ReplyError(watch.ConnectionId, watch.RequestId, code, message);
    }

    /// <summary>
    /// Client connection <paramref name="connectionId"/> closed: its watches end. (Its other
    /// requests still complete; their replies are dropped by the driver.)
    /// </summary>
    public void OnClientClosed(long connectionId)
    {
        if (_watches.Count == 0)
        {
            return;
        }
        foreach (var key in _watches.Keys.Where(k => k.ConnectionId == connectionId).ToList())
        {
            _watches.Remove(key);
        }
    }
}
