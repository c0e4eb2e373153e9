using System.Buffers;
using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using MessagePack;

namespace KvReplica.Store.Persistence;

/// <summary>One held write as the log stores it. Keys are part of the on-disk format: never renumbered.</summary>
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
    /// <summary>CompareAndSet: the expected version (0 and 0: absent).</summary>
    [Key(8)] public long ExpectedTime { get; set; }
    [Key(9)] public int ExpectedReplica { get; set; }
    /// <summary>Txn: the transaction.</summary>
    [Key(10)] public TxnBody? Txn { get; set; }

    public static LoggedWrite From(WriteCommand c) => new()
    {
        Time = c.Stamp.Time, ReplicaId = c.Stamp.ReplicaId, Operation = c.Operation, Key = c.Key,
        Value = c.Value, ClientId = c.ClientId, Sequence = c.Sequence, AckedBelow = c.AckedBelow,
        ExpectedTime = c.Expected.Time, ExpectedReplica = c.Expected.ReplicaId, Txn = c.Txn,
    };

    public WriteCommand ToCommand() => new(new Stamp(Time, ReplicaId), Operation, Key, Value, ClientId, Sequence, AckedBelow)
    {
        Expected = new Stamp(ExpectedTime, ExpectedReplica),
        Txn = Txn,
    };
}

/// <summary>
/// One record of the write-ahead log, exactly one of: a write this replica now holds (stamped
/// here or received from a peer, logged before any acknowledgement covering it is sent); a
/// marker saying that every held write with a stamp up to <see cref="LastDelivered"/> has
/// been delivered; a view number this replica promised to join; a view it installed; a rebase
/// (every undelivered write logged before it is forgotten: <see cref="HeldRebase"/>).
/// </summary>
public readonly record struct LogEntry(WriteCommand? Held, Stamp LastDelivered, ViewJoin? Join = null, ViewInstall? View = null, HeldRebase? Rebase = null)
{
    public static LogEntry HeldWrite(WriteCommand write) => new(write, Stamp.Zero);

    public static LogEntry Delivered(Stamp through) => new(null, through);

    public static LogEntry Joined(ViewJoin join) => new(null, Stamp.Zero, join);

    public static LogEntry InstalledView(ViewInstall view) => new(null, Stamp.Zero, null, view);

    public static LogEntry Rebased(HeldRebase rebase) => new(null, Stamp.Zero, null, null, rebase);
}

/// <summary>What a scan of a log found.</summary>
/// <param name="Entries">Every whole, intact record, in log order.</param>
/// <param name="ValidBytes">Length of the intact prefix; a torn tail beyond it is to be truncated.</param>
/// <param name="TailProblem">Null for a clean end; otherwise what was wrong at offset <paramref name="ValidBytes"/>, for the log line.</param>
public sealed record WalScan(IReadOnlyList<LogEntry> Entries, long ValidBytes, string? TailProblem);

