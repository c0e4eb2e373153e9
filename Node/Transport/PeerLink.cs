using System.Net.Sockets;
using System.Threading.Channels;
using KvReplica.Transport;
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
/// <remarks>
/// A peer process that restarts has a new incarnation and has forgotten the link (sequence
/// numbers start again at 1), though not its logged writes. When either direction's handshake
/// shows a new incarnation, the link is replaced by a fresh one and everything queued for the old
/// process is dropped, and so is everything the core queues until it has been told (the
/// <c>announceRestart</c> callback puts that notice on the core loop): the core then re-sends
/// its undelivered writes to the peer itself (<see cref="Protocol.Core.ReplicaCore.OnPeerRestarted"/>),
/// and <see cref="ResumeAfterRestart"/> opens the link again. Envelopes still queued from the old
/// process carry its incarnation and are dropped on arrival.
/// </remarks>
internal sealed class PeerLink
{
    private static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(2);

    private readonly object _gate = new();
    private ReliableLink _link = new();
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    // Set when the peer dials in while our own dial is backing off: it is up now, so dial at once
    // (a restarted peer asking to rejoin must hear the view change that adds it within the
    // suspicion timeout, not after a backoff of up to two seconds).
    private readonly Channel<bool> _redialNow = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly NodeIdentity _self;
    private readonly ClusterConfig _config;
    private readonly DialSettings _dial;
    private readonly ILogger _logger;
    private readonly Func<PeerLink, long, ValueTask> _announceRestart;
    private long? _peerIncarnation;
    // Set from a restart's detection until the core has been told of it: messages the core queues
    // meanwhile were meant for the old process and are dropped (the core re-sends what matters).
    private bool _awaitingCore;
    // Bumped with every fresh link, so a send loop still running on an older one stops.
    private int _generation;
    private volatile bool _outboundUp;
    private FramedConnection? _inbound;

