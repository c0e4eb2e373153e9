using System.Net.Sockets;
using System.Threading.Channels;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Link;
using KvReplica.Protocol.Wire;
using Microsoft.Extensions.Logging;

namespace KvReplica.Node.Transport;

/// <summary>
/// Everything this replica keeps about one peer: the reliable link state (guarded by a lock),
/// the peer's incarnation, and the outbound connection that carries our envelopes to it. Each
/// direction of a replica pair has its own TCP connection; the one we dial only ever carries
/// our messages, and the peer's dial carries theirs, so reconnects never race on who dials.
/// </summary>
internal sealed class PeerLink
{
    private static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(2);

    private readonly object _gate = new();
    private readonly ReliableLink _link = new();
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly NodeIdentity _self;
    private readonly ClusterConfig _config;
    private readonly ILogger _logger;
    private long? _peerIncarnationSeenOutbound;
    private long? _peerIncarnationSeenInbound;
    // The last restarted incarnation reported, so a peer redialling every few seconds logs once.
    private long _restartReported;
    private volatile bool _outboundUp;
    private FramedConnection? _inbound;

    public PeerLink(ReplicaAddress address, NodeIdentity self, ClusterConfig config, ILogger logger)
    {
        Address = address;
        _self = self;
        _config = config;
        _logger = logger;
    }

    public ReplicaAddress Address { get; }

    public int PeerId => Address.Id;

    /// <summary>
    /// Queues <paramref name="body"/> for the peer. While the link is down, messages whose loss
    /// costs nothing are dropped instead of buffered: a batch without writes (its acks are
    /// cumulative and re-sent by the next heartbeat) and read traffic (the read times out or
    /// completes at other replicas). Batches with writes are always kept until confirmed.
    /// </summary>
    public void Enqueue(PeerMessage body)
    {
        lock (_gate)
        {
            if (!_outboundUp && IsDisposable(body))
            {
                return;
            }
            _link.Wrap(body);
        }
    }

    /// <summary>Tells the sender there is something new to send; cheap and idempotent.</summary>
    public void Wake() => _wake.Writer.TryWrite(true);

    private static bool IsDisposable(PeerMessage body) =>
        body is ReadQuery or ReadAnswer || body is OrderBatch { Writes.Length: 0 };

    /// <summary>Unwraps an envelope received on the peer's inbound connection; null for a duplicate.</summary>
    public PeerMessage? Accept(ReplicaEnvelope envelope)
    {
        lock (_gate)
        {
            return _link.Accept(envelope);
        }
    }

    /// <summary>
    /// Handles the peer's handshake on an inbound connection. Returns the HelloAccepted to send,
    /// or a rejection reason. A newer inbound connection replaces an older one, which is aborted:
    /// the peer only redials when it believes the old one is dead.
    /// </summary>
    public (HelloAccepted? Accepted, string? Rejection) AcceptInbound(Hello hello, FramedConnection connection)
    {
        lock (_gate)
        {
            if (_peerIncarnationSeenInbound is long known && known != hello.Incarnation)
            {
                ReportRestart(known, hello.Incarnation);
                return (null, $"replica {PeerId} restarted and lost its state; this cluster cannot take it back until state transfer is available: restart the whole cluster");
            }
            _peerIncarnationSeenInbound = hello.Incarnation;
            _inbound?.Abort();
            _inbound = connection;
            return (new HelloAccepted
            {
                ProtocolVersion = ProtocolVersion.Current,
                ReplicaId = _self.ReplicaId,
                Incarnation = _self.Incarnation,
                ResumeFrom = _link.NextExpected,
                MaxFrameBytes = _config.MaxFrameBytes,
            }, null);
        }
    }

