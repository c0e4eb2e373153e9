using System.Diagnostics.CodeAnalysis;
using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

// The shape of every peer message, checked at the core's entry before anything changes. A peer
// runs the same code with the same cluster.json, so what these checks reject no correct peer
// ever sends; they only keep a buggy or hostile one from reaching code that indexes arrays by
// what it is told, or from overflowing the Lamport clock. What a message means against this
// replica's state (FIFO order of writes, a state that went back in time) is checked where it is
// handled, still before any state changes (ValidateBatch).
public sealed partial class ReplicaCore
{
    private static ProtocolViolationException Malformed(int from, string what, string why) =>
        new($"replica {from} sent a malformed {what}: {why}");

    /// <summary>
    /// Throws <see cref="ProtocolViolationException"/> if <paramref name="message"/> from
    /// <paramref name="from"/> is not a message any correct replica of this cluster could send:
    /// a missing field, arrays of mismatched lengths, a replica id that is not configured (or
    /// twice in one list), a negative count, a time or view number beyond
    /// <see cref="Limits.MaxLamportTime"/> or beyond the sender's own clock.
    /// </summary>
    private void ValidateShape(int from, [NotNull] PeerMessage? message)
    {
        switch (message)
        {
            case null:
                throw Malformed(from, "message", "it is empty");
            case OrderBatch batch:
                ValidateBatchShape(from, batch);
                break;
            case ReadQuery query:
                if (RequestValidation.CheckKey(query.Key) is { } keyError)
                {
                    throw Malformed(from, "read query", keyError);
                }
                break;
            case ReadIndexQuery indexQuery:
                if (indexQuery.Keys is { } keys ? keys.Length is 0 or > Limits.MaxMultiKeys || keys.Any(k => RequestValidation.CheckKey(k) is not null)
                                                : RequestValidation.CheckPrefix(indexQuery.Prefix) is not null)
                {
                    throw Malformed(from, "read index query", "keys or prefix that no client request may carry");
                }
                break;
            case ReadIndexAnswer indexAnswer:
                CheckTime(from, "read index answer", "fence time", indexAnswer.FenceTime);
                CheckReplicaOrZero(from, "read index answer", "fence replica", indexAnswer.FenceReplica);
                break;
            case ReadAnswer answer:
                CheckTime(from, "read answer", "version time", answer.VersionTime);
                CheckReplicaOrZero(from, "read answer", "version replica", answer.VersionReplica);
                if (answer.Found && answer.Value is null)
                {
                    throw Malformed(from, "read answer", "a value found but none carried");
                }
                break;
            case ViewPropose propose:
                CheckView(from, "view proposal", propose.Number, allowZero: false);
                CheckReplicas(from, "view proposal", "members", propose.Members, allowEmpty: false);
                break;
            case ViewJoin join:
                ValidateJoinShape(from, join);
                break;
            case ViewInstall install:
                ValidateInstallShape(from, install);
                break;
            case JoinRequest request:
                CheckTime(from, "join request", "delivered time", request.DeliveredTime);
                CheckReplicaOrZero(from, "join request", "delivered replica", request.DeliveredReplica);
                CheckView(from, "join request", request.View, allowZero: true);
                break;
            case JoinRefused refused:
                CheckTime(from, "join refusal", "kept-after time", refused.KeptAfterTime);
                CheckReplicaOrZero(from, "join refusal", "kept-after replica", refused.KeptAfterReplica);
                CheckView(from, "join refusal", refused.ViewNumber, allowZero: true);
                break;
            case CatchUpWrites catchUp:
                ValidateCatchUpShape(from, catchUp);
                break;
            default:
                throw new ProtocolViolationException($"replica {from} sent an unexpected peer message {message.GetType().Name}");
        }
    }

