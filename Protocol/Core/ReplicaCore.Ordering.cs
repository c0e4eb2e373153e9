using KvReplica.Clock;
using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

// Ordering: stamping, multicasting, cumulative acknowledgement and delivery. The delivery rule
// itself lives in Clock/HoldBackQueue; this part feeds it and acts on what it releases.
public sealed partial class ReplicaCore
{
    // The per-origin vectors (held through, delivered through), the peers whose link starts
    // afresh and those not heard since start are in _progress (PeerProgress).
    // Writes this replica stamped since the last batch went out; the same batch goes to every peer.
    private readonly List<WriteEntry> _outgoingWrites = [];
    private bool _acksChanged;
    private long _lastBatchSentAt = long.MinValue / 2;

    // Writes this replica originated whose client is waiting for the delivery result.
    private readonly Dictionary<Stamp, (long ConnectionId, long RequestId)> _waitingWriters = new();
    // Same writes by deadline; deadlines grow with arrival, so a FIFO queue is sorted.
    private readonly Queue<(long Deadline, Stamp Stamp)> _writeDeadlines = new();

    // Held writes per key: the largest stamp and how many; a read of the key waits past that stamp.
    private readonly Dictionary<string, (Stamp Max, int Count)> _heldPerKey = new(StringComparer.Ordinal);

    private void StartWrite(long connectionId, ClientRequest request)
    {
        if (Unavailable() is { } unavailable)
        {
            ReplyError(connectionId, request.RequestId, unavailable.Code, unavailable.Message);
            return;
        }
        // Until every peer has sent a batch since this core started, it stamps no write: a peer's
        // first batch is what reveals (CheckNothingLost) that this replica came back with less
        // than it had sent, and a write stamped from a clock that went back could collide with a
        // stamp the peers already hold. Under all-member delivery no write could complete
        // without those peers anyway.
        if (AnyProgress(p => p.NotHeardSinceStart))
        {
            int[] notHeard = [.. _configured.Where(id => _progress[id].NotHeardSinceStart)];
            ReplyError(connectionId, request.RequestId, ErrorCode.Busy,
                $"replica {SelfId} is rejoining: waiting to hear from replica{(notHeard.Length > 1 ? "s" : "")} {string.Join(", ", notHeard)}; retry later");
            return;
        }
        if (_holdBack.Count >= _options.MaxPendingWrites)
        {
            ReplyError(connectionId, request.RequestId, ErrorCode.Busy,
                $"{_holdBack.Count} writes are waiting for acknowledgement from {DescribeMissingAcks()}; retry later");
            return;
        }
        var entry = new WriteEntry
        {
            Time = _clock.Tick(),
            Operation = request.Operation,
            Key = request.Operation == Operation.Txn ? "" : request.Key,
            Value = request.Operation is Operation.Put or Operation.Update or Operation.CompareAndSet ? request.Value : null,
            ClientId = request.ClientId,
            Sequence = request.Sequence,
            AckedBelow = request.AckedBelow,
            ExpectedTime = request.Operation == Operation.CompareAndSet ? request.ExpectedTime : 0,
            ExpectedReplica = request.Operation == Operation.CompareAndSet ? request.ExpectedReplica : 0,
            Txn = request.Operation == Operation.Txn ? request.Txn : null,
        };
        var stamp = new Stamp(entry.Time, SelfId);
        Hold(stamp, entry);
        _outgoingWrites.Add(entry);
        _waitingWriters[stamp] = (connectionId, request.RequestId);
        _writeDeadlines.Enqueue((_now + _options.WriteTimeoutMs, stamp));
        DeliverStable();
    }

    private void Hold(Stamp stamp, WriteEntry entry)
    {
        _ready.NewlyHeld.Add(ToCommand(stamp, entry));
        HoldWithoutLogging(stamp, entry);
    }

    private void HoldWithoutLogging(Stamp stamp, WriteEntry entry)
    {
        _holdBack.Add(stamp, entry);
        _holdBack.RecordAck(SelfId, stamp.ReplicaId, stamp.Time);
        _progress[stamp.ReplicaId].HeldThrough = stamp.Time;
        if (entry.Txn is null)
        {
            // The common case without an enumerator: this runs for every write.
            HoldKey(entry.Key, stamp);
        }
        else
        {
            foreach (string key in WriteCommand.WrittenKeys(entry.Txn))
            {
                HoldKey(key, stamp);
            }
        }
        _acksChanged = true;
    }