    public PeerLink(ReplicaAddress address, NodeIdentity self, DialSettings dial, ILogger logger, Func<PeerLink, long, ValueTask> announceRestart)
    {
        Address = address;
        _self = self;
        _dial = dial;
        _config = dial.Config;
        _logger = logger;
        _announceRestart = announceRestart;
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
            if (_awaitingCore || (!_outboundUp && IsDisposable(body)))
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

    /// <summary>
    /// Unwraps an envelope received on an inbound connection from the peer's process
    /// <paramref name="incarnation"/>; null for a duplicate or for a process that has since restarted.
    /// </summary>
    public PeerMessage? Accept(ReplicaEnvelope envelope, long incarnation)
    {
        lock (_gate)
        {
            return incarnation == _peerIncarnation ? _link.Accept(envelope) : null;
        }
    }

    /// <summary>The core has been told that the peer's process <paramref name="incarnation"/> is new: open the link to it.</summary>
    public void ResumeAfterRestart(long incarnation)
    {
        lock (_gate)
        {
            if (incarnation == _peerIncarnation)
            {
                _awaitingCore = false;
            }
        }
    }

    // Notes the peer's incarnation from a handshake; a new process of the peer is announced to
    // the core (outside the lock: the announcement may wait for room in the core's input queue).
    private async ValueTask ObserveIncarnationAsync(long incarnation)
    {
        bool restarted;
        lock (_gate)
        {
            restarted = ObserveIncarnation(incarnation);
        }
        if (restarted)
        {
            await _announceRestart(this, incarnation).ConfigureAwait(false);
        }
    }

    // Under _gate. True when this is a new process of the peer (not the first one we meet).
    private bool ObserveIncarnation(long incarnation)
    {
        if (_peerIncarnation == incarnation)
        {
            return false;
        }
        long? old = _peerIncarnation;
        _peerIncarnation = incarnation;
        if (old is null)
        {
            return false;
        }
        Log.PeerRestarted(_logger, PeerId, old.Value, incarnation);
        _link = new ReliableLink();
        _generation++;
        _awaitingCore = true;
        return true;
    }

    /// <summary>
    /// Handles the peer's handshake on an inbound connection and returns the HelloAccepted to
    /// send. A newer inbound connection replaces an older one, which is aborted: the peer only
    /// redials when it believes the old one is dead. A new incarnation of the peer is announced
    /// to the core before the answer is returned, so the notice precedes the new process's envelopes.
    /// </summary>
    public async ValueTask<HelloAccepted> AcceptInboundAsync(Hello hello, FramedConnection connection)
    {
        await ObserveIncarnationAsync(hello.Incarnation).ConfigureAwait(false);
        lock (_gate)
        {
            _inbound?.Abort();
            _inbound = connection;
            if (!_outboundUp)
            {
                _redialNow.Writer.TryWrite(true);
            }
            return new HelloAccepted
            {
                ProtocolVersion = ProtocolVersion.Current,
                ReplicaId = _self.ReplicaId,
                Incarnation = _self.Incarnation,
                ResumeFrom = _link.NextExpected,
                MaxFrameBytes = _config.MaxFrameBytes,
            };
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
                backoff = MinBackoff;
            }
            catch (Exception e) when (e is SocketException or IOException or FrameException or HandshakeException or HandshakeRejectedException or UnexpectedMessageException or ObjectDisposedException)
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
            _redialNow.Reader.TryRead(out _);
            using (var waiting = CancellationTokenSource.CreateLinkedTokenSource(stopping))
            {
                var redial = _redialNow.Reader.WaitToReadAsync(waiting.Token).AsTask();
                bool dialedIn = await Task.WhenAny(Task.Delay(backoff, waiting.Token), redial).ConfigureAwait(false) == redial && redial.IsCompletedSuccessfully;
                await waiting.CancelAsync().ConfigureAwait(false);
                if (stopping.IsCancellationRequested)
                {
                    return;
                }
                backoff = dialedIn ? MinBackoff : TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
    }

    private async Task RunOneConnectionAsync(CancellationToken stopping)
    {
        using var handshakeTimeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        handshakeTimeout.CancelAfter(ConnectionLimits.HandshakeTimeout);
        // TCP, then TLS with our certificate, the peer proving it is replica PeerId.
        Socket socket;
        Stream stream;
        // Connecting (and TLS) has a deadline of its own, PeerSockets.Timeout: a SYN lost to a cut
        // would otherwise wait on TCP's own schedule (about two minutes on Linux) while the link
        // stays down.
        var connectTimeout = PeerSockets.Timeout(_config);
        using (var connectDeadline = CancellationTokenSource.CreateLinkedTokenSource(handshakeTimeout.Token))
        {
            connectDeadline.CancelAfter(connectTimeout);
            try
            {
                (socket, stream) = await ReplicaDialer.ConnectAsync(_dial, Address, connectDeadline.Token, s => PeerSockets.Configure(s, _config)).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
            {
                throw new SocketException((int)SocketError.TimedOut, $"connect and TLS handshake with {Address.Host}:{Address.Port} timed out after {connectTimeout.TotalMilliseconds:0} ms");
            }
        }
        await using var connection = new FramedConnection(socket, stream, _config.MaxFrameBytes);
        HelloAccepted accepted;
        try
        {
            accepted = await ReplicaDialer.ExchangeHelloAsync(connection, _dial, PeerKind.Replica, _self.Incarnation, handshakeTimeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            throw new HandshakeException($"no handshake answer within {ConnectionLimits.HandshakeTimeout.TotalSeconds:0} s");
        }
        if (accepted.ReplicaId != PeerId)
        {
            throw new HandshakeException($"{Address.Host}:{Address.Port} is replica {accepted.ReplicaId}, not {PeerId}: check cluster.json");
        }
        long resumeFrom;
        int generation;
        await ObserveIncarnationAsync(accepted.Incarnation).ConfigureAwait(false);
        lock (_gate)
        {
            if (accepted.Incarnation != _peerIncarnation)
            {
                throw new PeerRestartedException($"replica {PeerId} restarted again during the handshake");
            }
            _link.Confirm(accepted.ResumeFrom);
            resumeFrom = accepted.ResumeFrom;
            generation = _generation;
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
            await SendLoopAsync(connection, resumeFrom, generation, closed.Token).ConfigureAwait(false);
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

    private async Task SendLoopAsync(FramedConnection connection, long nextToSend, int generation, CancellationToken cancellationToken)
    {
        var batch = new List<ReplicaEnvelope>();
        while (true)
        {
            batch.Clear();
            lock (_gate)
            {
                if (generation != _generation)
                {
                    // The peer restarted (seen on the inbound side): this connection's numbering is void.
                    throw new PeerRestartedException($"replica {PeerId} restarted; reconnecting with a fresh link");
                }
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
}
