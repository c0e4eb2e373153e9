using System.Buffers;
using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using MessagePack;

namespace KvReplica.Store.Persistence;

/// <summary>One delivered write as the log stores it. Keys are part of the on-disk format: never renumbered.</summary>
[MessagePackObject]
public sealed class LoggedWrite
{
    [Key(0)] public long Time { get; set; }
    [Key(1)] public int ReplicaId { get; set; }
    [Key(2)] public Operation Operation { get; set; }
    [Key(3)] public string Key { get; set; } = "";
    [Key(4)] public byte[]? Value { get; set; }
    [Key(5)] public ulong ClientId { get; set; }
    [Key(6)] public long Sequence { get; set; }
    [Key(7)] public long AckedBelow { get; set; }

    public static LoggedWrite From(WriteCommand c) => new()
    {
        Time = c.Stamp.Time, ReplicaId = c.Stamp.ReplicaId, Operation = c.Operation, Key = c.Key,
        Value = c.Value, ClientId = c.ClientId, Sequence = c.Sequence, AckedBelow = c.AckedBelow,
    };

    public WriteCommand ToCommand() => new(new Stamp(Time, ReplicaId), Operation, Key, Value, ClientId, Sequence, AckedBelow);
}

/// <summary>What a scan of a log found.</summary>
/// <param name="Writes">Every whole, intact record, in log order.</param>
/// <param name="ValidBytes">Length of the intact prefix; a torn tail beyond it is to be truncated.</param>
/// <param name="TailProblem">Null for a clean end; otherwise what was wrong at offset <paramref name="ValidBytes"/>, for the log line.</param>
public sealed record WalScan(IReadOnlyList<WriteCommand> Writes, long ValidBytes, string? TailProblem);

/// <summary>
/// The write-ahead log's record format: delivered writes, each in one checksummed record
/// (<see cref="RecordFraming"/>). Appending and scanning are pure; the Node owns the file,
/// groups appends into one write and fsync per batch, and truncates a torn tail that a scan reports.
/// </summary>
public static class WriteAheadLog
{
    private static readonly MessagePackSerializerOptions Options = MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData);

    /// <summary>Appends one record per write to <paramref name="writer"/>: a group-commit batch.</summary>
    public static void Append(IBufferWriter<byte> writer, IEnumerable<WriteCommand> writes)
    {
        var scratch = new ArrayBufferWriter<byte>(256);
        foreach (var write in writes)
        {
            scratch.ResetWrittenCount();
            MessagePackSerializer.Serialize(scratch, LoggedWrite.From(write), Options);
            RecordFraming.Write(writer, scratch.WrittenSpan);
        }
    }

    /// <summary>
    /// Reads every intact record of <paramref name="log"/>. A torn or corrupt last record is
    /// reported in <see cref="WalScan.TailProblem"/> (to be truncated at <see cref="WalScan.ValidBytes"/>);
    /// damage anywhere else throws <see cref="StorageCorruptionException"/> naming the offset.
    /// </summary>
    public static WalScan Scan(ReadOnlySpan<byte> log)
    {
        var writes = new List<WriteCommand>();
        long offset = 0;
        while (true)
        {
            var status = RecordFraming.TryRead(log[(int)offset..], out var payload, out int recordBytes, out string problem);
            switch (status)
            {
                case RecordFraming.ReadStatus.End:
                    return new WalScan(writes, offset, null);
                case RecordFraming.ReadStatus.TornTail:
                case RecordFraming.ReadStatus.CorruptTail:
                    return new WalScan(writes, offset, $"{problem} at offset {offset}");
                case RecordFraming.ReadStatus.Corrupt:
                    throw new StorageCorruptionException($"write-ahead log is corrupt at offset {offset}: {problem}");
            }
            LoggedWrite entry;
            try
            {
                entry = MessagePackSerializer.Deserialize<LoggedWrite>(payload.ToArray(), Options);
            }
            catch (MessagePackSerializationException e)
            {
                // The checksum matched, so these bytes were written this way: a bug, not a torn write.
                throw new StorageCorruptionException($"write-ahead log record at offset {offset} passes its checksum but does not decode: {e.Message}");
            }
            writes.Add(entry.ToCommand());
            offset += recordBytes;
        }
    }
}
