using System.Buffers;
using System.Buffers.Binary;
using KvReplica.Protocol.Wire;

namespace KvReplica.Store.Persistence;

/// <summary>
/// The checksummed record framing shared by the write-ahead log and snapshots.
/// <code>
/// +--------------------+---------------------------+----------------------------+-----------+
/// | length: u32 LE     | header CRC-32C of length  | payload CRC-32C: u32 LE    | payload   |
/// +--------------------+---------------------------+----------------------------+-----------+
/// </code>
/// The length has its own checksum so that a damaged length is reported as corruption instead
/// of being mistaken for a torn tail (which would silently drop the records after it).
/// </summary>
public static class RecordFraming
{
    public const int HeaderBytes = 12;

    /// <summary>Largest payload a record may carry: bounds what a damaged file can make a reader allocate.</summary>
    public const int MaxPayloadBytes = 64 << 20;

    /// <summary>Appends one record carrying <paramref name="payload"/>.</summary>
    public static void Write(IBufferWriter<byte> writer, ReadOnlySpan<byte> payload)
    {
        var header = writer.GetSpan(HeaderBytes);
        WriteHeader(header, payload);
        writer.Advance(HeaderBytes);
        writer.Write(payload);
    }

    /// <summary>
    /// Appends one record whose payload <paramref name="writePayload"/> serializes straight into
    /// <paramref name="writer"/>'s memory, behind a header filled in once the payload is complete.
    /// </summary>
    /// <param name="writer">The batch the record is appended to.</param>
    /// <param name="sizeHint">The payload's expected size.</param>
    /// <param name="state">What <paramref name="writePayload"/> serializes.</param>
    /// <param name="writePayload">Writes the payload (a static lambda: no allocation per record).</param>
    public static void Write<TState>(IBufferWriter<byte> writer, int sizeHint, TState state, Action<IBufferWriter<byte>, TState> writePayload)
    {
        var payload = PrefixedPayloadWriter.Begin(writer, HeaderBytes, sizeHint);
        writePayload(payload, state);
        payload.Complete(writer, WriteHeader);
    }

    private static void WriteHeader(Span<byte> header, ReadOnlySpan<byte> payload)
    {
        if (payload.Length > MaxPayloadBytes)
        {
            throw new ArgumentException($"record payload of {payload.Length} bytes exceeds {MaxPayloadBytes}", nameof(payload));
        }
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], Crc32C.Compute(header[..4]));
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Crc32C.Compute(payload));
    }

    /// <summary>Outcome of reading one record at an offset.</summary>
    public enum ReadStatus
    {
        /// <summary>A whole, intact record.</summary>
        Record,
        /// <summary>No bytes left: a clean end.</summary>
        End,
        /// <summary>An incomplete record at the end (a write cut short), or zero fill after it.</summary>
        TornTail,
        /// <summary>A whole record whose payload checksum fails and that ends exactly at the end of the data.</summary>
        CorruptTail,
        /// <summary>A damaged header, or a damaged record followed by more data: never a torn write.</summary>
        Corrupt,
    }

    /// <summary>
    /// Reads the record at the start of <paramref name="data"/> (which runs to the end of the
    /// file). On <see cref="ReadStatus.Record"/>, <paramref name="payload"/> and
    /// <paramref name="recordBytes"/> describe it; otherwise <paramref name="problem"/> says what is wrong.
    /// </summary>
    public static ReadStatus TryRead(ReadOnlySpan<byte> data, out ReadOnlySpan<byte> payload, out int recordBytes, out string problem)
    {
        payload = default;
        recordBytes = 0;
        problem = "";
        if (data.IsEmpty)
        {
            return ReadStatus.End;
        }
        if (data.IndexOfAnyExcept((byte)0) < 0)
        {
            problem = $"{data.Length} zero bytes after the last record";
            return ReadStatus.TornTail;
        }
        if (data.Length < HeaderBytes)
        {
            problem = $"an incomplete record header ({data.Length} of {HeaderBytes} bytes)";
            return ReadStatus.TornTail;
        }
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(data);
        if (BinaryPrimitives.ReadUInt32LittleEndian(data[4..]) != Crc32C.Compute(data[..4]))
        {
            problem = "a record header fails its checksum";
            return ReadStatus.Corrupt;
        }
        if (length > MaxPayloadBytes)
        {
            problem = $"a record claims {length} bytes, over the {MaxPayloadBytes}-byte limit";
            return ReadStatus.Corrupt;
        }
        if (data.Length - HeaderBytes < length)
        {
            problem = $"an incomplete record ({data.Length - HeaderBytes} of {length} payload bytes)";
            return ReadStatus.TornTail;
        }
        var body = data.Slice(HeaderBytes, (int)length);
        if (BinaryPrimitives.ReadUInt32LittleEndian(data[8..]) != Crc32C.Compute(body))
        {
            bool last = data.Length == HeaderBytes + length;
            problem = last ? "the last record fails its checksum" : "a record fails its checksum with more records after it";
            return last ? ReadStatus.CorruptTail : ReadStatus.Corrupt;
        }
        payload = body;
        recordBytes = HeaderBytes + (int)length;
        return ReadStatus.Record;
    }
}

/// <summary>
/// Damage that is not a torn tail: a record in the middle of a log or snapshot fails its
/// checksum. Recovery stops with this message; it never skips data silently.
/// </summary>
public sealed class StorageCorruptionException(string message) : Exception(message);
