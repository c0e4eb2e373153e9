using KvReplica.Clock;
using KvReplica.Protocol.Auth;
using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

// Reads of many keys: MGET and the pages of a scan. Answering them by vote, as a GET is, would
// ship every key from a majority; instead the reading replica asks a majority for a read index
// (each answers the largest of its delivered point and the stamps it holds of writes to those
// keys), waits until it has delivered through the largest, and answers from its own state at that
// point. A write that completed before the read began is held by every member, so it is at or
// behind every member's index; the majority makes a replica that was removed without knowing it
// wait for writes it will never get, instead of answering stale (docs/design.md, "Reads of many
// keys"). A scan's later pages name the revision of its first page and are read at it, through
// the change history, at any replica that has delivered that far.
public sealed partial class ReplicaCore
{
    private sealed class PendingRangeRead(long connectionId, ClientRequest request, int needed, long deadline)
    {
        public long ConnectionId { get; } = connectionId;
        public ClientRequest Request { get; } = request;
        public int Needed { get; } = needed;
        public long Deadline { get; } = deadline;
        public int Answers { get; set; }
        public Stamp Fence { get; set; }
        // Set once enough replicas answered: it waits for delivery through Fence.
        public bool Indexed { get; set; }
    }

    private readonly Dictionary<long, PendingRangeRead> _pendingRangeReads = new();
    private readonly PriorityQueue<long, Stamp> _rangeReadsAwaitingDelivery = new();

    private void StartRangeRead(long connectionId, ClientRequest request)
    {
        long readId = ++_nextReadId;
        var revision = request.Scan is { } scan ? new Stamp(scan.RevisionTime, scan.RevisionReplica) : Stamp.Zero;
        if (revision != Stamp.Zero)
        {
            // A later page: the revision is a point of the order, the same state everywhere that
            // delivered it; no vote is needed, only delivery that far.
            var later = new PendingRangeRead(connectionId, request, 1, _now + _options.ReadTimeoutMs) { Answers = 1, Fence = revision };
            _pendingRangeReads[readId] = later;
            _readDeadlines.Enqueue((later.Deadline, readId));
            Indexed(readId, later);
            return;
        }
        if (Unavailable() is { Code: ErrorCode.NoMajority } unavailable && (request.ReadMode == ReadMode.Majority || Removed))
        {
            ReplyError(connectionId, request.RequestId, unavailable.Code, unavailable.Message);
            return;
        }
        int needed = request.ReadMode == ReadMode.Local && LocalReadLeaseHeld() ? 1 : Majority;
        var read = new PendingRangeRead(connectionId, request, needed, _now + _options.ReadTimeoutMs)
        {
            Answers = 1,
            Fence = ReadIndex(request.Keys, request.Scan?.Prefix ?? ""),
        };
        _pendingRangeReads[readId] = read;
        _readDeadlines.Enqueue((read.Deadline, readId));
        if (needed > 1)
        {
            var query = new ReadIndexQuery { ReadId = readId, Keys = request.Keys, Prefix = request.Scan?.Prefix ?? "" };
            foreach (int peer in _peers)
            {
                _ready.Outbox.Add(new Outgoing(peer, query));
            }
            return;
        }
        Indexed(readId, read);
    }

    // The point a read of these keys must wait for here: everything delivered, and every held
    // write to one of them.
    private Stamp ReadIndex(string[]? keys, string prefix)
    {
        var fence = _holdBack.LastDelivered;
        if (keys is not null)
        {
            foreach (string key in keys)
            {
                if (_heldPerKey.TryGetValue(key, out var held) && held.Max > fence)
                {
                    fence = held.Max;
                }
            }
            return fence;
        }
        foreach (var (key, held) in _heldPerKey)
        {
            if (held.Max > fence && key.StartsWith(prefix, StringComparison.Ordinal))
            {
                fence = held.Max;
            }
        }
        return fence;
    }

    private void ReceiveReadIndexQuery(int from, ReadIndexQuery query)
    {
        var fence = ReadIndex(query.Keys, query.Prefix);
        _ready.Outbox.Add(new Outgoing(from, new ReadIndexAnswer { ReadId = query.ReadId, FenceTime = fence.Time, FenceReplica = fence.ReplicaId }));
    }

    private void ReceiveReadIndexAnswer(ReadIndexAnswer answer)
    {
        // Answers to reads that already completed or timed out are expected and ignored.
        if (!_pendingRangeReads.TryGetValue(answer.ReadId, out var read) || read.Indexed)
        {
            return;
        }
        read.Answers++;
        var fence = new Stamp(answer.FenceTime, answer.FenceReplica);
        if (fence > read.Fence)
        {
            read.Fence = fence;
        }
        if (read.Answers >= read.Needed)
        {
            Indexed(answer.ReadId, read);
        }
    }

