using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using KvReplica.Protocol.Wire;

namespace KvReplica.Transport;

/// <summary>
/// How long a frame that has started may take to arrive (the slow-sender limits a replica puts on
/// what it accepts; docs/protocol.md, "Limits on a connection"). Between frames there is no limit.
/// </summary>
/// <param name="ProgressTimeout">More of a started frame must arrive within this long.</param>
/// <param name="MinBytesPerSecond">A started frame must arrive whole within <paramref name="ProgressTimeout"/> plus its length at this rate.</param>
public sealed record FrameDeadlines(TimeSpan ProgressTimeout, int MinBytesPerSecond)
{
    /// <summary>What a replica allows the connections it accepts: 10 s of no progress, 64 KiB/s.</summary>
    public static FrameDeadlines Replica { get; } = new(TimeSpan.FromSeconds(10), 64 * 1024);
}

/// <summary>
/// A TCP socket (under TLS when the cluster has it) carrying length-prefixed MessagePack frames, read and written through
/// System.IO.Pipelines: the one framed read loop and writer of every connection, accepted by a replica or dialled
/// (<see cref="ReplicaDialer"/>). Reading parses every whole frame per read, so a burst costs one wake-up.
/// Not safe for concurrent reads or concurrent writes; one reader and one writer may run together.
/// </summary>
public sealed class FramedConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly int _maxFrameBytes;
    private readonly FrameDeadlines? _deadlines;
    // Frames parsed by a read but not yet taken by ReadFrameAsync, which hands out one at a time.
    private readonly Queue<Message> _unread = new();
    private int _closed;
    // The deadlines of the frame now partly received (_deadlines): a timer wakes the read
    // (CancelPendingRead) when one passes. Created with the first frame split across reads.
    private Timer? _frameTimer;
    private long _frameProgressDeadline;
    private long _frameWholeDeadline;

    /// <summary>
    /// Frames over <paramref name="stream"/>: the socket's own NetworkStream, or a TLS stream
    /// over it. The socket is kept to abort the connection at once from any thread. Reads are held
    /// to <see cref="FrameDeadlines.Replica"/>, as a replica holds what it accepts.
    /// </summary>
    public FramedConnection(Socket socket, Stream stream, int maxFrameBytes)
        : this(socket, stream, maxFrameBytes, FrameDeadlines.Replica)
    {
    }

    /// <summary>As the other constructor, with the read deadlines given; null for none (a dialled connection).</summary>
    public FramedConnection(Socket socket, Stream stream, int maxFrameBytes, FrameDeadlines? deadlines)
    {
        _socket = socket;
        _socket.NoDelay = true;
        _stream = stream;
        _reader = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, leaveOpen: true));
        _writer = PipeWriter.Create(_stream, new StreamPipeWriterOptions(leaveOpen: true));
        _maxFrameBytes = maxFrameBytes;
        _deadlines = deadlines;
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
        if (_unread.Count > 0)
        {
            while (_unread.TryDequeue(out var message))
            {
                into.Add(message);
            }
            return true;
        }
        while (true)
        {
            ArmFrameTimer();
            var result = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            int before = into.Count;
            try
            {
                if (_frameWholeDeadline != 0)
                {
                    _frameTimer?.Change(Timeout.Infinite, Timeout.Infinite);
                    if (result.IsCanceled)
                    {
                        // Woken by the timer (or by a late firing of an earlier arming: then not late).
                        ThrowIfFrameLate(Environment.TickCount64);
                    }
                }
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
                TrackPartialFrame(buffer, startedNow: into.Count > before || _frameWholeDeadline == 0);
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

    // After every read, with what is left of the buffer (a partial frame, or nothing): a frame
    // that starts now gets its whole-frame deadline, FrameProgressTimeout plus its length at
    // MinFrameBytesPerSecond. Between frames there is no deadline: an idle client or peer is fine.
    private void TrackPartialFrame(ReadOnlySequence<byte> rest, bool startedNow)
    {
        if (rest.Length == 0)
        {
            _frameWholeDeadline = 0;
            return;
        }
        if (startedNow && _deadlines is { } deadlines)
        {
            long length = _maxFrameBytes;
            if (rest.Length >= FrameCodec.HeaderBytes)
            {
                Span<byte> header = stackalloc byte[FrameCodec.HeaderBytes];
                rest.Slice(0, FrameCodec.HeaderBytes).CopyTo(header);
                length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(header);
            }
            _frameWholeDeadline = Environment.TickCount64 + (long)deadlines.ProgressTimeout.TotalMilliseconds + length * 1000 / deadlines.MinBytesPerSecond;
        }
    }

    // Before waiting for bytes of a partial frame: wake the read (CancelPendingRead) when the
    // next byte is due. The progress clock runs only while this connection waits for the sender,
    // so time this replica spent elsewhere (its core loop busy) is never held against the peer.
    private void ArmFrameTimer()
    {
        if (_frameWholeDeadline == 0 || _deadlines is not { } deadlines)
        {
            return;
        }
        long now = Environment.TickCount64;
        _frameProgressDeadline = Math.Min(now + (long)deadlines.ProgressTimeout.TotalMilliseconds, _frameWholeDeadline);
        ThrowIfFrameLate(now);
        _frameTimer ??= new Timer(static state => WakeReader((PipeReader)state!), _reader, Timeout.Infinite, Timeout.Infinite);
        _frameTimer.Change(_frameProgressDeadline - now, Timeout.Infinite);
    }

    private static void WakeReader(PipeReader reader)
    {
        try
        {
            reader.CancelPendingRead();
        }
        catch (InvalidOperationException)
        {
            // The connection closed meanwhile: nothing is waiting.
        }
    }

    private void ThrowIfFrameLate(long now)
    {
        if (_frameWholeDeadline != 0 && now >= _frameProgressDeadline && _deadlines is { } deadlines)
        {
            throw new FrameException(now >= _frameWholeDeadline
                ? $"a frame did not arrive whole in time (at least {deadlines.MinBytesPerSecond / 1024} KiB/s after its first {deadlines.ProgressTimeout.TotalSeconds:0} s)"
                : $"a frame stopped arriving: nothing more of it for {deadlines.ProgressTimeout.TotalSeconds:0} s");
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

    /// <summary>
    /// The next frame, one at a time (an exchange of single messages: a handshake, a query, a
    /// stream of chunks). <paramref name="during"/> names the exchange in the
    /// <see cref="IOException"/> thrown when the replica closes between frames; a close in the
    /// middle of one, or an invalid frame, is a <see cref="FrameException"/>.
    /// </summary>
    public async ValueTask<Message> ReadFrameAsync(string during, CancellationToken cancellationToken)
    {
        if (_unread.Count == 0)
        {
            var read = new List<Message>();
            if (!await ReadFramesAsync(read, cancellationToken).ConfigureAwait(false))
            {
                throw new IOException($"closed the connection during the {during}");
            }
            foreach (var message in read)
            {
                _unread.Enqueue(message);
            }
        }
        return _unread.Dequeue();
    }

    /// <summary>Buffers one frame; nothing is sent until <see cref="FlushAsync"/>.</summary>
    public void Write(Message message) => FrameCodec.WriteFrame(_writer, message);

    /// <summary>Bytes written by <see cref="Write"/> and not yet flushed.</summary>
    public long UnflushedBytes => _writer.CanGetUnflushedBytes ? _writer.UnflushedBytes : 0;

    /// <summary>Sends what <see cref="Write"/> buffered; throws <see cref="IOException"/> when the peer stopped reading.</summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        if (!await TryFlushAsync(cancellationToken).ConfigureAwait(false))
        {
            throw new IOException("connection closed by the peer");
        }
    }

    /// <summary>Sends what <see cref="Write"/> buffered; false when the peer stopped reading.</summary>
    public async ValueTask<bool> TryFlushAsync(CancellationToken cancellationToken)
    {
        var result = await _writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        return !result.IsCompleted;
    }

    /// <summary>Writes and flushes one frame.</summary>
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

    /// <summary>Aborts the socket, then releases the pipes and the stream. Bytes written and not flushed are dropped.</summary>
    public async ValueTask DisposeAsync()
    {
        Abort();
        if (_frameTimer is not null)
        {
            await _frameTimer.DisposeAsync().ConfigureAwait(false);
        }
        await _reader.CompleteAsync().ConfigureAwait(false);
        // Completed as failed, so the writer does not try to send what it still buffers: the
        // socket is closed, and that write's error would replace the exception (often a
        // cancellation) that is unwinding through this DisposeAsync.
        await _writer.CompleteAsync(new IOException("connection closed")).ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
    }
}