    private void HoldKey(string key, Stamp stamp)
    {
        _heldPerKey[key] = _heldPerKey.TryGetValue(key, out var held)
            ? (held.Max > stamp ? held.Max : stamp, held.Count + 1)
            : (stamp, 1);
    }

    private static WriteCommand ToCommand(Stamp stamp, WriteEntry entry) =>
        new(stamp, entry.Operation, entry.Key, entry.Value, entry.ClientId, entry.Sequence, entry.AckedBelow)
        {
            Expected = new Stamp(entry.ExpectedTime, entry.ExpectedReplica),
            Txn = entry.Txn,
        };

    private static WriteEntry ToEntry(WriteCommand command) => new()
    {
        Time = command.Stamp.Time,
        Operation = command.Operation,
        Key = command.Key,
        Value = command.Value,
        ClientId = command.ClientId,
        Sequence = command.Sequence,
        AckedBelow = command.AckedBelow,
        ExpectedTime = command.Expected.Time,
        ExpectedReplica = command.Expected.ReplicaId,
        Txn = command.Txn,
    };

    private void ReceiveBatch(int from, OrderBatch batch)
    {
        if (batch.View < _viewNumber)
        {
            // Sent before the sender installed this view (it is late, or the batch is: queued for
            // a process that restarted, or delayed by a partition). Its writes may be ones a view
            // change trimmed, and its vectors describe a state this view replaced; the sender
            // re-sends every undelivered write of its own when it installs this view. Only what
            // says it is alive counts: a wedge it waits on, and the echo for the read lease.
            NotePeerWedge(from, batch.WedgedFor);
            NoteSentAt(from, batch);
            return;
        }
        int duplicates = ValidateBatch(from, batch);
        if (duplicates < 0)
        {
            return;
        }
        _progress[from].NotHeardSinceStart = false;
        NotePeerWedge(from, batch.WedgedFor);
        if (batch.Suspects is not null && batch.View == _viewNumber)
        {
            _progress[from].ReportedSuspects = batch.Suspects;
        }
        NoteSentAt(from, batch);
        long newest = batch.Clock;
        for (int i = duplicates; i < batch.Writes.Length; i++)
        {
            var entry = batch.Writes[i];
            Hold(new Stamp(entry.Time, from), entry);
            newest = Math.Max(newest, entry.Time);
        }
        // One receive event: the clock moves past everything the batch carried (Lamport's rule).
        _clock.Witness(newest);
        // Acknowledgements count only within the view they were sent in: a member that has not
        // installed this view yet may be wedged in a later view change, and its frozen
        // acknowledgements must not let this view deliver what that change may trim.
        if (batch.View == _viewNumber)
        {
            for (int i = 0; i < batch.Origins.Length; i++)
            {
                _holdBack.RecordAck(from, batch.Origins[i], batch.HeldThrough[i]);
            }
            _progress[from].AckView = batch.View;
        }
        DeliverStable();
    }

    private void NoteSentAt(int from, OrderBatch batch)
    {
        var progress = _progress[from];
        progress.LastSentAt = Math.Max(progress.LastSentAt, batch.SentAt);
        if (batch.EchoSentAt <= _now)
        {
            progress.EchoedAt = Math.Max(progress.EchoedAt ?? 0, batch.EchoSentAt);
        }
    }

