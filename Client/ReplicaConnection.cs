using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client;

/// <summary>
/// One client connection to one replica: the handshake, a writer loop that sends every queued
/// request with one flush per burst, and a reader loop that hands each reply to its waiter.
/// </summary>
internal sealed class ReplicaConnection
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly Channel<ClientRequest> _outgoing = Channel.CreateUnbounded<ClientRequest>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskCompletionSource<string> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action<ClientReply> _onReply;
    private readonly int _maxFrameBytes;

    private ReplicaConnection(ReplicaAddress replica, Socket socket, int maxFrameBytes, Action<ClientReply> onReply)
    {
        Replica = replica;
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = PipeReader.Create(_stream, new StreamPipeReaderOptions(leaveOpen: true));
        _writer = PipeWriter.Create(_stream, new StreamPipeWriterOptions(leaveOpen: true));
        _maxFrameBytes = maxFrameBytes;
        _onReply = onReply;
    }

    public ReplicaAddress Replica { get; }

    /// <summary>Completes, with the reason, when the connection is no longer usable.</summary>
    public Task<string> Closed => _closed.Task;

    public bool IsOpen => !_closed.Task.IsCompleted;

    /// <summary>Connects and completes the handshake, or throws <see cref="IOException"/> / <see cref="KvException"/> saying why not.</summary>
    public static async Task<ReplicaConnection> OpenAsync(ReplicaAddress replica, ClusterConfig config, TimeSpan timeout, Action<ClientReply> onReply, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        ReplicaConnection? connection = null;
        try
        {
            await socket.ConnectAsync(replica.Host, replica.Port, deadline.Token).ConfigureAwait(false);
            connection = new ReplicaConnection(replica, socket, config.MaxFrameBytes, onReply);
            FrameCodec.WriteFrame(connection._writer, new Hello { ProtocolVersion = ProtocolVersion.Current, ClusterName = config.ClusterName, Kind = PeerKind.Client });
            await connection._writer.FlushAsync(deadline.Token).ConfigureAwait(false);
            var answer = await connection.ReadOneAsync(deadline.Token).ConfigureAwait(false);
            switch (answer)
            {
                case HelloAccepted:
                    break;
                case HelloRejected rejected:
                    throw new KvException(ErrorCode.InvalidRequest, $"{replica} rejected the connection: {rejected.Reason}");
                case null:
                    throw new IOException($"{replica} closed the connection during the handshake");
                default:
                    throw new IOException($"{replica} answered the handshake with {answer.GetType().Name}");
            }
            _ = connection.RunWriterAsync();
            _ = connection.RunReaderAsync();
            return connection;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            connection?.Abort("handshake timed out");
            socket.Dispose();
            throw new IOException($"{replica}: no connection within {timeout.TotalMilliseconds:0} ms");
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new IOException($"{replica}: {e.Message}", e);
        }
        catch (FrameException e)
        {
            connection?.Abort(e.Message);
            throw new IOException($"{replica}: {e.Message}", e);
        }
        catch
        {
            connection?.Abort("handshake failed");
            socket.Dispose();
            throw;
        }
    }

    public void Send(ClientRequest request)
    {
        if (!_outgoing.Writer.TryWrite(request))
        {
            // Closed: the caller's wait on Closed will see it and retry elsewhere.
        }
    }

    public void Abort(string reason)
    {
        _closed.TrySetResult(reason);
        _outgoing.Writer.TryComplete();
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        _socket.Dispose();
    }

    private async Task<Message?> ReadOneAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            try
            {
                if (FrameCodec.TryReadFrame(ref buffer, _maxFrameBytes, out var message))
                {
                    return message;
                }
                if (result.IsCompleted)
                {
                    return null;
                }
            }
            finally
            {
                _reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
    }

    private async Task RunWriterAsync()
    {
        var reader = _outgoing.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (reader.TryRead(out var request))
                {
                    FrameCodec.WriteFrame(_writer, request);
                }
                var flushed = await _writer.FlushAsync().ConfigureAwait(false);
                if (flushed.IsCompleted)
                {
                    break;
                }
            }
            Abort("connection closed");
        }
        catch (Exception e)
        {
            Abort(e.Message);
        }
    }

    private async Task RunReaderAsync()
    {
        try
        {
            while (true)
            {
                var result = await _reader.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                try
                {
                    while (FrameCodec.TryReadFrame(ref buffer, _maxFrameBytes, out var message))
                    {
                        if (message is not ClientReply reply)
                        {
                            throw new FrameException($"replica sent {message.GetType().Name} where a reply was expected");
                        }
                        _onReply(reply);
                    }
                    if (result.IsCompleted)
                    {
                        Abort(buffer.Length > 0 ? "connection closed in the middle of a frame" : $"{Replica} closed the connection");
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
            Abort($"{Replica}: {e.Message}");
        }
    }
}