    private void ValidateBatchShape(int from, OrderBatch batch)
    {
        const string what = "order batch";
        if (batch.Writes is null || batch.Origins is null || batch.HeldThrough is null || batch.DeliveredThrough is null || batch.Suspects is null)
        {
            throw Malformed(from, what, "a missing field");
        }
        CheckTime(from, what, "clock", batch.Clock);
        CheckView(from, what, batch.View, allowZero: true);
        CheckView(from, what, batch.WedgedFor, allowZero: true);
        if (batch.SentAt < 0 || batch.EchoSentAt < 0)
        {
            throw Malformed(from, what, $"negative send time {batch.SentAt} or echo {batch.EchoSentAt}");
        }
        if (batch.Origins.Length != batch.HeldThrough.Length)
        {
            throw Malformed(from, what, $"{batch.Origins.Length} ack origins but {batch.HeldThrough.Length} ack times");
        }
        if (batch.DeliveredThrough.Length != 0 && batch.DeliveredThrough.Length != batch.Origins.Length)
        {
            throw Malformed(from, what, $"{batch.DeliveredThrough.Length} delivered times for {batch.Origins.Length} ack origins");
        }
        CheckReplicas(from, what, "ack origins", batch.Origins, allowEmpty: true);
        CheckReplicas(from, what, "suspects", batch.Suspects, allowEmpty: true);
        // The sender's clock has witnessed every write it holds or delivered (Lamport's rule on
        // every receive), so no acknowledgement or delivered time can be ahead of it.
        for (int i = 0; i < batch.HeldThrough.Length; i++)
        {
            CheckTime(from, what, "ack time", batch.HeldThrough[i], atMost: batch.Clock);
        }
        foreach (long delivered in batch.DeliveredThrough)
        {
            CheckTime(from, what, "delivered time", delivered, atMost: batch.Clock);
        }
        foreach (var write in batch.Writes)
        {
            CheckWrite(from, what, write, atMost: batch.Clock);
        }
    }

    private void ValidateJoinShape(int from, ViewJoin join)
    {
        const string what = "view join";
        CheckView(from, what, join.Number, allowZero: false);
        CheckVector(from, what, join.Origins, join.HeldThrough);
        CheckTime(from, what, "delivered time", join.DeliveredTime);
        CheckReplicaOrZero(from, what, "delivered replica", join.DeliveredReplica);
        if (join.InstalledView is { } installed)
        {
            ValidateInstallShape(from, installed);
        }
    }

    private void ValidateInstallShape(int from, ViewInstall install)
    {
        const string what = "view install";
        CheckView(from, what, install.Number, allowZero: false);
        CheckReplicas(from, what, "members", install.Members, allowEmpty: false);
        CheckReplicas(from, what, "trimmed origins", install.TrimOrigins, allowEmpty: true);
        CheckReplicas(from, what, "caught-up members", install.CaughtUp, allowEmpty: true);
        if (install.TrimTimes is null || install.TrimTimes.Length != install.TrimOrigins.Length)
        {
            throw Malformed(from, what, $"{install.TrimOrigins.Length} trimmed origins but {install.TrimTimes?.Length ?? 0} trim times");
        }
        foreach (long through in install.TrimTimes)
        {
            CheckTime(from, what, "trim time", through);
        }
        // Only removed members are trimmed, and only members are caught up.
        if (install.TrimOrigins.Any(o => Array.IndexOf(install.Members, o) >= 0))
        {
            throw Malformed(from, what, "a member's writes trimmed");
        }
        if (install.CaughtUp.Any(m => Array.IndexOf(install.Members, m) < 0))
        {
            throw Malformed(from, what, "a caught-up replica that is not a member");
        }
    }

    private void ValidateCatchUpShape(int from, CatchUpWrites catchUp)
    {
        const string what = "catch-up";
        CheckView(from, what, catchUp.ViewNumber, allowZero: false);
        CheckTime(from, what, "clock", catchUp.Clock);
        CheckVector(from, what, catchUp.Origins, catchUp.HeldThrough);
        foreach (long held in catchUp.HeldThrough)
        {
            CheckTime(from, what, "held-through time", held, atMost: catchUp.Clock);
        }
        if (catchUp.Delivered is null || catchUp.Held is null)
        {
            throw Malformed(from, what, "a missing write list");
        }
        // Both lists are in stamp order (delivery order, and the coordinator's held writes
        // sorted): a repeated or backward stamp would be held twice or out of FIFO order.
        foreach (var writes in new[] { catchUp.Delivered, catchUp.Held })
        {
            Clock.Stamp previous = Clock.Stamp.Zero;
            foreach (var carried in writes)
            {
                if (carried is null)
                {
                    throw Malformed(from, what, "a nil write");
                }
                CheckReplica(from, what, "write origin", carried.Origin);
                CheckWrite(from, what, carried.Write, atMost: catchUp.Clock);
                var stamp = new Clock.Stamp(carried.Write.Time, carried.Origin);
                if (stamp <= previous)
                {
                    throw Malformed(from, what, $"write {stamp} after {previous}");
                }
                previous = stamp;
            }
        }
    }

