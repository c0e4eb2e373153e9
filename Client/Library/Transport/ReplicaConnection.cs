using System.Net.Sockets;
using System.Threading.Channels;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;
using KvReplica.Transport;

namespace KvReplica.Client.Transport;

/// <summary>
/// One handshaken TCP connection to one replica. Requests go out through a single send loop fed
/// by a channel, so concurrent callers never interleave frames and everything queued while a
/// flush is under way goes out in the next single flush. Replies are handed to a callback in the
/// order they arrive; matching them to requests is the owner's business.
/// </summary>
/// <remarks>
/// The connection closes itself on the first socket error, malformed frame or unexpected message,
/// and reports that exactly once through the close callback and <see cref="Closed"/>.
/// It never reconnects: the owner opens a new one.
/// </remarks>
internal sealed class ReplicaConnection
{
    // Flush at least this often while draining a long queue, so one burst does not buffer unboundedly.
    private const long FlushThresholdBytes = 1 << 20;

    private readonly FramedConnection _connection;
    private readonly Action<ClientReply> _onReply;
    private readonly Action<ReplicaConnection> _onClosed;
    private readonly Channel<ClientRequest> _outbox =
        Channel.CreateUnbounded<ClientRequest>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });
    private readonly CancellationTokenSource _lifetime = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _open = true;
    private int _closing;

    private ReplicaConnection(ReplicaAddress address, int candidateIndex, FramedConnection connection,
        Action<ClientReply> onReply, Action<ReplicaConnection> onClosed)
    {
        Address = address;
        CandidateIndex = candidateIndex;
        _connection = connection;
        _onReply = onReply;
        _onClosed = onClosed;
    }

    public ReplicaAddress Address { get; }

    /// <summary>Position of <see cref="Address"/> in the owner's failover order.</summary>
    public int CandidateIndex { get; }

    /// <summary>False from the moment the connection starts closing.</summary>
    public bool IsOpen => _open;

    /// <summary>Completes (never faults) once the connection is closed; <see cref="CloseReason"/> is set by then.</summary>
    public Task Closed => _closed.Task;

    /// <summary>Why the connection closed, for a person; null while open.</summary>
    public string? CloseReason { get; private set; }

    /// <summary>
    /// Connects (with TLS and authentication when the cluster has them, see <see cref="ReplicaDialer"/>),
    /// sends Hello and waits for the answer. Throws <see cref="HandshakeRejectedException"/>
    /// with the replica's reason on HelloRejected or a refused authentication, <see cref="SocketException"/>/<see cref="IOException"/>
    /// on network failure, <see cref="FrameException"/> or <see cref="UnexpectedMessageException"/> on a
    /// bad answer, <see cref="OperationCanceledException"/> when <paramref name="ct"/> fires.
    /// </summary>
    public static async Task<ReplicaConnection> OpenAsync(ReplicaAddress address, int candidateIndex, DialSettings settings,
        Action<ClientReply> onReply, Action<ReplicaConnection> onClosed, CancellationToken ct)
    {
        var dialed = await ReplicaDialer.OpenAsync(settings, address, PeerKind.Client, ct).ConfigureAwait(false);
        var connection = new ReplicaConnection(address, candidateIndex, dialed, onReply, onClosed);
        connection.Start();
        return connection;
    }

    /// <summary>
    /// Queues <paramref name="request"/> for sending. Returns false if the connection is closed; a
    /// request queued just before a close is silently lost, so callers also watch <see cref="Closed"/>.
    /// </summary>
    public bool TrySend(ClientRequest request) => _open && _outbox.Writer.TryWrite(request);

    /// <summary>Closes the connection (idempotent); the first reason given wins.</summary>
    public void Close(string reason)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }
        CloseReason = reason;
        _open = false;
        _outbox.Writer.TryComplete();
        _lifetime.Cancel();
        _connection.Abort();
        // The owner forgets this connection before anyone waiting on Closed wakes up, so nobody
        // picks the dead connection again.
        _onClosed(this);
        _closed.TrySetResult();
    }

    private void Start()
    {
        var sending = Task.Run(SendLoopAsync);
        var receiving = Task.Run(ReceiveLoopAsync);
        // The pipes and the stream are released once neither loop can touch them any more.
        _ = Task.WhenAll(sending, receiving).ContinueWith(_ => _connection.DisposeAsync().AsTask(), TaskScheduler.Default).Unwrap();
    }

    private async Task SendLoopAsync()
    {
        var outbox = _outbox.Reader;
        try
        {
            while (await outbox.WaitToReadAsync(_lifetime.Token).ConfigureAwait(false))
            {
                while (outbox.TryRead(out var request))
                {
                    _connection.Write(request);
                    if (_connection.UnflushedBytes >= FlushThresholdBytes)
                    {
                        break;
                    }
                }
                if (!await _connection.TryFlushAsync(_lifetime.Token).ConfigureAwait(false))
                {
                    Close("the replica stopped reading");
                    return;
                }
            }
        }
        catch (Exception e)
        {
            Close(ConnectionErrors.Describe(e));
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var replies = new List<Message>();
        try
        {
            while (await _connection.ReadFramesAsync(replies, _lifetime.Token).ConfigureAwait(false))
            {
                foreach (var message in replies)
                {
                    if (message is not ClientReply reply)
                    {
                        throw new UnexpectedMessageException($"sent an unexpected {message.GetType().Name}");
                    }
                    _onReply(reply);
                }
                replies.Clear();
            }
            Close("the replica closed the connection");
        }
        catch (Exception e)
        {
            Close(ConnectionErrors.Describe(e));
        }
    }
}