    // Checks the whole batch before any state changes, so a violation leaves the core untouched.
    // Returns how many leading writes are ones already held: a peer re-sends its undelivered
    // writes when a link starts afresh, and some of them may have arrived before. Returns -1,
    // with the core stopped, if the batch shows that this replica lost state.
    private int ValidateBatch(int from, OrderBatch batch)
    {
        if (batch.Writes is null || batch.Origins is null || batch.HeldThrough is null)
        {
            throw new ProtocolViolationException($"replica {from} sent a batch with a missing field");
        }
        if (batch.Origins.Length != batch.HeldThrough.Length)
        {
            throw new ProtocolViolationException($"replica {from} sent {batch.Origins.Length} ack origins but {batch.HeldThrough.Length} ack times");
        }
        if (batch.DeliveredThrough is null || (batch.DeliveredThrough.Length != 0 && batch.DeliveredThrough.Length != batch.Origins.Length))
        {
            throw new ProtocolViolationException($"replica {from} sent {batch.DeliveredThrough?.Length ?? 0} delivered times for {batch.Origins.Length} ack origins");
        }
        if (!CheckNothingLost(from, batch))
        {
            return -1;
        }
        long previous = _progress[from].HeldThrough;
        int duplicates = 0;
        for (int i = 0; i < batch.Writes.Length; i++)
        {
            var entry = batch.Writes[i];
            if (entry is null)
            {
                throw new ProtocolViolationException($"replica {from} sent a nil write");
            }
            if (duplicates == i && entry.Time <= _progress[from].HeldThrough)
            {
                duplicates++;
                continue;
            }
            var stamp = new Stamp(entry.Time, from);
            if (entry.Time <= previous || stamp <= _holdBack.LastDelivered)
            {
                throw new ProtocolViolationException($"replica {from} sent write {stamp} out of order (after {previous}.{from}, delivered through {_holdBack.LastDelivered})");
            }
            if (WriteShapeError(entry) is { } shapeError)
            {
                throw new ProtocolViolationException($"replica {from} sent write {stamp}: {shapeError}");
            }
            previous = entry.Time;
        }
        if (batch.Clock < previous)
        {
            throw new ProtocolViolationException($"replica {from} sent clock {batch.Clock} behind its own write at {previous}");
        }
        return duplicates;
    }

    // Delivers every write the hold-back queue releases, in stamp order, then wakes the reads
    // that were waiting for those writes.
    private void DeliverStable()
    {
        if (Wedged || Removed)
        {
            // A wedged member's view is being replaced; what it may still deliver is decided
            // by the next view's trim.
            return;
        }
        bool any = false;
        while (_holdBack.TryTakeDeliverable(out var stamp, out var entry))
        {
            any = true;
            _progress[stamp.ReplicaId].StableDeliveredThrough = stamp.Time;
            ForgetHeld(entry);
            Deliver(stamp, entry);
        }
        if (any)
        {
            ReleaseFencedReads();
        }
    }

    // Applies one write in total order and answers the client that is waiting for it here.
    private void Deliver(Stamp stamp, WriteEntry entry)
    {
        var command = ToCommand(stamp, entry);
        var result = _stateMachine.Apply(command, out bool duplicate);
        _ready.LastDelivered = stamp;
        _progress[stamp.ReplicaId].DeliveredThrough = Math.Max(_progress[stamp.ReplicaId].DeliveredThrough, stamp.Time);
        _ready.Delivered.Add(new DeliveredWrite(command, result, duplicate));
        Remember(stamp, entry);
        if (_waitingWriters.Remove(stamp, out var writer))
        {
            // The version the client sees: the write's own stamp when it wrote its key; the key's
            // current version when a compare-and-set found another (nothing was written). A retry
            // of a write already applied under another stamp reports none: the store keeps the
            // earlier result, not the stamp it was applied at (docs/protocol.md).
            var version = result == ReplyStatus.ConditionFailed && entry.Operation == Operation.CompareAndSet ? _stateMachine.Read(entry.Key).Version
                : duplicate ? Stamp.Zero
                : result == ReplyStatus.Ok && entry.Operation != Operation.Txn ? stamp
                : Stamp.Zero;
            var revision = duplicate ? Stamp.Zero : stamp;
            _ready.ReplyOutbox.Add(new ClientResponse(writer.ConnectionId, new ClientReply
            {
                RequestId = writer.RequestId,
                Status = result,
                VersionTime = version.Time,
                VersionReplica = version.ReplicaId,
                RevisionTime = revision.Time,
                RevisionReplica = revision.ReplicaId,
            }));
        }
        if (!duplicate && _watches.Count > 0)
        {
            NotifyWatches(stamp);
        }
    }