    // One write as a peer carries it: its own (in a batch) or another origin's (in a catch-up).
    private static void CheckWrite(int from, string what, WriteEntry? write, long atMost)
    {
        if (write is null)
        {
            throw Malformed(from, what, "a nil write");
        }
        if (write.Time < 1 || write.Time > atMost)
        {
            throw Malformed(from, what, $"a write at time {write.Time}, outside 1..{atMost} (the sender's clock)");
        }
        if (WriteShapeError(write) is { } error)
        {
            throw Malformed(from, what, $"write {write.Time}: {error}");
        }
    }

    // What is wrong with the shape of a write a peer sent (value sizes are the origin's to check).
    private static string? WriteShapeError(WriteEntry write)
    {
        switch (write.Operation)
        {
            case Operation.Put or Operation.Update or Operation.CompareAndSet:
                if (write.Value is null)
                {
                    return $"a {write.Operation} without a value";
                }
                break;
            case Operation.Delete:
                break;
            case Operation.Txn:
                return RequestValidation.CheckTxn(write.Txn, int.MaxValue);
            default:
                return $"operation {(int)write.Operation}";
        }
        if (write.Operation == Operation.CompareAndSet && (write.ExpectedTime < 0 || write.ExpectedTime > Limits.MaxLamportTime || (write.ExpectedTime == 0) != (write.ExpectedReplica == 0)))
        {
            return $"expected version {write.ExpectedTime}.{write.ExpectedReplica} is not a stamp";
        }
        return RequestValidation.CheckKey(write.Key);
    }

    // A per-origin vector: every configured replica exactly once, each with a time.
    private void CheckVector(int from, string what, int[]? origins, long[]? times)
    {
        if (origins is null || times is null || origins.Length != times.Length)
        {
            throw Malformed(from, what, $"{origins?.Length ?? 0} origins but {times?.Length ?? 0} times");
        }
        CheckReplicas(from, what, "origins", origins, allowEmpty: false);
        if (origins.Length != _configured.Length)
        {
            throw Malformed(from, what, $"{origins.Length} origins for {_configured.Length} configured replicas");
        }
        foreach (long time in times)
        {
            CheckTime(from, what, "time", time);
        }
    }

    private void CheckReplicas(int from, string what, string field, int[]? ids, bool allowEmpty)
    {
        if (ids is null || (!allowEmpty && ids.Length == 0))
        {
            throw Malformed(from, what, $"no {field}");
        }
        for (int i = 0; i < ids.Length; i++)
        {
            CheckReplica(from, what, field, ids[i]);
            if (Array.IndexOf(ids, ids[i], 0, i) >= 0)
            {
                throw Malformed(from, what, $"replica {ids[i]} twice in its {field}");
            }
        }
    }

    private void CheckReplica(int from, string what, string field, int id)
    {
        if (Array.BinarySearch(_configured, id) < 0)
        {
            throw Malformed(from, what, $"{field} names replica {id}, which is not configured");
        }
    }

    // The replica half of a stamp that may be Stamp.Zero ("nothing delivered yet").
    private void CheckReplicaOrZero(int from, string what, string field, int id)
    {
        if (id != 0)
        {
            CheckReplica(from, what, field, id);
        }
    }

    private static void CheckTime(int from, string what, string field, long time, long atMost = Limits.MaxLamportTime)
    {
        if (time < 0 || time > atMost)
        {
            throw Malformed(from, what, $"{field} {time} outside 0..{atMost}");
        }
    }

    private static void CheckView(int from, string what, long number, bool allowZero)
    {
        if (number < (allowZero ? 0 : 1) || number > Limits.MaxLamportTime)
        {
            throw Malformed(from, what, $"view number {number} outside {(allowZero ? 0 : 1)}..{Limits.MaxLamportTime}");
        }
    }
}
