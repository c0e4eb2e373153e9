using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

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

    private readonly Socket _socket;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly int _maxFrameBytes;
    private readonly Action<ClientReply> _onReply;
    private readonly Action<ReplicaConnection> _onClosed;
    private readonly Channel<ClientRequest> _outbox =
        Channel.CreateUnbounded<ClientRequest>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });
    private readonly CancellationTokenSource _lifetime = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _open = true;
    private int _closing;

    private ReplicaConnection(ReplicaAddress address, int candidateIndex, Socket socket, PipeReader reader, PipeWriter writer,
        int maxFrameBytes, Action<ClientReply> onReply, Action<ReplicaConnection> onClosed)
    {
        Address = address;
        CandidateIndex = candidateIndex;
        _socket = socket;
        _reader = reader;
        _writer = writer;
        _maxFrameBytes = maxFrameBytes;
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
    /// on network failure, <see cref="FrameException"/> or <see cref="ProtocolViolationException"/> on a
    /// bad answer, <see cref="OperationCanceledException"/> when <paramref name="ct"/> fires.
    /// </summary>
    public static async Task<ReplicaConnection> OpenAsync(ReplicaAddress address, int candidateIndex, DialSettings settings,
        Action<ClientReply> onReply, Action<ReplicaConnection> onClosed, CancellationToken ct)
    {
        var dialed = await ReplicaDialer.OpenAsync(settings, address, PeerKind.Client, ct).ConfigureAwait(false);
        var connection = new ReplicaConnection(address, candidateIndex, dialed.Socket, dialed.Reader, dialed.Writer, settings.Config.MaxFrameBytes, onReply, onClosed);
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
        _socket.Dispose();
        // The owner forgets this connection before anyone waiting on Closed wakes up, so nobody
        // picks the dead connection again.
        _onClosed(this);
        _closed.TrySetResult();
    }

    /// <summary>Reads one whole frame; <paramref name="during"/> names the exchange in the error if the replica closes first.</summary>
    internal static async Task<Message> ReadFrameAsync(PipeReader reader, int maxFrameBytes, string during, CancellationToken ct)
    {
        while (true)
        {
            var result = await reader.ReadAsync(ct).ConfigureAwait(false);
            var buffer = result.Buffer;
            try
            {
                if (FrameCodec.TryReadFrame(ref buffer, maxFrameBytes, out var message))
                {
                    return message;
                }
                if (result.IsCompleted)
                {
                    throw new IOException(buffer.IsEmpty
                        ? $"closed the connection during the {during}"
                        : $"closed the connection in the middle of a frame of the {during}");
                }
            }
            finally
            {
                reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
    }

    private void Start()
    {
        _ = Task.Run(SendLoopAsync);
        _ = Task.Run(ReceiveLoopAsync);
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
                    FrameCodec.WriteFrame(_writer, request);
                    if (_writer.CanGetUnflushedBytes && _writer.UnflushedBytes >= FlushThresholdBytes)
                    {
                        break;
                    }
                }
                var flush = await _writer.FlushAsync(_lifetime.Token).ConfigureAwait(false);
                if (flush.IsCompleted)
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
        finally
        {
            await _writer.CompleteAsync().ConfigureAwait(false);
        }
    }

    private async Task ReceiveLoopAsync()
    {
        try
        {
            while (true)
            {
                var result = await _reader.ReadAsync(_lifetime.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                try
                {
                    while (FrameCodec.TryReadFrame(ref buffer, _maxFrameBytes, out var message))
                    {
                        if (message is not ClientReply reply)
                        {
                            throw new ProtocolViolationException($"sent an unexpected {message.GetType().Name}");
                        }
                        _onReply(reply);
                    }
                    if (result.IsCompleted)
                    {
                        Close(buffer.IsEmpty
                            ? "the replica closed the connection"
                            : $"the replica closed the connection in the middle of a frame ({buffer.Length} bytes left over)");
                        return;
                    }
                }
                finally
                {
                    _reader.AdvanceTo(buffer.Start, buffer.End);
                }
            }
        }
        catch (Exception e)
        {
            Close(ConnectionErrors.Describe(e));
        }
        finally
        {
            await _reader.CompleteAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>The replica refused the handshake; <see cref="Exception.Message"/> is its reason, verbatim.</summary>
public sealed class HandshakeRejectedException(string reason) : Exception(reason);

/// <summary>The replica sent something the client protocol does not allow at that point.</summary>
internal sealed class ProtocolViolationException(string message) : Exception(message);

/// <summary>Turns transport exceptions into short lower-case phrases for error messages.</summary>
internal static class ConnectionErrors
{
    public static string Describe(Exception e)
    {
        switch (e)
        {
            case SocketException socket:
                return socket.SocketErrorCode switch
                {
                    SocketError.ConnectionRefused => "connection refused",
                    SocketError.ConnectionReset => "connection reset by the replica",
                    SocketError.ConnectionAborted => "connection aborted",
                    SocketError.TimedOut => "timed out",
                    SocketError.HostNotFound or SocketError.NoData => "host not found",
                    SocketError.HostUnreachable => "host unreachable",
                    SocketError.NetworkUnreachable => "network unreachable",
                    SocketError.Shutdown or SocketError.OperationAborted => "connection closed",
                    _ => socket.Message,
                };
            case IOException { InnerException: SocketException inner }:
                return Describe(inner);
            case FrameException frame:
                return $"bad frame from the replica: {frame.Message}";
            case ProtocolViolationException violation:
                return $"protocol violation: the replica {violation.Message}";
            case ObjectDisposedException or OperationCanceledException:
                return "connection closed";
            default:
                return e.Message;
        }
    }
}
