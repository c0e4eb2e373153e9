using System.Buffers;

namespace KvReplica.Protocol.Wire;

/// <summary>Fills in a record's or frame's header once its payload is known (length, checksums).</summary>
public delegate void HeaderWriter(Span<byte> header, ReadOnlySpan<byte> payload);

/// <summary>
/// Serializes a payload straight into the memory its destination offers, behind a header that
/// is written once the payload is complete: the frame codec (length prefix) and the log's
/// record framing (length and checksums) both need the payload's size before its first byte,
/// and this spares them serializing into a scratch buffer and copying it over.
/// </summary>
/// <remarks>
/// The destination's memory is taken with one <c>GetMemory</c> and written before its
/// <c>Advance</c>, as <see cref="IBufferWriter{T}"/> allows. A payload that outgrows that block
/// (a value larger than the size hint and the pipe's segment) moves to a scratch buffer and is
/// copied once, as before. One instance per thread, reused: callers never nest.
/// </remarks>
public sealed class PrefixedPayloadWriter : IBufferWriter<byte>
{
    [ThreadStatic]
    private static PrefixedPayloadWriter? t_current;

    private Memory<byte> _block;
    private int _headerBytes;
    private int _written;
    private ArrayBufferWriter<byte>? _overflow;
    private bool _overflowing;

    private PrefixedPayloadWriter()
    {
    }

    /// <summary>
    /// Starts a payload to go behind <paramref name="headerBytes"/> of header in
    /// <paramref name="destination"/>; serialize it into the returned writer, then call
    /// <see cref="Complete"/> with the same destination.
    /// </summary>
    /// <param name="destination">Where header and payload go.</param>
    /// <param name="headerBytes">The header's fixed size.</param>
    /// <param name="sizeHint">The payload's expected size: the block asked of the destination fits it.</param>
    public static PrefixedPayloadWriter Begin(IBufferWriter<byte> destination, int headerBytes, int sizeHint)
    {
        var writer = t_current ??= new PrefixedPayloadWriter();
        writer._headerBytes = headerBytes;
        writer._block = destination.GetMemory(headerBytes + Math.Max(sizeHint, 1));
        writer._written = 0;
        writer._overflowing = false;
        return writer;
    }

    /// <summary>
    /// Writes the header with <paramref name="writeHeader"/> (which may still refuse the payload
    /// by throwing: nothing is then committed) and commits header and payload to <paramref name="destination"/>.
    /// </summary>
    /// <returns>The payload's size in bytes.</returns>
    public int Complete(IBufferWriter<byte> destination, HeaderWriter writeHeader)
    {
        if (!_overflowing)
        {
            var span = _block.Span;
            writeHeader(span[.._headerBytes], span.Slice(_headerBytes, _written));
            _block = default;
            destination.Advance(_headerBytes + _written);
            return _written;
        }
        _block = default;
        var payload = _overflow!.WrittenSpan;
        var header = destination.GetSpan(_headerBytes);
        writeHeader(header[.._headerBytes], payload);
        destination.Advance(_headerBytes);
        destination.Write(payload);
        int written = payload.Length;
        if (_overflow.Capacity > 1 << 20)
        {
            // Do not pin a large value's buffer to the thread for ever.
            _overflow = null;
        }
        return written;
    }

    /// <inheritdoc/>
    public void Advance(int count)
    {
        if (_overflowing)
        {
            _overflow!.Advance(count);
        }
        else
        {
            _written += count;
        }
    }

    /// <inheritdoc/>
    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        if (!_overflowing)
        {
            int free = _block.Length - _headerBytes - _written;
            if (free >= Math.Max(sizeHint, 1))
            {
                return _block[(_headerBytes + _written)..];
            }
            // The block is too small: carry what is written so far to the scratch buffer.
            _overflow ??= new ArrayBufferWriter<byte>(4096);
            _overflow.ResetWrittenCount();
            _overflow.Write(_block.Span.Slice(_headerBytes, _written));
            _overflowing = true;
        }
        return _overflow!.GetMemory(sizeHint);
    }

    /// <inheritdoc/>
    public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;
}