    // Sends this replica's new writes and cumulative acknowledgements as one batch to every peer.
    // Called once per TakeReady, so however many inputs arrived, each peer gets at most one batch.
    private void FlushOrderBatch()
    {
        if (_outgoingWrites.Count == 0 && !_acksChanged && !AnyProgress(p => p.ResendPending))
        {
            return;
        }
        _acksChanged = false;
        _lastBatchSentAt = _now;
        if (_peers.Length == 0 || Removed)
        {
            // Removed, it has nothing to acknowledge in any view, and its silence is what lets
            // members that still count it (it did not get the catch-up that would add it back)
            // suspect it if its rejoin does not happen.
            _outgoingWrites.Clear();
            ClearResends();
            return;
        }
        // Wedged, it acknowledges nothing beyond what it reported when it joined the view change.
        long[] ackTimes = _wedgedAcks is { } acked ? [.. _configured.Select(m => acked.GetValueOrDefault(m))] : [.. _configured.Select(m => _progress[m].HeldThrough)];
        long[] deliveredTimes = [.. _configured.Select(m => _progress[m].DeliveredThrough)];
        WriteEntry[] writes = [.. _outgoingWrites];
        _outgoingWrites.Clear();
        WriteEntry[]? undelivered = null;
        int[] suspects = SuspectedIds();
        foreach (int peer in _peers)
        {
            // Every undelivered write of ours, the ones just stamped included, oldest first, to
            // a peer whose link starts afresh; the new ones to the others.
            var progress = _progress[peer];
            if (progress.ResendPending)
            {
                undelivered ??= [.. _holdBack.HeldFrom(SelfId).Select(h => h.Item)];
            }
            _ready.Outbox.Add(new Outgoing(peer, new OrderBatch
            {
                Writes = progress.ResendPending ? undelivered! : writes,
                Origins = _configured,
                HeldThrough = ackTimes,
                Clock = _clock.Now,
                DeliveredThrough = deliveredTimes,
                WedgedFor = Wedged ? _promised : 0,
                View = _viewNumber,
                SentAt = _now,
                EchoSentAt = progress.LastSentAt,
                Suspects = suspects,
            }));
        }
        ClearResends();
    }

    // The hold-back queue's acknowledgements were all forgotten (a new view, or a new queue).
    private void ForgetAckProgress()
    {
        foreach (var progress in _progress.Values)
        {
            progress.AckView = null;
            progress.StableDeliveredThrough = 0;
        }
    }

    // Whether any replica's progress matches (a static predicate: no allocation on the write path).
    private bool AnyProgress(Func<PeerProgress, bool> predicate)
    {
        foreach (var progress in _progress.Values)
        {
            if (predicate(progress))
            {
                return true;
            }
        }
        return false;
    }

    private void ClearResends()
    {
        foreach (var progress in _progress.Values)
        {
            progress.ResendPending = false;
        }
    }

    // The held-through vector as it stands, frozen (what a wedged replica reports and acknowledges).
    private Dictionary<int, long> SnapshotHeldThrough() => _configured.ToDictionary(id => id, id => _progress[id].HeldThrough);

    // A held write is gone (delivered, or trimmed by a view change).
    private void ForgetHeld(WriteEntry entry)
    {
        if (entry.Txn is null)
        {
            ForgetHeld(entry.Key);
            return;
        }
        foreach (string key in WriteCommand.WrittenKeys(entry.Txn))
        {
            ForgetHeld(key);
        }
    }

    private void ForgetHeld(string key)
    {
        var held = _heldPerKey[key];
        if (held.Count == 1)
        {
            _heldPerKey.Remove(key);
        }
        else
        {
            _heldPerKey[key] = (held.Max, held.Count - 1);
        }
    }

    private void ExpireWrites()
    {
        while (_writeDeadlines.TryPeek(out var next) && next.Deadline <= _now)
        {
            _writeDeadlines.Dequeue();
            if (_waitingWriters.Remove(next.Stamp, out var writer))
            {
                // The write stays held and may still be delivered: the client must treat its
                // outcome as unknown, and a retry with the same sequence number is applied once.
                ReplyError(writer.ConnectionId, writer.RequestId, ErrorCode.NoMajority,
                    $"write not delivered within {_options.WriteTimeoutMs} ms: waiting for acknowledgement from {DescribeMissingAcks()}; outcome unknown");
            }
        }
    }

    private string DescribeMissingAcks()
    {
        if (!_holdBack.TryPeek(out var head, out _))
        {
            return "no replica";
        }
        var missing = _members.Where(m => m != head.ReplicaId && _holdBack.AckedThrough(m, head.ReplicaId) < head.Time).ToList();
        return missing.Count == 0 ? "no replica" : "replica " + string.Join(", ", missing);
    }
}
