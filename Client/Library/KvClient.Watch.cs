using System.Runtime.CompilerServices;
using System.Threading.Channels;
using KvReplica.Client.Transport;
using KvReplica.Protocol.Wire;
using KvReplica.Transport;

namespace KvReplica.Client;

// Watches: each on a connection of its own (so that ending one is closing it), resumed at the
// next replica after the last revision seen whenever the connection is lost or the replica gives
// up, so the caller sees every change once, in delivery order (docs/design.md, "Watches").
public sealed partial class KvClient
{
    /// <summary>
    /// The changes to keys that begin with <paramref name="prefix"/> ("" for every key), in
    /// delivery order, each once: those after <paramref name="after"/> first
    /// (<see cref="KvVersion.None"/>: from now on, at the first replica that takes the watch), then live ones, until <paramref name="ct"/>
    /// fires or the enumeration is disposed. A lost connection or a replica that stops serving moves
    /// the watch to the next replica, resuming after the last revision delivered to the caller.
    /// </summary>
    /// <exception cref="KvException">
    /// <see cref="ErrorCode.Compacted"/> when the changes after the resume point are older than the
    /// replica's change history (the message gives the oldest revision it has: re-read, then watch
    /// from a newer revision); a refusal such as <see cref="ErrorCode.PermissionDenied"/>.
    /// </exception>
    /// <exception cref="KvUnavailableException">No replica took the watch for the client's request timeout.</exception>
    public async IAsyncEnumerable<KvWatchEvent> WatchAsync(string prefix, KvVersion after = default, [EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var probe = new ClientRequest { Operation = Operation.Watch, Watch = new WatchRequest { Prefix = prefix, AfterTime = after.Time, AfterReplica = after.ReplicaId } };
        if (RequestValidation.Check(probe, _config.MaxValueBytes) is { } invalid)
        {
            throw KvExceptionFactory.InvalidRequest(invalid);
        }
        var resumeAfter = after;
        // Until a replica confirmed where "now" was, a None start means "from now".
        bool fromNow = after == KvVersion.None;
        int candidate = _nextCandidate;
        var lastGood = DateTime.UtcNow;
        string? lastProblem = null;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, _disposed.Token);
        while (true)
        {
            var replies = Channel.CreateUnbounded<ClientReply>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
            var (connection, problem) = await OpenWatchConnectionAsync(candidate, replies, stop.Token).ConfigureAwait(false);
            if (connection is null)
            {
                lastProblem = problem;
                if (DateTime.UtcNow - lastGood > _requestTimeout)
                {
                    throw KvExceptionFactory.Unavailable($"no replica took the watch within {_requestTimeout.TotalMilliseconds:0} ms: {lastProblem}", everyReplicaRejected: false);
                }
                await Task.Delay(RetryPause(1), stop.Token).ConfigureAwait(false);
                continue;
            }
            candidate = connection.CandidateIndex;
            try
            {
                connection.TrySend(new ClientRequest
                {
                    RequestId = 1,
                    Operation = Operation.Watch,
                    Watch = new WatchRequest { Prefix = prefix, AfterTime = resumeAfter.Time, AfterReplica = resumeAfter.ReplicaId, FromNow = fromNow },
                });
                while (await replies.Reader.WaitToReadAsync(stop.Token).ConfigureAwait(false))
                {
                    var reply = await replies.Reader.ReadAsync(stop.Token).ConfigureAwait(false);
                    if (reply.Status == ReplyStatus.Error)
                    {
                        if (reply.Error is ErrorCode.NoMajority or ErrorCode.ShuttingDown or ErrorCode.Busy)
                        {
                            connection.Close($"{connection.Address}: {KvExceptionFactory.Describe(reply)}");
                            break;
                        }
                        throw KvExceptionFactory.Refused(reply);
                    }
                    lastGood = DateTime.UtcNow;
                    if (reply.Events is not { } events)
                    {
                        continue;
                    }
                    if (events.Length == 0 && fromNow)
                    {
                        // The confirmation names where "now" was at that replica.
                        resumeAfter = new KvVersion(reply.RevisionTime, reply.RevisionReplica);
                        fromNow = false;
                    }
                    foreach (var change in events)
                    {
                        var revision = new KvVersion(change.Time, change.Replica);
                        yield return new KvWatchEvent(change.Key, change.Deleted, change.Value ?? [], revision);
                        resumeAfter = revision;
                    }
                }
            }
            finally
            {
                connection.Close("the watch moved on or ended");
            }
            // The connection was lost (or the replica gave up): resume at the next replica.
            candidate = (candidate + 1) % _candidates.Length;
        }
    }

    // Tries each replica once from `start`; a connection whose replies feed `replies`.
    private async Task<(ReplicaConnection? Connection, string? Problem)> OpenWatchConnectionAsync(int start, Channel<ClientReply> replies, CancellationToken ct)
    {
        var failures = new List<string>();
        for (int i = 0; i < _candidates.Length; i++)
        {
            int index = (start + i) % _candidates.Length;
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
            attempt.CancelAfter(_connectAttemptTimeout);
            try
            {
                var connection = await ReplicaConnection.OpenAsync(_candidates[index], index, _dial,
                    reply => replies.Writer.TryWrite(reply), _ => replies.Writer.TryComplete(), attempt.Token).ConfigureAwait(false);
                return (connection, null);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                failures.Add($"{_candidates[index]}: no answer within {_connectAttemptTimeout.TotalMilliseconds:0} ms");
            }
            catch (HandshakeRejectedException e)
            {
                failures.Add($"{_candidates[index]}: rejected: {e.Message}");
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                failures.Add($"{_candidates[index]}: {ConnectionErrors.Describe(e)}");
            }
        }
        return (null, string.Join("; ", failures));
    }
}
