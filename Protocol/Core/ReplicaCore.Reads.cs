using KvReplica.Clock;
using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

// Reads. A replica answers a read of key k only after it has delivered every write to k that it
// held when the read arrived (the read fence). A write is acknowledged to its client only once
// every member holds it, so every write completed before the read began is behind the fence at
// every replica; docs/design.md ("Reads") gives the full linearizability argument.
public sealed partial class ReplicaCore
{
    private sealed class PendingRead(long connectionId, long requestId, int needed, long deadline, bool valueWanted)
    {
        public bool ValueWanted { get; } = valueWanted;
        public long ConnectionId { get; } = connectionId;
        public long RequestId { get; } = requestId;
        public int Needed { get; } = needed;
        public long Deadline { get; } = deadline;
        public int Answers { get; set; }
        public StoredValue Freshest { get; set; }
    }

    private readonly record struct FenceWait(int ReplyTo, long ReadId, string Key);

    private long _nextReadId;
    private readonly Dictionary<long, PendingRead> _pendingReads = new();
    private readonly Queue<(long Deadline, long ReadId)> _readDeadlines = new();
    private readonly PriorityQueue<FenceWait, Stamp> _fencedReads = new();

    private void StartRead(long connectionId, ClientRequest request)
    {
        if (Unavailable() is { Code: ErrorCode.NoMajority } unavailable && (request.ReadMode == ReadMode.Majority || Removed))
        {
            ReplyError(connectionId, request.RequestId, unavailable.Code, unavailable.Message);
            return;
        }
        long readId = ++_nextReadId;
        int needed = request.ReadMode == ReadMode.Local && LocalReadLeaseHeld() ? 1 : Majority;
        _pendingReads[readId] = new PendingRead(connectionId, request.RequestId, needed, _now + _options.ReadTimeoutMs, request.Operation == Operation.Get);
        _readDeadlines.Enqueue((_now + _options.ReadTimeoutMs, readId));
        if (needed > 1)
        {
            var query = new ReadQuery { ReadId = readId, Key = request.Key };
            foreach (int peer in _peers)
            {
                _ready.Outbox.Add(new Outgoing(peer, query));
            }
        }
        AnswerWhenFenced(new FenceWait(SelfId, readId, request.Key));
    }

    private void ReceiveReadQuery(int from, ReadQuery query)
    {
        string? keyError = RequestValidation.CheckKey(query.Key);
        if (keyError is not null)
        {
            throw new ProtocolViolationException($"replica {from} sent read query {query.ReadId}: {keyError}");
        }
        AnswerWhenFenced(new FenceWait(from, query.ReadId, query.Key));
    }

    private void AnswerWhenFenced(FenceWait wait)
    {
        if (_heldPerKey.TryGetValue(wait.Key, out var held))
        {
            _fencedReads.Enqueue(wait, held.Max);
        }
        else
        {
            Answer(wait);
        }
    }

    private void ReleaseFencedReads()
    {
        while (_fencedReads.TryPeek(out var wait, out var fence) && fence <= _holdBack.LastDelivered)
        {
            _fencedReads.Dequeue();
            Answer(wait);
        }
        ReleaseRangeReads();
    }

    // The queries of a peer's old incarnation: its reads died with it (see OnPeerRestarted).
    private void DropFencedReadsFor(int peer)
    {
        if (!_fencedReads.UnorderedItems.Any(w => w.Element.ReplyTo == peer))
        {
            return;
        }
        var keep = _fencedReads.UnorderedItems.Where(w => w.Element.ReplyTo != peer).ToList();
        _fencedReads.Clear();
        _fencedReads.EnqueueRange(keep);
    }

    private void Answer(FenceWait wait)
    {
        var value = _stateMachine.Read(wait.Key);
        if (!value.Found)
        {
            // "Absent as of everything delivered here": comparable with a value's version, so
            // that a fresh answer that the key was deleted outranks a stale answer that still
            // has it (a replica removed without knowing it yet can give one).
            value = value with { Version = _holdBack.LastDelivered };
        }
        if (wait.ReplyTo == SelfId)
        {
            Collect(wait.ReadId, value);
            return;
        }
        _ready.Outbox.Add(new Outgoing(wait.ReplyTo, new ReadAnswer
        {
            ReadId = wait.ReadId,
            Found = value.Found,
            Value = value.Value,
            VersionTime = value.Version.Time,
            VersionReplica = value.Version.ReplicaId,
        }));
    }

    private void ReceiveReadAnswer(int from, ReadAnswer answer)
    {
        // Answers to reads that already completed or timed out are expected and ignored.
        Collect(answer.ReadId, new StoredValue(answer.Found, answer.Value, new Stamp(answer.VersionTime, answer.VersionReplica)));
    }

    private void Collect(long readId, StoredValue value)
    {
        if (!_pendingReads.TryGetValue(readId, out var read))
        {
            return;
        }
        read.Answers++;
        if (read.Answers == 1 || value.Version > read.Freshest.Version)
        {
            read.Freshest = value;
        }
        if (read.Answers < read.Needed)
        {
            return;
        }
        _pendingReads.Remove(readId);
        var freshest = read.Freshest;
        _ready.ReplyOutbox.Add(new ClientResponse(read.ConnectionId, new ClientReply
        {
            RequestId = read.RequestId,
            Status = freshest.Found ? ReplyStatus.Ok : ReplyStatus.NotFound,
            Value = freshest.Found && read.ValueWanted ? freshest.Value : null,
            VersionTime = freshest.Found ? freshest.Version.Time : 0,
            VersionReplica = freshest.Found ? freshest.Version.ReplicaId : 0,
        }));
    }

    private void ExpireReads()
    {
        while (_readDeadlines.TryPeek(out var next) && next.Deadline <= _now)
        {
            _readDeadlines.Dequeue();
            if (_pendingReads.Remove(next.ReadId, out var read))
            {
                ReplyError(read.ConnectionId, read.RequestId, ErrorCode.NoMajority,
                    $"no majority: {read.Answers} of {_members.Length} replicas answered within {_options.ReadTimeoutMs} ms (need {read.Needed})");
            }
            else
            {
                ExpireRangeRead(next.ReadId);
            }
        }
    }
}
