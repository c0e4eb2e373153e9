using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Store.Engine;
using KvReplica.Store.History;

namespace KvReplica.Store;

/// <summary>
/// The replicated key-value state: keys to (value, version), plus the client sessions that make
/// retried writes apply once. Every replica applies the same writes in the same order, so every
/// replica's <see cref="KvStore"/> goes through the same states.
/// </summary>
/// <remarks>
/// <para>The state lives in an <see cref="IStorageEngine"/>. Applied writes collect in a small
/// overlay (the writes since the last commit) that reads look at first, and
/// <see cref="BeginCommit"/> hands them to the engine in one transaction together with the
/// sessions they touched and the stamp they reach; while the engine commits them (on another
/// thread, in the Node) reads find them in a second overlay, until <see cref="CompleteCommit"/>. The owner (the Node's ReplicaStorage, or the
/// simulation) decides when to commit: only once the log holding those deliveries is durable,
/// and in batches, as etcd's backend does.</para>
/// <para>Deterministic by construction: nothing here depends on hash-iteration order, time or
/// randomness. Session eviction is driven by the count of applied writes, which is the same at
/// every replica. Not thread-safe; the core calls it from its one thread.</para>
/// </remarks>
public sealed class KvStore : IReplicatedStateMachine
{
    private readonly IStorageEngine _engine;
    // Applied since the last commit was begun; a null value is a delete.
    private Dictionary<string, (byte[]? Value, Stamp Version)> _pending = new(StringComparer.Ordinal);
    // Handed to a commit not yet complete: read after _pending and before the engine.
    private Dictionary<string, (byte[]? Value, Stamp Version)>? _committing;
    private Stamp _handedOffThrough;
    // Recently read committed values, so a hot key's read costs a dictionary lookup instead of an
    // engine lookup and a copy. Filled only from the engine, and a key is dropped from it when a
    // write to it is applied, so it never holds a value older than the engine's. Bounded in bytes;
    // emptied when full (a hot set refills it at once).
    private readonly Dictionary<string, (byte[] Value, Stamp Version)> _readCache = new(StringComparer.Ordinal);
    private long _readCacheBytes;
    private const long ReadCacheMaxBytes = 8L << 20;
    private const int ReadCacheMaxValueBytes = 4096;
    private readonly ClientSessions _sessions;
    // Largest time of each origin's writes applied; recovery restores a replica's acknowledgement
    // vector from it once the log segments the engine covers are gone.
    private readonly Dictionary<int, long> _appliedThroughByOrigin = new();
    private readonly ChangeHistory _history;

    /// <summary>Default number of changes kept for watches and scans at a past revision.</summary>
    public const int DefaultHistoryChanges = 100_000;

    /// <summary>Default bytes of keys and values kept for watches and scans at a past revision: 64 MiB.</summary>
    public const long DefaultHistoryBytes = 64L << 20;

    /// <summary>A store over a fresh in-memory engine (tests, and the simulation without crashes).</summary>
    public KvStore(int maxSessions = 100_000) : this(new MemoryEngine(), maxSessions)
    {
    }

    /// <summary>A store over <paramref name="engine"/>'s committed state.</summary>
    /// <param name="engine">Holds the state; this store owns it from now on.</param>
    /// <param name="maxSessions">
    /// Client sessions remembered for exactly-once writes; beyond this the least recently used
    /// is forgotten, and a retry from that client of a write applied before would apply again.
    /// </param>
    /// <param name="historyChanges">Changes kept for watches and scans at a past revision (<see cref="ChangeHistory"/>).</param>
    /// <param name="historyBytes">Bytes of keys and values those changes may hold.</param>
    public KvStore(IStorageEngine engine, int maxSessions = 100_000, int historyChanges = DefaultHistoryChanges, long historyBytes = DefaultHistoryBytes)
    {
        _engine = engine;
        _sessions = new ClientSessions(maxSessions);
        if (engine.Applied is { } applied)
        {
            LastApplied = applied.LastApplied;
            AppliedWrites = applied.AppliedWrites;
            KeyCount = applied.KeyCount;
            foreach (var (origin, time) in applied.AppliedThroughByOrigin)
            {
                _appliedThroughByOrigin[origin] = time;
            }
            _sessions.RestoreTouches(applied.SessionTouches);
        }
        foreach (var session in engine.LoadSessions().OrderBy(s => s.LastTouched))
        {
            _sessions.Import(session);
        }
        CommittedThrough = LastApplied;
        _handedOffThrough = LastApplied;
        _history = new ChangeHistory(LastApplied, historyChanges, historyBytes);
    }

