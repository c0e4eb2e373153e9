using System.Buffers;
using System.Buffers.Binary;
using KvReplica.Clock;
using KvReplica.Protocol.Wire;
using MessagePack;

namespace KvReplica.Store.Persistence;

/// <summary>
/// A snapshot of the store: every key with its value and version, the exactly-once client
/// sessions (in recency order, so eviction continues identically), and the stamp of the last
/// write it includes. A sequence of checksummed records (<see cref="RecordFraming"/>): a header,
/// entries in batches, sessions in batches, and a footer with the counts. Written and read as a
/// stream, a batch at a time, so a large store needs no second copy in memory.
/// </summary>
/// <remarks>The same format will serve state transfer and backups (issue 3).</remarks>
public static class SnapshotFormat
{
    private const string Magic = "KVREPLICA-SNAPSHOT";
    private const int FormatVersion = 1;
    private const int BatchSize = 1024;
    private static readonly MessagePackSerializerOptions Options = MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData);

    [MessagePackObject]
    public sealed class Header
    {
        [Key(0)] public string Magic { get; set; } = "";
        [Key(1)] public int Version { get; set; }
        [Key(2)] public long LastAppliedTime { get; set; }
        [Key(3)] public int LastAppliedReplica { get; set; }
        /// <summary>For each origin, the largest time of its writes included (the store's <see cref="KvStore.AppliedThroughByOrigin"/>).</summary>
        [Key(4)] public Dictionary<int, long> AppliedThroughByOrigin { get; set; } = [];
    }

    [MessagePackObject]
    public sealed class Entry
    {
        [Key(0)] public string Key { get; set; } = "";
        [Key(1)] public byte[] Value { get; set; } = [];
        [Key(2)] public long VersionTime { get; set; }
        [Key(3)] public int VersionReplica { get; set; }
    }

    [MessagePackObject]
    public sealed class Session
    {
        [Key(0)] public ulong ClientId { get; set; }
        [Key(1)] public long Floor { get; set; }
        [Key(2)] public long[] Sequences { get; set; } = [];
        [Key(3)] public ReplyStatus[] Results { get; set; } = [];
    }

    /// <summary>Record kinds, in the order they appear. Part of the on-disk format.</summary>
    private enum Kind : byte
    {
        Header = 1,
        Entries = 2,
        Sessions = 3,
        Footer = 4,
    }

    public static void Write(Stream output, KvStore store)
    {
        var buffer = new ArrayBufferWriter<byte>(64 * 1024);
        void Emit(Kind kind, object body, Type type)
        {
            var payload = new ArrayBufferWriter<byte>();
            payload.GetSpan(1)[0] = (byte)kind;
            payload.Advance(1);
            MessagePackSerializer.Serialize(type, payload, body, Options);
            RecordFraming.Write(buffer, payload.WrittenSpan);
            if (buffer.WrittenCount > 32 * 1024)
            {
                output.Write(buffer.WrittenSpan);
                buffer.ResetWrittenCount();
            }
        }
        Emit(Kind.Header, new Header { Magic = Magic, Version = FormatVersion, LastAppliedTime = store.LastApplied.Time, LastAppliedReplica = store.LastApplied.ReplicaId, AppliedThroughByOrigin = new(store.AppliedThroughByOrigin) }, typeof(Header));
        long entries = 0;
        foreach (var chunk in store.Entries().Chunk(BatchSize))
        {
            Emit(Kind.Entries, chunk.Select(e => new Entry { Key = e.Key, Value = e.Value, VersionTime = e.Version.Time, VersionReplica = e.Version.ReplicaId }).ToArray(), typeof(Entry[]));
            entries += chunk.Length;
        }
        long sessions = 0;
        foreach (var chunk in store.ExportSessions().Chunk(BatchSize))
        {
            Emit(Kind.Sessions, chunk.Select(s => new Session { ClientId = s.ClientId, Floor = s.Floor, Sequences = [.. s.Results.Select(r => r.Sequence)], Results = [.. s.Results.Select(r => r.Result)] }).ToArray(), typeof(Session[]));
            sessions += chunk.Length;
        }
        Emit(Kind.Footer, new[] { entries, sessions }, typeof(long[]));
        output.Write(buffer.WrittenSpan);
    }

    /// <summary>Rebuilds a store from a snapshot; throws <see cref="StorageCorruptionException"/> for any damage or truncation.</summary>
    public static KvStore Read(Stream input, int maxSessions = 100_000)
    {
        int index = 0;
        var header = ReadRecord(input, out var kind, ref index);
        if (kind != Kind.Header)
        {
            throw new StorageCorruptionException("snapshot does not start with a header record");
        }
        var head = MessagePackSerializer.Deserialize<Header>(header, Options);
        if (head.Magic != Magic || head.Version != FormatVersion)
        {
            throw new StorageCorruptionException($"not a KvReplica snapshot of format {FormatVersion} (magic '{head.Magic}', version {head.Version})");
        }
        var store = new KvStore(maxSessions);
        var entries = new List<(string, byte[], Stamp)>();
        var sessions = new List<(ulong, long, IReadOnlyList<(long, ReplyStatus)>)>();
        while (true)
        {
            var payload = ReadRecord(input, out kind, ref index);
            switch (kind)
            {
                case Kind.Entries:
                    entries.AddRange(MessagePackSerializer.Deserialize<Entry[]>(payload, Options).Select(e => (e.Key, e.Value, new Stamp(e.VersionTime, e.VersionReplica))));
                    break;
                case Kind.Sessions:
                    sessions.AddRange(MessagePackSerializer.Deserialize<Session[]>(payload, Options).Select(s => (s.ClientId, s.Floor, (IReadOnlyList<(long, ReplyStatus)>)s.Sequences.Zip(s.Results).ToList())));
                    break;
                case Kind.Footer:
                    var counts = MessagePackSerializer.Deserialize<long[]>(payload, Options);
                    if (counts.Length != 2 || counts[0] != entries.Count || counts[1] != sessions.Count)
                    {
                        throw new StorageCorruptionException($"snapshot footer counts {string.Join("/", counts)} do not match {entries.Count} entries and {sessions.Count} sessions read");
                    }
                    if (input.ReadByte() >= 0)
                    {
                        throw new StorageCorruptionException($"data after the snapshot footer (record {index})");
                    }
                    store.Restore(entries, sessions, new Stamp(head.LastAppliedTime, head.LastAppliedReplica), head.AppliedThroughByOrigin);
                    return store;
                default:
                    throw new StorageCorruptionException($"unexpected kind {(byte)kind} in snapshot record {index}");
            }
        }
    }

    private static ReadOnlyMemory<byte> ReadRecord(Stream input, out Kind kind, ref int index)
    {
        index++;
        Span<byte> header = stackalloc byte[RecordFraming.HeaderBytes];
        int got = input.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
        if (got < header.Length)
        {
            throw new StorageCorruptionException(got == 0 ? $"snapshot ends after record {index - 1} without a footer (truncated)" : $"snapshot ends inside the header of record {index} (truncated)");
        }
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (length > RecordFraming.MaxPayloadBytes || BinaryPrimitives.ReadUInt32LittleEndian(header[4..]) != Crc32C.Compute(header[..4]))
        {
            throw new StorageCorruptionException($"snapshot record {index} has a damaged header");
        }
        var record = new byte[RecordFraming.HeaderBytes + length];
        header.CopyTo(record);
        if (input.ReadAtLeast(record.AsSpan(RecordFraming.HeaderBytes), (int)length, throwOnEndOfStream: false) < length)
        {
            throw new StorageCorruptionException($"snapshot ends inside record {index} (truncated)");
        }
        if (RecordFraming.TryRead(record, out var payload, out _, out string problem) != RecordFraming.ReadStatus.Record || payload.Length == 0)
        {
            throw new StorageCorruptionException($"snapshot record {index} is damaged: {problem}");
        }
        kind = (Kind)payload[0];
        return record.AsMemory(RecordFraming.HeaderBytes + 1, (int)length - 1);
    }
}
