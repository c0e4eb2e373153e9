using KvReplica.Client.Transport;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client;

// Requests: each operation is numbered, pipelined on the current connection, matched to its reply
// by request id, and sent again (same id, client id and sequence number) after a failover or a
// retryable refusal, until it succeeds, is refused for good, or its deadline passes.
public sealed partial class KvClient
{
    private static readonly TimeSpan MaxRetryPause = TimeSpan.FromSeconds(1);

    private Task<ClientReply> ExecuteAsync(Operation operation, string key, byte[]? value, CancellationToken ct) =>
        ExecuteAsync(new ClientRequest { Operation = operation, Key = key ?? "", Value = value }, ct);

    /// <summary>
    /// Sends <paramref name="template"/> (its operation and operands; the request id, client id,
    /// sequence number and read mode are filled in here) until it succeeds, is refused for good,
    /// or the deadline passes.
    /// </summary>
    private async Task<ClientReply> ExecuteAsync(ClientRequest template, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
        bool isWrite = RequestValidation.IsWrite(template.Operation);
        // Validate with a stand-in sequence number first, so a rejected request does not use one up.
        template.Sequence = isWrite ? 1 : 0;
        string? invalid = RequestValidation.Check(template, _config.MaxValueBytes);
        if (invalid is not null)
        {
            throw KvExceptionFactory.InvalidRequest(invalid);
        }

        var pending = new PendingRequest(template, isWrite, isWrite ? BeginWrite() : 0, Interlocked.Increment(ref _lastRequestId));
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct, _disposed.Token);
        deadline.CancelAfter(_requestTimeout);
        try
        {
            while (true)
            {
                if (await AttemptAsync(pending, deadline.Token).ConfigureAwait(false) is { } reply)
                {
                    return reply;
                }
            }
        }
        catch (OperationCanceledException) when (_disposed.IsCancellationRequested)
        {
            throw KvExceptionFactory.DisposedInFlight();
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw TimedOut(pending);
        }
        finally
        {
            _awaitingReply.TryRemove(pending.RequestId, out _);
            if (isWrite)
            {
                if (pending.OutcomeUnknown)
                {
                    _ = ForgetAbandonedWriteLaterAsync(pending.Sequence);
                }
                else
                {
                    ForgetWrite(pending.Sequence);
                }
            }
        }
    }

    /// <summary>
    /// One try on the current connection: the reply when it succeeded, null to try again (the
    /// connection failed, or the replica asked to retry), an exception when the request is finished.
    /// </summary>
    private async Task<ClientReply?> AttemptAsync(PendingRequest pending, CancellationToken deadline)
    {
        ReplicaConnection connection;
        try
        {
            connection = await GetConnectionAsync(deadline).ConfigureAwait(false);
        }
        catch (NoReplicaReachableException e)
        {
            // No replica runs at all: fail now rather than at the deadline, unless this is a write
            // that may already be in the cluster, whose outcome only a later reply can tell.
            if (e.EveryReplicaRejected || (e.EveryConnectionRefused && !(pending.IsWrite && pending.OutcomeUnknown)))
            {
                throw KvExceptionFactory.Unavailable(e.Message, e.EveryReplicaRejected);
            }
            pending.Problem(e.Message);
            await Task.Delay(RetryPause(pending.Pauses++), deadline).ConfigureAwait(false);
            return null;
        }

        var replyArrived = new TaskCompletionSource<ClientReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        _awaitingReply[pending.RequestId] = replyArrived;
        if (!connection.TrySend(pending.ToRequest(ClientId, pending.IsWrite ? AckedBelow() : 0, _readMode)))
        {
            return null;
        }
        pending.OutcomeUnknown = true;
        if (await AwaitReplyAsync(connection, replyArrived.Task, pending, deadline).ConfigureAwait(false) is not { } reply)
        {
            return null;
        }
        if (reply.Status is ReplyStatus.Ok or ReplyStatus.NotFound or ReplyStatus.ConditionFailed)
        {
            pending.OutcomeUnknown = false;
            return reply;
        }
        await OnErrorReplyAsync(connection, reply, pending, deadline).ConfigureAwait(false);
        return null;
    }

    /// <summary>The reply, or null when the connection closed or the replica stayed silent (the request then moves on).</summary>
    private async Task<ClientReply?> AwaitReplyAsync(ReplicaConnection connection, Task<ClientReply> replyArrived, PendingRequest pending, CancellationToken deadline)
    {
        Task first;
        try
        {
            // (With one replica there is nowhere else to go: wait for it.)
            var either = Task.WhenAny(replyArrived, connection.Closed);
            first = await (_candidates.Length > 1 ? either.WaitAsync(_silentReplicaTimeout, deadline) : either.WaitAsync(deadline)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Paused (SIGSTOP, a long GC) or cut off while its socket stays open: move
            // this and every other request on the connection to the next replica.
            string problem = $"{connection.Address} did not answer within {_silentReplicaTimeout.TotalMilliseconds:0} ms";
            pending.Problem(problem);
            connection.Close(problem);
            return null;
        }
        if (first != replyArrived)
        {
            pending.Problem($"lost the connection to {connection.Address}: {connection.CloseReason}");
            // Fail over at once the first time; a replica that keeps accepting and then
            // dropping the request must not turn this into a busy loop.
            if (++pending.ConnectionsLost > 1)
            {
                await Task.Delay(RetryPause(pending.Pauses++), deadline).ConfigureAwait(false);
            }
            return null;
        }
        return replyArrived.Result;
    }

    /// <summary>Retries after a retryable refusal (moving to another replica where that helps); throws for a final one.</summary>
    private async Task OnErrorReplyAsync(ReplicaConnection connection, ClientReply reply, PendingRequest pending, CancellationToken deadline)
    {
        pending.LastErrorReply = reply;
        pending.LastProblem = $"{connection.Address}: {KvExceptionFactory.Describe(reply)}";
        switch (reply.Error)
        {
            case ErrorCode.ShuttingDown:
                // The replica is going away: move every request on this connection elsewhere now.
                connection.Close($"{connection.Address} is shutting down");
                break;
            case ErrorCode.NoMajority:
                // This replica cannot reach a majority (it may sit on the minority side of a
                // partition); another one may. Pause so a cluster without any majority is not hammered.
                connection.Close($"{connection.Address} has no majority");
                await Task.Delay(RetryPause(pending.Pauses++), deadline).ConfigureAwait(false);
                break;
            case ErrorCode.Busy:
                await Task.Delay(RetryPause(pending.Pauses++), deadline).ConfigureAwait(false);
                break;
            default:
                // A refusal such as InvalidRequest is final: the write will never be applied.
                pending.OutcomeUnknown = false;
                throw KvExceptionFactory.Refused(reply);
        }
    }

    /// <summary>The deadline passed: the last error reply, the last connect failure, or a timeout, in that order.</summary>
    private Exception TimedOut(PendingRequest pending)
    {
        if (pending.LastErrorReply is { } reply)
        {
            return KvExceptionFactory.StillFailing(reply, _requestTimeout);
        }
        if (pending.LastProblem is { } problem && problem.StartsWith(NoReplicaReachableException.Prefix, StringComparison.Ordinal))
        {
            return KvExceptionFactory.Unavailable(problem, everyReplicaRejected: false);
        }
        return KvExceptionFactory.Timeout(ConnectedReplica, _requestTimeout, pending.LastProblem, pending.IsWrite, pending.OutcomeUnknown);
    }

    private long BeginWrite()
    {
        lock (_gate)
        {
            long sequence = _nextSequence++;
            _unfinishedWrites.Add(sequence);
            return sequence;
        }
    }

    private void ForgetWrite(long sequence)
    {
        lock (_gate)
        {
            _unfinishedWrites.Remove(sequence);
        }
    }

    private async Task ForgetAbandonedWriteLaterAsync(long sequence)
    {
        try
        {
            await Task.Delay(_abandonedWriteGrace, _disposed.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Disposed: no further writes will carry AckedBelow anyway.
        }
        ForgetWrite(sequence);
    }

    private long AckedBelow()
    {
        lock (_gate)
        {
            return _unfinishedWrites.Count > 0 ? _unfinishedWrites.Min : _nextSequence;
        }
    }

    private static TimeSpan RetryPause(int attempt) =>
        TimeSpan.FromMilliseconds(Math.Min(MaxRetryPause.TotalMilliseconds, 50 * Math.Pow(2, Math.Min(attempt, 10))));


    /// <summary>One operation on its way: what is sent on every try, and what stood in the way so far.</summary>
    private sealed class PendingRequest(ClientRequest template, bool isWrite, long sequence, long requestId)
    {
        public bool IsWrite { get; } = isWrite;
        public long Sequence { get; } = sequence;
        public long RequestId { get; } = requestId;

        // What stood in the way last, so a timeout says more than "timed out".
        public string? LastProblem { get; set; }
        public ClientReply? LastErrorReply { get; set; }
        public int Pauses { get; set; }
        public int ConnectionsLost { get; set; }
        // Whether the cluster may hold a copy of this write whose outcome we never learnt.
        public bool OutcomeUnknown { get; set; }

        /// <summary>A failure that is not an error reply: the connection or the replica's silence.</summary>
        public void Problem(string problem)
        {
            LastProblem = problem;
            LastErrorReply = null;
        }

        public ClientRequest ToRequest(ulong clientId, long ackedBelow, ReadMode readMode) => new()
        {
            RequestId = RequestId,
            Operation = template.Operation,
            Key = template.Key,
            Value = template.Value,
            ClientId = IsWrite ? clientId : 0,
            Sequence = Sequence,
            AckedBelow = ackedBelow,
            ReadMode = readMode,
            ExpectedTime = template.ExpectedTime,
            ExpectedReplica = template.ExpectedReplica,
            Txn = template.Txn,
            Keys = template.Keys,
            Scan = template.Scan,
        };
    }
}