    public Stamp HistoryStart => _history.Start;

    public IEnumerable<KeyChange> ChangesAfter(Stamp after) => _history.After(after);

    /// <summary>The engine holding the committed state.</summary>
    public IStorageEngine Engine => _engine;

    /// <summary>Number of keys present.</summary>
    public long KeyCount { get; private set; }

    /// <summary>Number of keys present, as an int for callers that count small stores.</summary>
    public int Count => (int)Math.Min(KeyCount, int.MaxValue);

    /// <summary>Writes applied, duplicates excluded.</summary>
    public long AppliedWrites { get; private set; }

    /// <summary>Stamp of the last write applied (duplicates included); <see cref="Stamp.Zero"/> for an empty store.</summary>
    public Stamp LastApplied { get; private set; } = Stamp.Zero;

    /// <summary>Stamp the engine's last commit reached: recovery replays the log after it.</summary>
    public Stamp CommittedThrough { get; private set; }

    /// <summary>Keys changed since the last commit was begun.</summary>
    public int PendingWrites => _pending.Count;

    /// <summary>Whether anything was applied since the last commit was begun.</summary>
    public bool HasUncommitted => LastApplied != _handedOffThrough || _pending.Count > 0 || _sessions.Changes > 0;

    /// <summary>Whether a commit was begun and not yet completed.</summary>
    public bool CommitInFlight => _committing is not null;

    /// <summary>For each origin replica, the largest time of its writes applied (duplicates included).</summary>
    public IReadOnlyDictionary<int, long> AppliedThroughByOrigin => _appliedThroughByOrigin;

    /// <summary>Client sessions currently remembered.</summary>
    public int SessionCount => _sessions.Count;

    public ReplyStatus Apply(WriteCommand command, out bool duplicate)
    {
        if (command.Stamp <= LastApplied)
        {
            throw new InvalidOperationException($"write {command.Stamp} applied after {LastApplied}: writes must be applied in stamp order");
        }
        LastApplied = command.Stamp;
        _appliedThroughByOrigin[command.Stamp.ReplicaId] = command.Stamp.Time;
        if (command.ClientId != 0 && _sessions.TryGetResult(command.ClientId, command.Sequence, command.AckedBelow, out var earlier))
        {
            duplicate = true;
            return earlier;
        }
        duplicate = false;
        ReplyStatus result;
        switch (command.Operation)
        {
            case Operation.Put:
                SetKey(command.Key, command.Value ?? [], command.Stamp);
                result = ReplyStatus.Ok;
                break;
            case Operation.Delete:
                result = SetKey(command.Key, null, command.Stamp) ? ReplyStatus.Ok : ReplyStatus.NotFound;
                break;
            case Operation.Update:
                if (Exists(command.Key))
                {
                    SetKey(command.Key, command.Value ?? [], command.Stamp);
                    result = ReplyStatus.Ok;
                }
                else
                {
                    result = ReplyStatus.NotFound;
                }
                break;
            case Operation.CompareAndSet:
                if (VersionOf(command.Key) == command.Expected)
                {
                    SetKey(command.Key, command.Value ?? [], command.Stamp);
                    result = ReplyStatus.Ok;
                }
                else
                {
                    result = ReplyStatus.ConditionFailed;
                }
                break;
            case Operation.Txn when command.Txn is { } txn:
                bool holds = txn.Compares.All(Holds);
                foreach (var op in holds ? txn.Then : txn.Else)
                {
                    SetKey(op.Key, op.Operation == Operation.Put ? op.Value ?? [] : null, command.Stamp);
                }
                result = holds ? ReplyStatus.Ok : ReplyStatus.ConditionFailed;
                break;
            default:
                throw new InvalidOperationException($"write {command.Stamp} has operation {command.Operation}, which the core never delivers");
        }
        AppliedWrites++;
        _history.NoteApplied(command.Stamp);
        if (command.ClientId != 0)
        {
            _sessions.Record(command.ClientId, command.Sequence, result);
        }
        return result;
    }

