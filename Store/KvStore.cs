using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;

namespace KvReplica.Store;

/// <summary>
/// The replicated key-value state: keys to (value, version), plus the client sessions that make
/// retried writes apply once. Every replica applies the same writes in the same order, so every
/// replica's <see cref="KvStore"/> goes through the same states.
/// </summary>
/// <remarks>
/// Deterministic by construction: nothing here depends on hash-iteration order, time or
/// randomness. Session eviction is driven by the count of applied writes, which is the same at
/// every replica. Not thread-safe; the core calls it from its one thread.
/// </remarks>
public sealed class KvStore : IReplicatedStateMachine
{
    private readonly Dictionary<string, (byte[] Value, Stamp Version)> _entries = new(StringComparer.Ordinal);
    private readonly ClientSessions _sessions;
    // Largest time of each origin's writes applied; recovery restores a replica's acknowledgement
    // vector from it once the log segments before a snapshot are gone.
    private readonly Dictionary<int, long> _appliedThroughByOrigin = new();

    /// <param name="maxSessions">
    /// Client sessions remembered for exactly-once writes; beyond this the least recently used
    /// is forgotten, and a retry from that client of a write applied before would apply again.
    /// </param>
    public KvStore(int maxSessions = 100_000)
    {
        _sessions = new ClientSessions(maxSessions);
    }

    /// <summary>Number of keys present.</summary>
    public int Count => _entries.Count;

    /// <summary>Writes applied, duplicates excluded.</summary>
    public long AppliedWrites { get; private set; }

    /// <summary>Stamp of the last write applied (duplicates included); <see cref="Stamp.Zero"/> for an empty store.</summary>
    public Stamp LastApplied { get; private set; } = Stamp.Zero;

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
                _entries[command.Key] = (command.Value ?? [], command.Stamp);
                result = ReplyStatus.Ok;
                break;
            case Operation.Delete:
                result = _entries.Remove(command.Key) ? ReplyStatus.Ok : ReplyStatus.NotFound;
                break;
            default:
                throw new InvalidOperationException($"write {command.Stamp} has operation {command.Operation}, which the core never delivers");
        }
        AppliedWrites++;
        if (command.ClientId != 0)
        {
            _sessions.Record(command.ClientId, command.Sequence, result);
        }
        return result;
    }

    public StoredValue Read(string key) =>
        _entries.TryGetValue(key, out var entry) ? new StoredValue(true, entry.Value, entry.Version) : new StoredValue(false, null, Stamp.Zero);

    /// <summary>The exactly-once sessions, least recently used first (for snapshots).</summary>
    public IEnumerable<(ulong ClientId, long Floor, IReadOnlyList<(long Sequence, ReplyStatus Result)> Results)> ExportSessions() => _sessions.Export();

    /// <summary>
    /// Replaces an empty store's contents with a snapshot's: entries, sessions (least recently
    /// used first) and the last applied stamp. Throws if the store is not empty.
    /// </summary>
    public void Restore(IEnumerable<(string Key, byte[] Value, Stamp Version)> entries,
        IEnumerable<(ulong ClientId, long Floor, IReadOnlyList<(long Sequence, ReplyStatus Result)> Results)> sessions, Stamp lastApplied,
        IReadOnlyDictionary<int, long>? appliedThroughByOrigin = null)
    {
        if (_entries.Count != 0 || _sessions.Count != 0 || LastApplied != Stamp.Zero)
        {
            throw new InvalidOperationException("a snapshot can only be restored into an empty store");
        }
        foreach (var (key, value, version) in entries)
        {
            _entries[key] = (value, version);
        }
        foreach (var (clientId, floor, results) in sessions)
        {
            _sessions.Import(clientId, floor, results);
        }
        LastApplied = lastApplied;
        foreach (var (origin, time) in appliedThroughByOrigin ?? new Dictionary<int, long>())
        {
            _appliedThroughByOrigin[origin] = time;
        }
        if (lastApplied != Stamp.Zero && !_appliedThroughByOrigin.ContainsKey(lastApplied.ReplicaId))
        {
            _appliedThroughByOrigin[lastApplied.ReplicaId] = lastApplied.Time;
        }
    }

    /// <summary>Every key with its value and version, in ordinal key order (stable across processes).</summary>
    public IEnumerable<(string Key, byte[] Value, Stamp Version)> Entries() =>
        _entries.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => (e.Key, e.Value.Value, e.Value.Version));
}