    private void Indexed(long readId, PendingRangeRead read)
    {
        read.Indexed = true;
        if (read.Fence <= _holdBack.LastDelivered)
        {
            AnswerRangeRead(readId, read);
        }
        else
        {
            _rangeReadsAwaitingDelivery.Enqueue(readId, read.Fence);
        }
    }

    private void ReleaseRangeReads()
    {
        while (_rangeReadsAwaitingDelivery.TryPeek(out long readId, out var fence) && fence <= _holdBack.LastDelivered)
        {
            _rangeReadsAwaitingDelivery.Dequeue();
            if (_pendingRangeReads.TryGetValue(readId, out var read))
            {
                AnswerRangeRead(readId, read);
            }
        }
    }

    private void AnswerRangeRead(long readId, PendingRangeRead read)
    {
        _pendingRangeReads.Remove(readId);
        var request = read.Request;
        var at = _holdBack.LastDelivered;
        var reply = new ClientReply { RequestId = request.RequestId, Status = ReplyStatus.Ok, RevisionTime = at.Time, RevisionReplica = at.ReplicaId };
        if (request.Keys is { } keys)
        {
            reply.Entries = [.. keys.Select(key => ToKeyValue(key, _stateMachine.Read(key)))];
        }
        else if (request.Scan is { } scan)
        {
            var revision = scan.RevisionTime == 0 ? at : new Stamp(scan.RevisionTime, scan.RevisionReplica);
            if (revision < _stateMachine.HistoryStart && revision != at)
            {
                ReplyError(read.ConnectionId, request.RequestId, ErrorCode.Compacted,
                    $"compacted: oldest revision is {Revision(_stateMachine.HistoryStart)}; this scan's revision {Revision(revision)} is gone here, start the scan again");
                return;
            }
            var range = ScanRange(scan);
            var entries = revision == at ? _stateMachine.Scan(range) : PastRevision.Scan(_stateMachine.Scan(range), _stateMachine.ChangesAfter(revision), range);
            var page = new List<KeyValue>(Math.Min(scan.Limit, 1024));
            foreach (var entry in entries)
            {
                if (page.Count == scan.Limit)
                {
                    reply.More = true;
                    break;
                }
                page.Add(new KeyValue
                {
                    Key = entry.Key,
                    Found = true,
                    Value = scan.KeysOnly ? null : entry.Value,
                    VersionTime = entry.Version.Time,
                    VersionReplica = entry.Version.ReplicaId,
                });
            }
            reply.Entries = [.. page];
            reply.RevisionTime = revision.Time;
            reply.RevisionReplica = revision.ReplicaId;
        }
        _ready.ReplyOutbox.Add(new ClientResponse(read.ConnectionId, reply));
    }

    // The keys a scan page covers: after the cursor, with the prefix, never the reserved keys
    // (users and roles) that sort first.
    private static KeyRange ScanRange(ScanRequest scan)
    {
        // The smallest key after k in UTF-8 order is k followed by a NUL character.
        string start = scan.After is { } after ? after + "\0" : scan.Prefix;
        if (scan.Prefix.Length == 0 && KeyOrder.Instance.Compare(start, AccessKeys.FirstUnreserved) < 0)
        {
            start = AccessKeys.FirstUnreserved;
        }
        return new KeyRange(start, null, scan.Prefix);
    }

    private static KeyValue ToKeyValue(string key, StoredValue value) => new()
    {
        Key = key,
        Found = value.Found,
        Value = value.Found ? value.Value : null,
        VersionTime = value.Found ? value.Version.Time : 0,
        VersionReplica = value.Found ? value.Version.ReplicaId : 0,
    };

    // A revision as people read and type it: time.replica.
    private static string Revision(Stamp stamp) => $"{stamp.Time}.{stamp.ReplicaId}";

    private void ExpireRangeRead(long readId)
    {
        if (_pendingRangeReads.Remove(readId, out var read))
        {
            string why = read.Indexed
                ? $"not delivered through {Revision(read.Fence)} here within {_options.ReadTimeoutMs} ms"
                : $"no majority: {read.Answers} of {_members.Length} replicas answered within {_options.ReadTimeoutMs} ms (need {read.Needed})";
            ReplyError(read.ConnectionId, read.Request.RequestId, ErrorCode.NoMajority, why);
        }
    }
}