    // The key's version, or Stamp.Zero when it is absent (what CompareAndSet's Expected means).
    private Stamp VersionOf(string key) => ReadUncached(key) is { Found: true } value ? value.Version : Stamp.Zero;

    private bool Holds(TxnCompare compare)
    {
        var current = ReadUncached(compare.Key);
        var version = new Stamp(compare.VersionTime, compare.VersionReplica);
        return compare.Kind switch
        {
            TxnCompareKind.Exists => current.Found,
            TxnCompareKind.Absent => !current.Found,
            TxnCompareKind.VersionEquals => current.Found && current.Version == version,
            TxnCompareKind.VersionNotEquals => !current.Found || current.Version != version,
            TxnCompareKind.ValueEquals => current.Found && current.Value.AsSpan().SequenceEqual(compare.Value),
            TxnCompareKind.ValueNotEquals => !current.Found || !current.Value.AsSpan().SequenceEqual(compare.Value),
            _ => throw new InvalidOperationException($"compare kind {compare.Kind}, which validation refuses"),
        };
    }

    // Sets (value) or deletes (null) one key at `stamp`, recording the change; returns whether
    // the key existed. Deleting an absent key changes nothing and records nothing.
    private bool SetKey(string key, byte[]? value, Stamp stamp)
    {
        var previous = _history.MaxChanges > 0 ? ReadUncached(key) : new StoredValue(Exists(key), null, Stamp.Zero);
        if (_readCache.Remove(key, out var cached))
        {
            _readCacheBytes -= CachedBytes(key, cached.Value);
        }
        if (value is null && !previous.Found)
        {
            return false;
        }
        _pending[key] = (value, stamp);
        KeyCount += (value is null ? 0 : 1) - (previous.Found ? 1 : 0);
        if (_history.MaxChanges > 0)
        {
            _history.Record(new KeyChange(stamp, key, value, previous));
        }
        return previous.Found;
    }

    // The key's value without filling the read cache (a write is about to replace it).
    private StoredValue ReadUncached(string key)
    {
        if (_pending.TryGetValue(key, out var pending) || (_committing is not null && _committing.TryGetValue(key, out pending)))
        {
            return pending.Value is null ? new StoredValue(false, null, Stamp.Zero) : new StoredValue(true, pending.Value, pending.Version);
        }
        if (_readCache.TryGetValue(key, out var cached))
        {
            return new StoredValue(true, cached.Value, cached.Version);
        }
        return _engine.TryGet(key, out var value, out var version) ? new StoredValue(true, value, version) : new StoredValue(false, null, Stamp.Zero);
    }

    public StoredValue Read(string key)
    {
        if (_pending.TryGetValue(key, out var pending) || (_committing is not null && _committing.TryGetValue(key, out pending)))
        {
            return pending.Value is null ? new StoredValue(false, null, Stamp.Zero) : new StoredValue(true, pending.Value, pending.Version);
        }
        if (_readCache.TryGetValue(key, out var cached))
        {
            return new StoredValue(true, cached.Value, cached.Version);
        }
        if (!_engine.TryGet(key, out var value, out var version))
        {
            return new StoredValue(false, null, Stamp.Zero);
        }
        if (value.Length <= ReadCacheMaxValueBytes)
        {
            if (_readCacheBytes + CachedBytes(key, value) > ReadCacheMaxBytes)
            {
                _readCache.Clear();
                _readCacheBytes = 0;
            }
            _readCache[key] = (value, version);
            _readCacheBytes += CachedBytes(key, value);
        }
        return new StoredValue(true, value, version);
    }

    // Rough heap cost of a cached entry: the key's chars, the value, and object overheads.
    private static long CachedBytes(string key, byte[] value) => 2L * key.Length + value.Length + 96;

    private bool Exists(string key)
    {
        if (_pending.TryGetValue(key, out var pending) || (_committing is not null && _committing.TryGetValue(key, out pending)))
        {
            return pending.Value is not null;
        }
        return _readCache.ContainsKey(key) || _engine.Contains(key);
    }

    /// <summary>
    /// Hands everything applied since the last commit to the engine in one transaction, and
    /// waits for it: <see cref="BeginCommit"/>, the engine's commit, <see cref="CompleteCommit"/>.
    /// The caller must have made the log durable through <see cref="LastApplied"/> first.
    /// </summary>
    public AppliedPoint Commit()
    {
        var commit = BeginCommit();
        if (commit is null)
        {
            return CurrentPoint();
        }
        _engine.Commit(commit.Batch);
        CompleteCommit(commit);
        return commit.Point;
    }