    public void InboundClosed(FramedConnection connection)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_inbound, connection))
            {
                _inbound = null;
            }
        }
    }

    public void AbortInbound()
    {
        lock (_gate)
        {
            _inbound?.Abort();
        }
    }

    /// <summary>Dials the peer, hands envelopes over, and redials with backoff until stopped.</summary>
    public async Task RunOutboundAsync(CancellationToken stopping)
    {
        var backoff = MinBackoff;
        string? lastFailure = null;
        while (!stopping.IsCancellationRequested)
        {
            string failure;
            try
            {
                await RunOneConnectionAsync(stopping).ConfigureAwait(false);
                failure = "connection closed";
                backoff = MinBackoff;
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (PeerRestartedException e)
            {
                failure = e.Message;
                backoff = MaxBackoff;
            }
            catch (Exception e) when (e is SocketException or IOException or FrameException or HandshakeException or ObjectDisposedException)
            {
                failure = e.Message;
            }
            if (_outboundUp)
            {
                _outboundUp = false;
                Log.PeerDown(_logger, PeerId, "outbound", failure);
            }
            else if (failure != lastFailure)
            {
                _logger.LogDebug("cannot reach peer {PeerId} at {Host}:{Port}: {Reason}", PeerId, Address.Host, Address.Port, failure);
            }
            lastFailure = failure;
            try
            {
                await Task.Delay(backoff, stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
        }
    }

    private async Task RunOneConnectionAsync(CancellationToken stopping)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await using var connection = new FramedConnection(await ConnectAsync(socket, stopping).ConfigureAwait(false), _config.MaxFrameBytes);
        using var handshakeTimeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        handshakeTimeout.CancelAfter(TimeSpan.FromSeconds(5));
        await connection.SendAsync(new Hello
        {
            ProtocolVersion = ProtocolVersion.Current,
            ClusterName = _config.ClusterName,
            Kind = PeerKind.Replica,
            ReplicaId = _self.ReplicaId,
            Incarnation = _self.Incarnation,
        }, handshakeTimeout.Token).ConfigureAwait(false);
        Message? answer;
        try
        {
            answer = await connection.ReadOneAsync(handshakeTimeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            throw new HandshakeException("no handshake answer within 5 s");
        }
        var accepted = answer switch
        {
            HelloAccepted a => a,
            HelloRejected r => throw new HandshakeException($"rejected: {r.Reason}"),
            null => throw new HandshakeException("closed during handshake"),
            _ => throw new HandshakeException($"answered the handshake with {answer.GetType().Name}"),
        };
        if (accepted.ReplicaId != PeerId)
        {
            throw new HandshakeException($"{Address.Host}:{Address.Port} is replica {accepted.ReplicaId}, not {PeerId}: check cluster.json");
        }
        long resumeFrom;
        lock (_gate)
        {
            if (_peerIncarnationSeenOutbound is long known && known != accepted.Incarnation)
            {
                ReportRestart(known, accepted.Incarnation);
                throw new PeerRestartedException($"replica {PeerId} restarted and lost its state");
            }
            _peerIncarnationSeenOutbound = accepted.Incarnation;
            _link.Confirm(accepted.ResumeFrom);
            resumeFrom = accepted.ResumeFrom;
            _outboundUp = true;
        }
        Log.PeerUp(_logger, PeerId, "outbound", connection.Remote);
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            Log.Resending(_logger, _link.UnconfirmedCount, PeerId, resumeFrom);
        }

        // The peer never sends on this connection after the handshake; a read completing means
        // it closed, which must stop the send loop even while it is idle.
        using var closed = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var watchClose = WatchForCloseAsync(connection, closed);
        try
        {
            await SendLoopAsync(connection, resumeFrom, closed.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            // The close watcher fired: the peer went away.
        }
        finally
        {
            closed.Cancel();
            connection.Abort();
            await watchClose.ConfigureAwait(false);
        }
    }

    private async Task SendLoopAsync(FramedConnection connection, long nextToSend, CancellationToken cancellationToken)
    {
        var batch = new List<ReplicaEnvelope>();
        while (true)
        {
            batch.Clear();
            lock (_gate)
            {
                nextToSend = _link.CopyPendingFrom(nextToSend, batch);
            }
            if (batch.Count == 0)
            {
                await _wake.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                continue;
            }
            foreach (var envelope in batch)
            {
                connection.Write(envelope);
            }
            await connection.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task WatchForCloseAsync(FramedConnection connection, CancellationTokenSource closed)
    {
        try
        {
            var sink = new List<Message>();
            while (await connection.ReadFramesAsync(sink, closed.Token).ConfigureAwait(false))
            {
                sink.Clear();
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or FrameException or ObjectDisposedException)
        {
        }
        finally
        {
            try
            {
                closed.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    private async Task<Socket> ConnectAsync(Socket socket, CancellationToken stopping)
    {
        try
        {
            await socket.ConnectAsync(Address.Host, Address.Port, stopping).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private void ReportRestart(long known, long seen)
    {
        if (_restartReported != seen)
        {
            _restartReported = seen;
            Log.PeerRestarted(_logger, PeerId, known, seen);
        }
    }
}

internal sealed class HandshakeException(string message) : Exception(message);

internal sealed class PeerRestartedException(string message) : Exception(message);