/// <summary>
/// The write-ahead log's record format: each <see cref="LogEntry"/> in one checksummed record
/// (<see cref="RecordFraming"/>) whose payload is a kind byte (1 held write, 2 delivered-through
/// marker) and a MessagePack body. Appending and scanning are pure; the Node owns the file,
/// groups appends into one write and fsync per batch, and truncates a torn tail that a scan reports.
/// </summary>
public static class WriteAheadLog
{
    private const byte HeldKind = 1;
    private const byte DeliveredKind = 2;
    private const byte JoinKind = 3;
    private const byte ViewKind = 4;
    private const byte RebaseKind = 5;
    private static readonly MessagePackSerializerOptions Options = MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData);

    /// <summary>Appends one record per entry to <paramref name="writer"/>: a group-commit batch.</summary>
    public static void Append(IBufferWriter<byte> writer, IEnumerable<LogEntry> entries)
    {
        foreach (var entry in entries)
        {
            // Each payload is serialized straight into the batch, behind its record header.
            int sizeHint = entry.Held is { } held ? 64 + held.Key.Length * 3 + (held.Value?.Length ?? 0) : 256;
            RecordFraming.Write(writer, sizeHint, entry, static (payload, entry) => WritePayload(payload, entry));
        }
    }

    // A record's payload: its kind byte, then its MessagePack body.
    private static void WritePayload(IBufferWriter<byte> payload, LogEntry entry)
    {
        if (entry.Held is { } write)
        {
            WriteKind(payload, HeldKind);
            MessagePackSerializer.Serialize(payload, LoggedWrite.From(write), Options);
        }
        else if (entry.View is { } view)
        {
            WriteKind(payload, ViewKind);
            MessagePackSerializer.Serialize(payload, view, Options);
        }
        else if (entry.Rebase is { } rebase)
        {
            WriteKind(payload, RebaseKind);
            MessagePackSerializer.Serialize(payload, rebase, Options);
        }
        else if (entry.Join is { } join)
        {
            WriteKind(payload, JoinKind);
            MessagePackSerializer.Serialize(payload, join, Options);
        }
        else
        {
            WriteKind(payload, DeliveredKind);
            MessagePackSerializer.Serialize(payload, new[] { entry.LastDelivered.Time, entry.LastDelivered.ReplicaId }, Options);
        }
    }

    private static void WriteKind(IBufferWriter<byte> payload, byte kind)
    {
        payload.GetSpan(1)[0] = kind;
        payload.Advance(1);
    }

    /// <summary>
    /// Reads every intact record of <paramref name="log"/>. A torn or corrupt last record is
    /// reported in <see cref="WalScan.TailProblem"/> (to be truncated at <see cref="WalScan.ValidBytes"/>);
    /// damage anywhere else throws <see cref="StorageCorruptionException"/> naming the offset.
    /// </summary>
    public static WalScan Scan(ReadOnlySpan<byte> log)
    {
        var entries = new List<LogEntry>();
        long offset = 0;
        while (true)
        {
            var status = RecordFraming.TryRead(log[(int)offset..], out var payload, out int recordBytes, out string problem);
            switch (status)
            {
                case RecordFraming.ReadStatus.End:
                    return new WalScan(entries, offset, null);
                case RecordFraming.ReadStatus.TornTail:
                case RecordFraming.ReadStatus.CorruptTail:
                    return new WalScan(entries, offset, $"{problem} at offset {offset}");
                case RecordFraming.ReadStatus.Corrupt:
                    throw new StorageCorruptionException($"write-ahead log is corrupt at offset {offset}: {problem}");
            }
            entries.Add(Decode(payload, offset));
            offset += recordBytes;
        }
    }

    private static LogEntry Decode(ReadOnlySpan<byte> payload, long offset)
    {
        try
        {
            if (payload.Length > 1 && payload[0] == HeldKind)
            {
                return LogEntry.HeldWrite(MessagePackSerializer.Deserialize<LoggedWrite>(payload[1..].ToArray(), Options).ToCommand());
            }
            if (payload.Length > 1 && payload[0] == JoinKind)
            {
                return LogEntry.Joined(MessagePackSerializer.Deserialize<ViewJoin>(payload[1..].ToArray(), Options));
            }
            if (payload.Length > 1 && payload[0] == ViewKind)
            {
                return LogEntry.InstalledView(MessagePackSerializer.Deserialize<ViewInstall>(payload[1..].ToArray(), Options));
            }
            if (payload.Length > 1 && payload[0] == RebaseKind)
            {
                var rebase = MessagePackSerializer.Deserialize<HeldRebase>(payload[1..].ToArray(), Options);
                if (rebase.Origins.Length == rebase.HeldThrough.Length)
                {
                    return LogEntry.Rebased(rebase);
                }
            }
            if (payload.Length > 1 && payload[0] == DeliveredKind)
            {
                long[] stamp = MessagePackSerializer.Deserialize<long[]>(payload[1..].ToArray(), Options);
                if (stamp.Length == 2 && stamp[1] is >= 0 and <= int.MaxValue)
                {
                    return LogEntry.Delivered(new Stamp(stamp[0], (int)stamp[1]));
                }
            }
        }
        catch (MessagePackSerializationException e)
        {
            // The checksum matched, so these bytes were written this way: a bug, not a torn write.
            throw new StorageCorruptionException($"write-ahead log record at offset {offset} passes its checksum but does not decode: {e.Message}");
        }
        throw new StorageCorruptionException($"write-ahead log record at offset {offset} passes its checksum but has unknown kind {(payload.Length > 0 ? payload[0] : -1)}");
    }
}