    /// <summary>
    /// Takes everything applied since the last commit was begun (the changed keys, the touched
    /// and evicted sessions, and the applied point they reach) as one batch for the engine, or
    /// null when there is nothing. Until <see cref="CompleteCommit"/>, reads find those writes in
    /// a second overlay, so the engine may commit the batch on another thread meanwhile. The
    /// caller must have made the log durable through <see cref="LastApplied"/> first, and may
    /// have one commit in flight at a time.
    /// </summary>
    public EngineCommit? BeginCommit()
    {
        if (_committing is not null)
        {
            throw new InvalidOperationException("a commit is already in flight; complete it first");
        }
        if (!HasUncommitted)
        {
            return null;
        }
        var batch = new EngineBatch();
        foreach (var (key, (value, version)) in _pending)
        {
            batch.Entries.Add(new EntryChange(key, value, version));
        }
        _sessions.TakeChanges(batch);
        var point = CurrentPoint();
        batch.Applied = point;
        _committing = _pending;
        _pending = new Dictionary<string, (byte[]? Value, Stamp Version)>(StringComparer.Ordinal);
        _handedOffThrough = LastApplied;
        return new EngineCommit(batch, point);
    }

    /// <summary>
    /// After the engine's commit of <paramref name="commit"/> has returned: reads go to the
    /// engine again for those keys. Called on the store's thread.
    /// </summary>
    public void CompleteCommit(EngineCommit commit)
    {
        _engine.Refresh();
        _committing = null;
        CommittedThrough = commit.Point.LastApplied;
    }

    private AppliedPoint CurrentPoint() =>
        new(LastApplied, new Dictionary<int, long>(_appliedThroughByOrigin), AppliedWrites, KeyCount, _sessions.Touches);

    /// <summary>The exactly-once sessions, least recently used first (uncommitted changes included).</summary>
    public IEnumerable<SessionRecord> ExportSessions() => _sessions.Export();

    /// <summary>
    /// The keys of <paramref name="range"/> in key order, with their values and versions, as
    /// applied so far (the engine's last commit merged with the writes since). Enumerate it on
    /// the store's thread, before the next write is applied.
    /// </summary>
    public IEnumerable<StoredEntry> Scan(KeyRange range)
    {
        // The newest overlay wins over the one being committed.
        var overlay = new Dictionary<string, (byte[]? Value, Stamp Version)>(_committing ?? [], StringComparer.Ordinal);
        foreach (var (key, change) in _pending)
        {
            overlay[key] = change;
        }
        var pending = overlay.Where(p => range.Contains(p.Key)).OrderBy(p => p.Key, KeyOrder.Instance).ToList();
        int next = 0;
        using var view = _engine.OpenView();
        foreach (var committed in view.Scan(range))
        {
            while (next < pending.Count && KeyOrder.Instance.Compare(pending[next].Key, committed.Key) < 0)
            {
                if (pending[next].Value.Value is { } value)
                {
                    yield return new StoredEntry(pending[next].Key, value, pending[next].Value.Version);
                }
                next++;
            }
            if (next < pending.Count && pending[next].Key == committed.Key)
            {
                if (pending[next].Value.Value is { } value)
                {
                    yield return new StoredEntry(committed.Key, value, pending[next].Value.Version);
                }
                next++;
                continue;
            }
            yield return committed;
        }
        for (; next < pending.Count; next++)
        {
            if (pending[next].Value.Value is { } value)
            {
                yield return new StoredEntry(pending[next].Key, value, pending[next].Value.Version);
            }
        }
    }

    /// <summary>Every key with its value and version, in key order (<see cref="KeyOrder"/>).</summary>
    public IEnumerable<(string Key, byte[] Value, Stamp Version)> Entries() => Scan(KeyRange.All).Select(e => (e.Key, e.Value, e.Version));
}

/// <summary>A batch handed to the engine by <see cref="KvStore.BeginCommit"/>, and the applied point it reaches.</summary>
public sealed record EngineCommit(EngineBatch Batch, AppliedPoint Point);
