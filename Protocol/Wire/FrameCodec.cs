using System.Buffers;
using System.Buffers.Binary;
using MessagePack;

namespace KvReplica.Protocol.Wire;

/// <summary>
/// Length-prefixed MessagePack frames.
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +---------------------------------------------------------------+
/// |              payload length, uint32, big-endian               |
/// +---------------------------------------------------------------+
/// |  payload: one MessagePack-encoded Message (union [tag, body]) |
/// +---------------------------------------------------------------+
/// </code>
/// </summary>
/// <remarks>
/// Pure and static, so it is property-tested without sockets. The length is checked against
/// the maximum before waiting for the body, so an oversized prefix is rejected at once instead
/// of buffering gigabytes. Payloads are decoded with MessagePack's UntrustedData security
/// (bounded depth, hash-collision-resistant maps).
/// </remarks>
public static class FrameCodec
{
    public const int HeaderBytes = 4;

    /// <summary>MessagePack options for anything read from a socket or a disk.</summary>
    public static readonly MessagePackSerializerOptions Options =
        MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData);

    /// <summary>
    /// Takes one whole frame off the front of <paramref name="buffer"/>.
    /// Returns false, leaving the buffer untouched, when more bytes are needed.
    /// Throws <see cref="FrameException"/> for a frame that can never be valid.
    /// </summary>
    public static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxFrameBytes, out Message message)
    {
        message = null!;
        if (buffer.Length < HeaderBytes)
        {
            return false;
        }
        Span<byte> header = stackalloc byte[HeaderBytes];
        buffer.Slice(0, HeaderBytes).CopyTo(header);
        uint length = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (length > (uint)maxFrameBytes)
        {
            throw new FrameException($"frame of {length} bytes exceeds the limit of {maxFrameBytes} bytes");
        }
        if (length == 0)
        {
            throw new FrameException("empty frame");
        }
        if (buffer.Length < HeaderBytes + length)
        {
            return false;
        }
        var payload = buffer.Slice(HeaderBytes, length);
        message = Decode(payload);
        buffer = buffer.Slice(payload.End);
        return true;
    }

    /// <summary>Decodes one payload; throws <see cref="FrameException"/> if it is not a valid message.</summary>
    public static Message Decode(ReadOnlySequence<byte> payload)
    {
        Message? decoded;
        try
        {
            var reader = new MessagePackReader(payload);
            decoded = MessagePackSerializer.Deserialize<Message>(ref reader, Options);
            if (!reader.End)
            {
                throw new FrameException($"{payload.Length - reader.Consumed} trailing bytes after the message");
            }
        }
        catch (MessagePackSerializationException e)
        {
            throw new FrameException($"malformed payload: {Innermost(e).Message}", e);
        }
        return decoded ?? throw new FrameException("payload decodes to nil");
    }

    /// <summary>Appends one frame carrying <paramref name="message"/> to <paramref name="writer"/>; returns the payload size.</summary>
    public static int WriteFrame(IBufferWriter<byte> writer, Message message)
    {
        // Serialized straight into the writer's memory behind a reserved length prefix, which
        // is filled in once the payload's size is known (no scratch copy unless it outgrows the block).
        var payload = PrefixedPayloadWriter.Begin(writer, HeaderBytes, SizeHint(message));
        MessagePackSerializer.Serialize(payload, message, Options);
        return payload.Complete(writer, static (header, body) => BinaryPrimitives.WriteUInt32BigEndian(header, (uint)body.Length));
    }

    // About the message's size, so that the writer offers a block it fits in: too small, and a
    // large value overflows to a scratch copy; too large, and a pipe starts a new segment early,
    // which a flush then writes with one more system call.
    private static int SizeHint(Message message) => message switch
    {
        ClientRequest request => 48 + request.Key.Length * 3 + (request.Value?.Length ?? 0),
        ClientReply reply => 48 + (reply.Value?.Length ?? 0) + (reply.ErrorMessage?.Length ?? 0) * 3,
        ReplicaEnvelope { Body: OrderBatch batch } => 96 + 12 * batch.Origins.Length + WritesSize(batch.Writes),
        ReplicaEnvelope { Body: ReadQuery query } => 48 + query.Key.Length * 3,
        ReplicaEnvelope { Body: ReadAnswer answer } => 64 + (answer.Value?.Length ?? 0),
        _ => 64,
    };

    private static int WritesSize(WriteEntry[] writes)
    {
        int size = 0;
        foreach (var write in writes)
        {
            size += 48 + write.Key.Length * 3 + (write.Value?.Length ?? 0);
        }
        return size;
    }

    /// <summary>One frame as a standalone byte array (tests, tools).</summary>
    public static byte[] ToFrameBytes(Message message)
    {
        var writer = new ArrayBufferWriter<byte>();
        WriteFrame(writer, message);
        return writer.WrittenSpan.ToArray();
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }
        return e;
    }
}

/// <summary>
/// A frame that can never be valid: oversized, empty, malformed or of an unknown type.
/// Connection-fatal: the connection that sent it is closed with this message logged; the
/// replica carries on.
/// </summary>
public sealed class FrameException : Exception
{
    public FrameException(string message) : base(message) { }
    public FrameException(string message, Exception inner) : base(message, inner) { }
}
