using KvReplica.Protocol.Core;
using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using KvReplica.Clock;
using KvReplica.Protocol.Wire;
using KvReplica.Store.Engine;
using LightningDB;
using MessagePack;

namespace KvReplica.Node.Storage;

/// <summary>
/// The replica's applied state in LMDB (through LightningDB): a memory-mapped, copy-on-write
/// B+tree in <c>&lt;dataDir&gt;/engine/</c>. Keys sort in UTF-8 byte order, readers never block
/// the writer, and every commit is atomic: after a crash the file is exactly as of some commit
/// (docs/design.md, "The storage engine").
/// </summary>
/// <remarks>
/// <para>Three named databases: <c>entries</c> (UTF-8 key to 8-byte time, 4-byte replica id, then
/// the value), <c>sessions</c> (big-endian client id to a MessagePack session), and <c>meta</c>
/// (the applied point, written in the same transaction as the writes it covers).</para>
/// <para>Opened with MDB_NOTLS, so a read transaction (a view streamed by a catch-up or a backup)
/// may move between threads. Every write transaction begins and commits inside one call, so it
/// never crosses a thread either; the Node commits on a background thread while the core
/// thread reads. The core thread's point reads share one read transaction, renewed by
/// <see cref="Refresh"/> once the core loop has seen a commit complete.</para>
/// <para>The file's pages are file-backed memory: the kernel pages them in and out, so the
/// store can be larger than memory and the process's anonymous memory stays small.</para>
/// </remarks>
internal sealed class LmdbEngine : IStorageEngine
{
    public const string DirectoryName = "engine";
    private const int VersionBytes = 12;
    private static readonly byte[] AppliedKey = "applied"u8.ToArray();
    private static readonly MessagePackSerializerOptions Options = MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData);

    private readonly LightningEnvironment _env;
    private readonly LightningDatabase _entries;
    private readonly LightningDatabase _sessions;
    private readonly LightningDatabase _meta;
    private readonly LightningTransaction _reader;
    // Views may outlive Dispose (a transfer still streaming when the replica stops): the
    // environment closes when the last of them does, never under an open read transaction.
    private readonly Lock _viewsLock = new();
    private int _openViews;
    private bool _disposed;

    private LmdbEngine(LightningEnvironment env, LightningDatabase entries, LightningDatabase sessions, LightningDatabase meta)
    {
        _env = env;
        _entries = entries;
        _sessions = sessions;
        _meta = meta;
        _reader = env.BeginTransaction(TransactionBeginFlags.ReadOnly);
        Applied = ReadApplied(_reader);
    }

    /// <summary>The engine directory of a data directory.</summary>
    public static string PathIn(string dataDirectory) => Path.Combine(dataDirectory, DirectoryName);

    /// <summary>
    /// Opens (creating if needed) the engine in <paramref name="directory"/>. With
    /// <paramref name="sync"/> false, commits are not fsynced (the <c>none</c> policy): a process
    /// crash loses nothing, a machine crash may lose or damage the engine.
    /// </summary>
    /// <param name="directory">The engine directory (<see cref="PathIn"/>).</param>
    /// <param name="maxBytes">The map size: the most the engine file may grow to (address space, not memory).</param>
    /// <param name="sync">Whether a commit is fsynced before it returns.</param>
    public static LmdbEngine Open(string directory, long maxBytes, bool sync)
    {
        Directory.CreateDirectory(directory);
        var env = new LightningEnvironment(directory, new EnvironmentConfiguration { MapSize = maxBytes, MaxDatabases = 4, MaxReaders = 512 });
        try
        {
            // No read-ahead: point reads are random, and in a store larger than memory the
            // kernel's read-ahead would fill the page cache with neighbours nobody asked for.
            var flags = EnvironmentOpenFlags.NoThreadLocalStorage | EnvironmentOpenFlags.NoReadAhead | (sync ? EnvironmentOpenFlags.None : EnvironmentOpenFlags.NoSync);
            env.Open(flags);
            using var tx = env.BeginTransaction();
            var create = new DatabaseConfiguration { Flags = DatabaseOpenFlags.Create };
            var entries = tx.OpenDatabase("entries", create, closeOnDispose: false);
            var sessions = tx.OpenDatabase("sessions", create, closeOnDispose: false);
            var meta = tx.OpenDatabase("meta", create, closeOnDispose: false);
            Check(tx.Commit(), "create the engine's databases");
            return new LmdbEngine(env, entries, sessions, meta);
        }
        catch
        {
            env.Dispose();
            throw;
        }
    }

    private volatile AppliedPoint? _applied;

    public AppliedPoint? Applied
    {
        get => _applied;
        private set => _applied = value;
    }

    /// <summary>Bytes of the engine's data file (pages in use and free pages kept for reuse).</summary>
    public long FileBytes => new FileInfo(Path.Combine(_env.Path, "data.mdb")).Length;

    public bool Contains(string key) => Lookup(key, out _);

    public void Refresh()
    {
        // The core's point reads share one read transaction; renewing it moves it to the
        // newest commit and lets LMDB reuse the pages it held.
        _reader.Reset();
        Check(_reader.Renew(), "renew the read transaction");
    }

    public bool TryGet(string key, out byte[] value, out Stamp version)
    {
        if (!Lookup(key, out var found))
        {
            value = [];
            version = Stamp.Zero;
            return false;
        }
        var stored = found.AsSpan();
        version = ReadVersion(stored);
        value = stored[VersionBytes..].ToArray();
        return true;
    }

    // A point read through the core thread's read transaction; the value points into the map
    // and is valid until the next Refresh.
    private bool Lookup(string key, out MDBValue found)
    {
        byte[]? rented = null;
        int length = Encoding.UTF8.GetMaxByteCount(key.Length);
        Span<byte> keyBytes = length <= 512 ? stackalloc byte[length] : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            int written = Encoding.UTF8.GetBytes(key, keyBytes);
            var (code, _, value) = _reader.Get(_entries, keyBytes[..written]);
            found = value;
            if (code == MDBResultCode.NotFound)
            {
                return false;
            }
            Check(code, "read a key");
            return true;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    public IReadOnlyList<SessionRecord> LoadSessions()
    {
        using var view = OpenView();
        return [.. view.Sessions()];
    }

    public void Commit(EngineBatch batch)
    {
        using var tx = _env.BeginTransaction();
        var buffer = new ArrayBufferWriter<byte>(4096);
        foreach (var change in batch.Entries)
        {
            byte[] key = Encoding.UTF8.GetBytes(change.Key);
            if (change.Value is null)
            {
                var deleted = tx.Delete(_entries, key);
                if (deleted != MDBResultCode.NotFound)
                {
                    Check(deleted, "delete a key");
                }
                continue;
            }
            buffer.ResetWrittenCount();
            var span = buffer.GetSpan(VersionBytes + change.Value.Length);
            BinaryPrimitives.WriteInt64LittleEndian(span, change.Version.Time);
            BinaryPrimitives.WriteInt32LittleEndian(span[8..], change.Version.ReplicaId);
            change.Value.CopyTo(span[VersionBytes..]);
            Check(tx.Put(_entries, key, span[..(VersionBytes + change.Value.Length)]), "write a key");
        }
        Span<byte> clientKey = stackalloc byte[8];
        foreach (ulong forgotten in batch.SessionsForgotten)
        {
            BinaryPrimitives.WriteUInt64BigEndian(clientKey, forgotten);
            var deleted = tx.Delete(_sessions, clientKey);
            if (deleted != MDBResultCode.NotFound)
            {
                Check(deleted, "forget a session");
            }
        }
        foreach (var session in batch.SessionsWritten)
        {
            BinaryPrimitives.WriteUInt64BigEndian(clientKey, session.ClientId);
            var stored = new StoredSession { Floor = session.Floor, LastTouched = session.LastTouched, Sequences = session.Sequences, Results = session.Results };
            Check(tx.Put(_sessions, clientKey, MessagePackSerializer.Serialize(stored, Options)), "write a session");
        }
        if (batch.Applied is { } point)
        {
            var stored = new StoredAppliedPoint
            {
                LastAppliedTime = point.LastApplied.Time,
                LastAppliedReplica = point.LastApplied.ReplicaId,
                AppliedThroughByOrigin = new(point.AppliedThroughByOrigin),
                AppliedWrites = point.AppliedWrites,
                KeyCount = point.KeyCount,
                SessionTouches = point.SessionTouches,
            };
            Check(tx.Put(_meta, AppliedKey, MessagePackSerializer.Serialize(stored, Options)), "write the applied point");
        }
        Check(tx.Commit(), "commit");
        if (batch.Applied is not null)
        {
            Applied = batch.Applied;
        }
    }

    public IEngineView OpenView()
    {
        lock (_viewsLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var view = new View(this, _env.BeginTransaction(TransactionBeginFlags.ReadOnly));
            _openViews++;
            return view;
        }
    }

    private void ViewClosed()
    {
        lock (_viewsLock)
        {
            if (--_openViews == 0 && _disposed)
            {
                _env.Dispose();
            }
        }
    }

    private AppliedPoint? ReadApplied(LightningTransaction tx)
    {
        var (code, _, value) = tx.Get(_meta, AppliedKey);
        if (code == MDBResultCode.NotFound)
        {
            return null;
        }
        Check(code, "read the applied point");
        var stored = MessagePackSerializer.Deserialize<StoredAppliedPoint>(value.CopyToNewArray(), Options);
        return new AppliedPoint(new Stamp(stored.LastAppliedTime, stored.LastAppliedReplica), stored.AppliedThroughByOrigin, stored.AppliedWrites, stored.KeyCount, stored.SessionTouches);
    }

    private static Stamp ReadVersion(ReadOnlySpan<byte> stored) =>
        new(BinaryPrimitives.ReadInt64LittleEndian(stored), BinaryPrimitives.ReadInt32LittleEndian(stored[8..]));

    /// <summary>Throws for an LMDB failure, naming what was being done; a full map reads as a full disk.</summary>
    private static void Check(MDBResultCode code, string doing)
    {
        if (code == MDBResultCode.Success)
        {
            return;
        }
        if (code == MDBResultCode.MapFull)
        {
            throw new IOException($"the storage engine is full (its map size, engineMaxGiB, is reached) while trying to {doing}", DiskFull.NoSpaceLeft);
        }
        if ((int)code is DiskFull.NoSpaceLeft or DiskFull.QuotaExceeded)
        {
            // LMDB passes the system's errno through.
            throw new IOException($"no space left on the device while the storage engine tried to {doing}", (int)code);
        }
        if (code == MDBResultCode.ShortWrite)
        {
            // A write to a regular file that wrote less than asked: the file system is full
            // (or the quota reached). The transaction is aborted; the log still holds it all.
            throw new IOException($"no space left on the device while the storage engine tried to {doing} (LMDB: short write)", DiskFull.NoSpaceLeft);
        }
        throw new IOException($"the storage engine failed to {doing}: LMDB {code}");
    }

    public void Dispose()
    {
        lock (_viewsLock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            _reader.Dispose();
            if (_openViews == 0)
            {
                _env.Dispose();
            }
        }
    }

    private sealed class View(LmdbEngine engine, LightningTransaction tx) : IEngineView
    {
        public AppliedPoint? Applied { get; } = engine.ReadApplied(tx);

        public IEnumerable<StoredEntry> Scan(KeyRange range)
        {
            using var cursor = tx.CreateCursor(engine._entries);
            byte[] first = Encoding.UTF8.GetBytes(range.First);
            var code = first.Length == 0 ? cursor.First().resultCode : cursor.SetRange(first);
            while (code == MDBResultCode.Success)
            {
                var (_, key, value) = cursor.GetCurrent();
                string text = Encoding.UTF8.GetString(key.AsSpan());
                if (range.IsPast(text))
                {
                    yield break;
                }
                var stored = value.AsSpan();
                yield return new StoredEntry(text, stored[VersionBytes..].ToArray(), ReadVersion(stored));
                code = cursor.Next().resultCode;
            }
            if (code != MDBResultCode.NotFound)
            {
                Check(code, "scan keys");
            }
        }

        public IEnumerable<SessionRecord> Sessions()
        {
            var all = new List<SessionRecord>();
            using var cursor = tx.CreateCursor(engine._sessions);
            var code = cursor.First().resultCode;
            while (code == MDBResultCode.Success)
            {
                var (_, key, value) = cursor.GetCurrent();
                var stored = MessagePackSerializer.Deserialize<StoredSession>(value.CopyToNewArray(), Options);
                all.Add(new SessionRecord(BinaryPrimitives.ReadUInt64BigEndian(key.AsSpan()), stored.Floor, stored.LastTouched, stored.Sequences, stored.Results));
                code = cursor.Next().resultCode;
            }
            return all.OrderBy(s => s.LastTouched);
        }

        private bool _closed;

        public void Dispose()
        {
            if (_closed)
            {
                return;
            }
            _closed = true;
            tx.Dispose();
            engine.ViewClosed();
        }
    }
}
