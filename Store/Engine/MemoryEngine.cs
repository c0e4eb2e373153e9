using KvReplica.Protocol.Core;
using System.Collections.Immutable;
using KvReplica.Clock;

namespace KvReplica.Store.Engine;

/// <summary>
/// An <see cref="IStorageEngine"/> in memory, for the deterministic simulation and unit tests.
/// Each commit produces a new immutable image, so views are free and a crash can be modelled
/// exactly: what survives is the image of some commit (<see cref="LoseLastCommit"/> models a
/// crash while the last commit was being made durable).
/// </summary>
public sealed class MemoryEngine : IStorageEngine
{
    private sealed record Image(
        ImmutableSortedDictionary<string, (byte[] Value, Stamp Version)> Entries,
        ImmutableDictionary<ulong, SessionRecord> Sessions,
        AppliedPoint? Applied);

    private static readonly Image Empty = new(
        ImmutableSortedDictionary.Create<string, (byte[], Stamp)>(KeyOrder.Instance),
        ImmutableDictionary<ulong, SessionRecord>.Empty,
        null);

    private Image _current;
    private Image? _beforeLast;

    /// <param name="splitAppliedPoint">
    /// A deliberately broken engine, for the mutation check: it commits the applied point in one
    /// transaction and the writes it covers in the next, so a crash between the two (see
    /// <see cref="LoseLastCommit"/>) leaves an applied point that claims writes the engine lacks.
    /// </param>
    public MemoryEngine(bool splitAppliedPoint = false) : this(Empty, splitAppliedPoint)
    {
    }

    private MemoryEngine(Image image, bool splitAppliedPoint)
    {
        _current = image;
        SplitAppliedPoint = splitAppliedPoint;
    }

    /// <summary>Whether this engine is the broken one that commits the applied point apart from its writes.</summary>
    public bool SplitAppliedPoint { get; }

    /// <summary>Commits made (each transaction counts once; a split commit counts twice).</summary>
    public int Commits { get; private set; }

    public AppliedPoint? Applied => _current.Applied;

    public bool TryGet(string key, out byte[] value, out Stamp version)
    {
        if (_current.Entries.TryGetValue(key, out var entry))
        {
            (value, version) = entry;
            return true;
        }
        value = [];
        version = Stamp.Zero;
        return false;
    }

    public bool Contains(string key) => _current.Entries.ContainsKey(key);

    // Commits are synchronous here: reads always see the last one.
    public void Refresh()
    {
    }

    public IReadOnlyList<SessionRecord> LoadSessions() => [.. _current.Sessions.Values];

    public void Commit(EngineBatch batch)
    {
        if (SplitAppliedPoint && batch.Applied is not null)
        {
            // The broken order: the point first, on its own, then the writes.
            Install(_current with { Applied = batch.Applied });
            Install(Apply(_current, batch) with { Applied = batch.Applied });
            return;
        }
        Install(Apply(_current, batch));
    }

    private void Install(Image image)
    {
        _beforeLast = _current;
        _current = image;
        Commits++;
    }

    private static Image Apply(Image image, EngineBatch batch)
    {
        var entries = image.Entries.ToBuilder();
        foreach (var change in batch.Entries)
        {
            if (change.Value is null)
            {
                entries.Remove(change.Key);
            }
            else
            {
                entries[change.Key] = (change.Value, change.Version);
            }
        }
        var sessions = image.Sessions.ToBuilder();
        foreach (ulong forgotten in batch.SessionsForgotten)
        {
            sessions.Remove(forgotten);
        }
        foreach (var session in batch.SessionsWritten)
        {
            sessions[session.ClientId] = session;
        }
        return new Image(entries.ToImmutable(), sessions.ToImmutable(), batch.Applied ?? image.Applied);
    }

    /// <summary>
    /// A crash while the last commit was being made durable: the engine goes back to the commit
    /// before it. Only legal where the caller has not yet acted on that commit (deleted the log it
    /// covers), which is what the Node guarantees by truncating only after a commit returns.
    /// </summary>
    public void LoseLastCommit()
    {
        if (_beforeLast is not null)
        {
            _current = _beforeLast;
            _beforeLast = null;
        }
    }

    /// <summary>A separate engine holding this one's committed state (a copied disk).</summary>
    public MemoryEngine Copy() => new(_current, SplitAppliedPoint);

    public IEngineView OpenView() => new View(_current);

    public void Dispose()
    {
    }

    private sealed class View(Image image) : IEngineView
    {
        public AppliedPoint? Applied => image.Applied;

        public IEnumerable<StoredEntry> Scan(KeyRange range)
        {
            string first = range.First;
            foreach (var (key, (value, version)) in image.Entries)
            {
                if (KeyOrder.Instance.Compare(key, first) < 0)
                {
                    continue;
                }
                if (range.IsPast(key))
                {
                    yield break;
                }
                yield return new StoredEntry(key, value, version);
            }
        }

        public IEnumerable<SessionRecord> Sessions() => image.Sessions.Values.OrderBy(s => s.LastTouched);

        public void Dispose()
        {
        }
    }
}
