using System.Net.Sockets;
using KvReplica.Client.Transport;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;
using KvReplica.Transport;

namespace KvReplica.Client;

// Connection and failover: one connection at a time, opened by one connect round that tries each
// replica in failover order, and forgotten when it closes so the next request moves on.
public sealed partial class KvClient
{
    private async Task ConnectWithinDeadlineAsync(CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct, _disposed.Token);
        deadline.CancelAfter(_requestTimeout);
        NoReplicaReachableException? lastFailure = null;
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                await GetConnectionAsync(deadline.Token).ConfigureAwait(false);
                return;
            }
            catch (NoReplicaReachableException e)
            {
                if (e.EveryReplicaRejected || e.EveryConnectionRefused)
                {
                    // Retrying cannot help within the deadline: every replica said no, or no
                    // process listens on any replica's port (none is running).
                    throw KvExceptionFactory.Unavailable(e.Message, e.EveryReplicaRejected);
                }
                lastFailure = e;
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw KvExceptionFactory.NoConnectionWithin(_requestTimeout, lastFailure?.Message);
            }
            try
            {
                await Task.Delay(RetryPause(attempt), deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw KvExceptionFactory.Unavailable(lastFailure.Message, everyReplicaRejected: false);
            }
        }
    }

    /// <summary>
    /// The open connection, or the outcome of the connect round under way, or of a new one. One
    /// round at a time serves every waiting request; a failed round throws
    /// <see cref="NoReplicaReachableException"/> and the next caller starts a fresh one.
    /// </summary>
    private async Task<ReplicaConnection> GetConnectionAsync(CancellationToken ct)
    {
        Task<ReplicaConnection> round;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
            if (_connection is { IsOpen: true } open)
            {
                return open;
            }
            if (_connection is { } closing)
            {
                // Closing right now; its close callback may not have run yet.
                ForgetConnection(closing);
            }
            if (_connectRound is null || _connectRound.IsCompleted)
            {
                _connectRound = ConnectRoundAsync(_nextCandidate);
            }
            round = _connectRound;
        }
        return await round.WaitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Tries each replica once, in failover order starting at <paramref name="start"/>, until one accepts.</summary>
    private async Task<ReplicaConnection> ConnectRoundAsync(int start)
    {
        // Leave the caller's lock before doing any I/O.
        await Task.Yield();
        var failures = new List<string>(_candidates.Length);
        bool everyReplicaRejected = true;
        bool everyConnectionRefused = true;
        for (int i = 0; i < _candidates.Length; i++)
        {
            int index = (start + i) % _candidates.Length;
            var address = _candidates[index];
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token);
            attempt.CancelAfter(_connectAttemptTimeout);
            try
            {
                var connection = await ReplicaConnection.OpenAsync(address, index, _dial, OnReply, OnConnectionClosed, attempt.Token)
                    .ConfigureAwait(false);
                bool disposed;
                lock (_gate)
                {
                    disposed = _disposed.IsCancellationRequested;
                    if (!disposed)
                    {
                        _connection = connection;
                        _nextCandidate = index;
                    }
                }
                if (disposed)
                {
                    // Closed outside the lock: the close callback takes it too.
                    connection.Close("the client was disposed");
                    throw new ObjectDisposedException(nameof(KvClient));
                }
                return connection;
            }
            catch (HandshakeRejectedException e)
            {
                everyConnectionRefused = false;
                failures.Add($"{address}: rejected: {e.Message}");
            }
            catch (OperationCanceledException) when (!_disposed.IsCancellationRequested)
            {
                everyReplicaRejected = false;
                everyConnectionRefused = false;
                failures.Add($"{address}: no answer within {_connectAttemptTimeout.TotalMilliseconds:0} ms");
            }
            catch (Exception e) when (e is not OperationCanceledException and not ObjectDisposedException)
            {
                everyReplicaRejected = false;
                everyConnectionRefused &= IsConnectionRefused(e);
                failures.Add($"{address}: {ConnectionErrors.Describe(e)}");
            }
        }
        throw new NoReplicaReachableException(NoReplicaReachableException.Prefix + string.Join("; ", failures), everyReplicaRejected, everyConnectionRefused);
    }

    private void OnReply(ClientReply reply)
    {
        if (_awaitingReply.TryGetValue(reply.RequestId, out var waiting))
        {
            waiting.TrySetResult(reply);
        }
        // A reply nobody waits for belongs to a request that already gave up: nothing to do.
    }

    private void OnConnectionClosed(ReplicaConnection connection)
    {
        lock (_gate)
        {
            ForgetConnection(connection);
        }
    }

    // Caller holds _gate.
    private void ForgetConnection(ReplicaConnection connection)
    {
        if (ReferenceEquals(_connection, connection))
        {
            _connection = null;
            // Failover goes to the next replica in order; the failed one is tried again last.
            _nextCandidate = (connection.CandidateIndex + 1) % _candidates.Length;
        }
    }

    private static bool IsConnectionRefused(Exception e) =>
        e is SocketException { SocketErrorCode: SocketError.ConnectionRefused }
        || e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused };

    /// <summary>One connect round failed at every replica; the message lists each replica and why.</summary>
    private sealed class NoReplicaReachableException(string message, bool everyReplicaRejected, bool everyConnectionRefused) : Exception(message)
    {
        public const string Prefix = "no replica reachable: ";

        public bool EveryReplicaRejected { get; } = everyReplicaRejected;

        /// <summary>Every replica's host answered the dial with a refusal (ECONNREFUSED): nothing listens on any replica's port.</summary>
        public bool EveryConnectionRefused { get; } = everyConnectionRefused;
    }
}
