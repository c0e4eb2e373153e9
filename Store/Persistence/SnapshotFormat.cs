using KvReplica.Protocol.Core;
using System.Buffers;
using System.Buffers.Binary;
using KvReplica.Clock;
using KvReplica.Protocol.Wire;
using KvReplica.Store.Engine;
using MessagePack;

namespace KvReplica.Store.Persistence;

/// <summary>
/// A snapshot of the store: every key with its value and version, the exactly-once client
/// sessions (in recency order, so eviction continues identically), and the stamp of the last
/// write it includes. A sequence of checksummed records (<see cref="RecordFraming"/>): a header,
/// entries in batches, sessions in batches, and a footer with the counts. Written and read as a
/// stream, a batch at a time, so a large store needs no second copy in memory.
/// </summary>
/// <remarks>The format of backups and of the state a catch-up streams; also how a data directory of
/// the format before the storage engine held its state (docs/design.md, "The storage engine").</remarks>
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

    /// <summary>Writes a snapshot of everything <paramref name="store"/> has applied (its uncommitted writes included).</summary>
    public static void Write(Stream output, KvStore store)
    {
        foreach (var chunk in Encode(HeaderOf(store.LastApplied, store.AppliedThroughByOrigin), store.Scan(KeyRange.All), store.ExportSessions()))
        {
            output.Write(chunk.Span);
        }
    }

    /// <summary>
    /// A snapshot of one engine commit as a read-only stream, produced as it is read (a batch of
    /// entries at a time), so streaming a store of any size costs one batch of memory. The same
    /// view always gives the same bytes, which is what lets a broken transfer resume at an offset.
    /// </summary>
    public static Stream OpenStream(IEngineView view)
    {
        var applied = view.Applied;
        var header = HeaderOf(applied?.LastApplied ?? Stamp.Zero, applied?.AppliedThroughByOrigin ?? new Dictionary<int, long>());
        return new ChunkStream(Encode(header, view.Scan(KeyRange.All), view.Sessions()));
    }

    private static Header HeaderOf(Stamp lastApplied, IReadOnlyDictionary<int, long> byOrigin) =>
        new() { Magic = Magic, Version = FormatVersion, LastAppliedTime = lastApplied.Time, LastAppliedReplica = lastApplied.ReplicaId, AppliedThroughByOrigin = new(byOrigin) };

    // The snapshot's bytes, about 32 KiB at a time: header, entry batches, session batches, footer.
    private static IEnumerable<ReadOnlyMemory<byte>> Encode(Header header, IEnumerable<StoredEntry> entries, IEnumerable<SessionRecord> sessions)
    {
        var buffer = new ArrayBufferWriter<byte>(64 * 1024);
        var payload = new ArrayBufferWriter<byte>(64 * 1024);
        void Emit(Kind kind, object body, Type type)
        {
            payload.ResetWrittenCount();
            payload.GetSpan(1)[0] = (byte)kind;
            payload.Advance(1);
            MessagePackSerializer.Serialize(type, payload, body, Options);
            RecordFraming.Write(buffer, payload.WrittenSpan);
        }
        Emit(Kind.Header, header, typeof(Header));
        long entryCount = 0;
        foreach (var chunk in entries.Chunk(BatchSize))
        {
            Emit(Kind.Entries, chunk.Select(e => new Entry { Key = e.Key, Value = e.Value, VersionTime = e.Version.Time, VersionReplica = e.Version.ReplicaId }).ToArray(), typeof(Entry[]));
            entryCount += chunk.Length;
            if (buffer.WrittenCount > 32 * 1024)
            {
                yield return buffer.WrittenMemory.ToArray();
                buffer.ResetWrittenCount();
            }
        }
        long sessionCount = 0;
        foreach (var chunk in sessions.Chunk(BatchSize))
        {
            Emit(Kind.Sessions, chunk.Select(s => new Session { ClientId = s.ClientId, Floor = s.Floor, Sequences = s.Sequences, Results = s.Results }).ToArray(), typeof(Session[]));
            sessionCount += chunk.Length;
            if (buffer.WrittenCount > 32 * 1024)
            {
                yield return buffer.WrittenMemory.ToArray();
                buffer.ResetWrittenCount();
            }
        }
        Emit(Kind.Footer, new[] { entryCount, sessionCount }, typeof(long[]));
        yield return buffer.WrittenMemory.ToArray();
    }

    /// <summary>Rebuilds a store (over a new in-memory engine) from a snapshot; throws <see cref="StorageCorruptionException"/> for any damage or truncation.</summary>
    public static KvStore Read(Stream input, int maxSessions = 100_000)
    {
        var engine = new MemoryEngine();
        ReadInto(input, engine);
        return new KvStore(engine, maxSessions);
    }

    /// <summary>
    /// Loads a snapshot into an empty engine, a batch of commits at a time (so a large snapshot
    /// needs no copy in memory); the applied point is written by the last commit only, after the
    /// footer's counts have checked out. Throws <see cref="StorageCorruptionException"/> for any
    /// damage or truncation, in which case the engine holds part of the entries and no applied
    /// point, and must be thrown away. Returns the applied point.
    /// </summary>
    public static AppliedPoint ReadInto(Stream input, IStorageEngine engine, int entriesPerCommit = 100_000)
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
        var batch = new EngineBatch();
        long entries = 0, sessions = 0;
        while (true)
        {
            var payload = ReadRecord(input, out kind, ref index);
            switch (kind)
            {
                case Kind.Entries:
                    foreach (var e in MessagePackSerializer.Deserialize<Entry[]>(payload, Options))
                    {
                        batch.Entries.Add(new EntryChange(e.Key, e.Value, new Stamp(e.VersionTime, e.VersionReplica)));
                        entries++;
                    }
                    if (batch.Entries.Count >= entriesPerCommit)
                    {
                        engine.Commit(batch);
                        batch = new EngineBatch();
                    }
                    break;
                case Kind.Sessions:
                    foreach (var s in MessagePackSerializer.Deserialize<Session[]>(payload, Options))
                    {
                        if (s.Sequences.Length != s.Results.Length)
                        {
                            throw new StorageCorruptionException($"snapshot record {index}: session {s.ClientId:x} has {s.Sequences.Length} sequences but {s.Results.Length} results");
                        }
                        // Sessions are stored least recently used first; their position is their recency.
                        sessions++;
                        batch.SessionsWritten.Add(new SessionRecord(s.ClientId, s.Floor, sessions, s.Sequences, s.Results));
                    }
                    break;
                case Kind.Footer:
                    var counts = MessagePackSerializer.Deserialize<long[]>(payload, Options);
                    if (counts.Length != 2 || counts[0] != entries || counts[1] != sessions)
                    {
                        throw new StorageCorruptionException($"snapshot footer counts {string.Join("/", counts)} do not match {entries} entries and {sessions} sessions read");
                    }
                    if (input.ReadByte() >= 0)
                    {
                        throw new StorageCorruptionException($"data after the snapshot footer (record {index})");
                    }
                    var lastApplied = new Stamp(head.LastAppliedTime, head.LastAppliedReplica);
                    var byOrigin = new Dictionary<int, long>(head.AppliedThroughByOrigin);
                    if (lastApplied != Stamp.Zero && !byOrigin.ContainsKey(lastApplied.ReplicaId))
                    {
                        byOrigin[lastApplied.ReplicaId] = lastApplied.Time;
                    }
                    // AppliedWrites is not in the format (it counts this replica's history, not the state).
                    batch.Applied = new AppliedPoint(lastApplied, byOrigin, 0, entries, sessions);
                    engine.Commit(batch);
                    return batch.Applied;
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

/// <summary>A read-only, forward-only stream over a sequence of byte chunks, pulled as it is read.</summary>
internal sealed class ChunkStream(IEnumerable<ReadOnlyMemory<byte>> chunks) : Stream
{
    private readonly IEnumerator<ReadOnlyMemory<byte>> _chunks = chunks.GetEnumerator();
    private ReadOnlyMemory<byte> _current;
    private bool _done;
    private long _position;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        while (_current.IsEmpty && !_done)
        {
            if (_chunks.MoveNext())
            {
                _current = _chunks.Current;
            }
            else
            {
                _done = true;
            }
        }
        int n = Math.Min(buffer.Length, _current.Length);
        _current.Span[..n].CopyTo(buffer);
        _current = _current[n..];
        _position += n;
        return n;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _chunks.Dispose();
        }
        base.Dispose(disposing);
    }
}
