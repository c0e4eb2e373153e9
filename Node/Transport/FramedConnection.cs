using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using KvReplica.Protocol.Wire;

namespace KvReplica.Node.Transport;

/// <summary>
/// A TCP socket (under TLS when the cluster has it) carrying length-prefixed MessagePack frames, read and written through
/// System.IO.Pipelines. Reading parses every whole frame per read, so a burst costs one wake-up.
/// Not safe for concurrent reads or concurrent writes; one reader and one writer may run together.
/// </summary>
internal sealed class FramedConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly int _maxFrameBytes;
    private int _closed;

    /// <summary>
    /// Frames over <paramref name="stream"/>: the socket's own NetworkStream, or a TLS stream
    /// over it. The socket is kept to abort the connection at once from any thread.
    /// </summary>
    public FramedConnection(Socket socket, Stream stream, int maxFrameBytes)
    {
        _socket = socket;
        _socket.NoDelay = true;
        _stream = stream;
        _reader = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, leaveOpen: true));
        _writer = PipeWriter.Create(_stream, new StreamPipeWriterOptions(leaveOpen: true));
        _maxFrameBytes = maxFrameBytes;
        Remote = socket.RemoteEndPoint?.ToString() ?? "unknown";
    }

    /// <summary>The remote address, for log lines.</summary>
    public string Remote { get; }

    /// <summary>
    /// Waits for at least one whole frame and appends every whole frame now buffered to
    /// <paramref name="into"/>. Returns false when the peer closed cleanly between frames.
    /// Throws <see cref="FrameException"/> for an invalid frame or a close in the middle of one.
    /// </summary>
    public async ValueTask<bool> ReadFramesAsync(List<Message> into, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            int before = into.Count;
            try
            {
                while (FrameCodec.TryReadFrame(ref buffer, _maxFrameBytes, out var message))
                {
                    into.Add(message);
                }
                if (result.IsCompleted && into.Count == before)
                {
                    if (buffer.Length > 0)
                    {
                        throw new FrameException($"connection closed in the middle of a frame ({buffer.Length} bytes left over)");
                    }
                    return false;
                }
            }
            finally
            {
                // Consumed up to the last whole frame; examined everything, so the next read
                // waits for new bytes rather than spinning on a partial frame.
                _reader.AdvanceTo(buffer.Start, buffer.End);
            }
            if (into.Count > before)
            {
                return true;
            }
        }
    }

    /// <summary>Reads exactly one message (the handshake); null on a clean close.</summary>
    public async ValueTask<Message?> ReadOneAsync(CancellationToken cancellationToken)
    {
        var one = new List<Message>(1);
        if (!await ReadFramesAsync(one, cancellationToken).ConfigureAwait(false))
        {
            return null;
        }
        if (one.Count > 1)
        {
            throw new FrameException("frames sent before the handshake was answered");
        }
        return one[0];
    }

    /// <summary>Buffers one frame; nothing is sent until <see cref="FlushAsync"/>.</summary>
    public void Write(Message message) => FrameCodec.WriteFrame(_writer, message);

    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        var result = await _writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (result.IsCompleted)
        {
            throw new IOException("connection closed by the peer");
        }
    }

    public async ValueTask SendAsync(Message message, CancellationToken cancellationToken)
    {
        Write(message);
        await FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Closes the socket at once; pending reads and writes fail. Safe to call more than once.</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            try
            {
                _socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
                // Already reset by the peer; closing below is all that is left to do.
            }
            catch (ObjectDisposedException)
            {
            }
            _socket.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        Abort();
        await _reader.CompleteAsync().ConfigureAwait(false);
        await _writer.CompleteAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
    }
}
