using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;

namespace KvReplica.Store.Engine;

/// <summary>
/// What the engine has applied through, written in the same transaction as the writes it
/// covers (as etcd stores its consistent index with the data): recovery replays only the log
/// after <see cref="LastApplied"/>.
/// </summary>
/// <param name="LastApplied">Stamp of the last write applied.</param>
/// <param name="AppliedThroughByOrigin">For each origin replica, the largest time of its writes applied.</param>
/// <param name="AppliedWrites">Writes applied, duplicates excluded.</param>
/// <param name="KeyCount">Keys present.</param>
/// <param name="SessionTouches">The session recency counter (<see cref="SessionRecord.LastTouched"/> of the most recent).</param>
public sealed record AppliedPoint(Stamp LastApplied, IReadOnlyDictionary<int, long> AppliedThroughByOrigin, long AppliedWrites, long KeyCount, long SessionTouches);

/// <summary>One key's change in a commit: a put, or a delete when <see cref="Value"/> is null.</summary>
public readonly record struct EntryChange(string Key, byte[]? Value, Stamp Version);

/// <summary>One client's exactly-once session, as the engine stores it.</summary>
/// <param name="ClientId">The client's session id.</param>
/// <param name="Floor">Every sequence below this has had its reply.</param>
/// <param name="LastTouched">Recency: sessions are evicted least recently touched first.</param>
/// <param name="Sequences">Remembered sequences, ascending.</param>
/// <param name="Results">Their results.</param>
public sealed record SessionRecord(ulong ClientId, long Floor, long LastTouched, long[] Sequences, ReplyStatus[] Results);

/// <summary>Everything one engine commit writes, atomically.</summary>
public sealed class EngineBatch
{
    public List<EntryChange> Entries { get; } = [];
    public List<SessionRecord> SessionsWritten { get; } = [];
    public List<ulong> SessionsForgotten { get; } = [];

    /// <summary>The applied point this commit reaches; null leaves the stored one (a bulk import's intermediate commits).</summary>
    public AppliedPoint? Applied { get; set; }
}

/// <summary>
/// The ordered, crash-safe store under <see cref="KvStore"/>: its committed state. Writes reach
/// it only through <see cref="Commit"/>, one atomic transaction holding the writes, the sessions
/// and the <see cref="AppliedPoint"/> they bring it to, so after any crash the engine is exactly
/// as of some commit (docs/design.md, "The storage engine"). The Node uses LMDB
/// (Node/Storage/LmdbEngine.cs); the simulation and unit tests use <see cref="MemoryEngine"/>.
/// </summary>
/// <remarks>
/// <see cref="TryGet"/>, <see cref="Contains"/>, <see cref="Refresh"/> and <see cref="LoadSessions"/>
/// are called from one thread (the core loop). <see cref="Commit"/> may run on another thread,
/// one commit at a time, concurrently with those reads, which keep seeing the state of the last
/// <see cref="Refresh"/>. Views may be opened on the core loop and read on any other thread,
/// concurrently with commits; a view never sees a later commit.
/// </remarks>
public interface IStorageEngine : IDisposable
{
    /// <summary>The applied point of the last commit; null for an engine never committed to with one.</summary>
    AppliedPoint? Applied { get; }

    /// <summary>A key's committed value and version, as of the last <see cref="Refresh"/>.</summary>
    bool TryGet(string key, out byte[] value, out Stamp version);

    /// <summary>Whether a key is committed, as of the last <see cref="Refresh"/> (no copy of its value).</summary>
    bool Contains(string key);

    /// <summary>
    /// Makes <see cref="TryGet"/> and <see cref="Contains"/> see every commit that has returned.
    /// Called on the reading thread once it knows a commit made on another thread is done.
    /// </summary>
    void Refresh();

    /// <summary>Every committed session.</summary>
    IReadOnlyList<SessionRecord> LoadSessions();

    /// <summary>Applies <paramref name="batch"/> as one atomic transaction, durable on return (unless the engine was opened without fsync).</summary>
    void Commit(EngineBatch batch);

    /// <summary>A consistent read-only view of the last commit, usable from any thread until disposed.</summary>
    IEngineView OpenView();
}

/// <summary>One commit's state, frozen: what catch-up and backup stream, without a second copy in memory and without stopping writes.</summary>
public interface IEngineView : IDisposable
{
    /// <summary>The applied point of the commit this view sees (null: nothing ever committed with one).</summary>
    AppliedPoint? Applied { get; }

    /// <summary>The keys of <paramref name="range"/>, in key order.</summary>
    IEnumerable<StoredEntry> Scan(KeyRange range);

    /// <summary>Every session, least recently touched first.</summary>
    IEnumerable<SessionRecord> Sessions();
}
