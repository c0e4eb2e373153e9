using KvReplica.Clock;
using KvReplica.Protocol.Core;

namespace KvReplica.Store.History;

/// <summary>
/// The most recent changes to keys, in delivery order, each with the value it replaced: what a
/// watch streams from a past revision, and what a scan reads a past revision through (the state
/// now, with the changes after that revision undone). Bounded by a count of changes and by bytes;
/// the oldest go first, and <see cref="Start"/> says from where the history is whole.
/// </summary>
/// <remarks>
/// In memory only: a restarted replica's history starts at the state it recovered (the log it
/// replays refills it). Every replica applies the same writes, so two replicas that both retain a
/// revision give the same changes after it. Not thread-safe; the store's thread owns it.
/// </remarks>
public sealed class ChangeHistory
{
    private readonly List<KeyChange> _changes = [];
    private int _head;
    private long _bytes;

    /// <param name="start">The stamp the history starts after (the state's applied point when it was opened).</param>
    /// <param name="maxChanges">Most changes kept; 0 keeps none (watches and multi-page scans then only work at the current revision).</param>
    /// <param name="maxBytes">Most bytes of keys and values kept.</param>
    public ChangeHistory(Stamp start, int maxChanges, long maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxChanges);
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        Start = start;
        MaxChanges = maxChanges;
        MaxBytes = maxBytes;
    }

    /// <summary>Every change with a revision after this stamp is kept.</summary>
    public Stamp Start { get; private set; }

    public int MaxChanges { get; }

    public long MaxBytes { get; }

    /// <summary>Changes kept.</summary>
    public int Count => _changes.Count - _head;

    /// <summary>Approximate bytes the kept changes hold.</summary>
    public long Bytes => _bytes;

    /// <summary>Records a change; its revision must not be before the last one recorded.</summary>
    public void Record(KeyChange change)
    {
        if (Count > 0 && change.Revision < _changes[^1].Revision)
        {
            throw new InvalidOperationException($"change at {change.Revision} recorded after one at {_changes[^1].Revision}");
        }
        _changes.Add(change);
        _bytes += SizeOf(change);
        while (Count > 0 && (Count > MaxChanges || _bytes > MaxBytes))
        {
            var oldest = _changes[_head];
            _changes[_head] = default;
            _head++;
            _bytes -= SizeOf(oldest);
            // The rest of the oldest change's revision (a transaction's other keys) cannot make
            // that revision whole any more; anything after it still is.
            Start = oldest.Revision;
        }
        if (_head > 4096 && _head > _changes.Count / 2)
        {
            _changes.RemoveRange(0, _head);
            _head = 0;
        }
    }

    /// <summary>
    /// Moves the start forward to <paramref name="applied"/> when nothing is kept: with no change
    /// kept after it, the history is whole from the latest applied write on.
    /// </summary>
    public void NoteApplied(Stamp applied)
    {
        if (Count == 0 && MaxChanges == 0)
        {
            Start = applied;
        }
    }

    /// <summary>The changes with a revision after <paramref name="after"/>, oldest first.</summary>
    public IEnumerable<KeyChange> After(Stamp after)
    {
        if (after < Start)
        {
            throw new InvalidOperationException($"changes after {after} asked for, but the history starts after {Start}");
        }
        int lo = _head, hi = _changes.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_changes[mid].Revision <= after)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }
        for (int i = lo; i < _changes.Count; i++)
        {
            yield return _changes[i];
        }
    }

    private static long SizeOf(KeyChange change) =>
        2L * change.Key.Length + (change.Value?.Length ?? 0) + (change.Previous.Value?.Length ?? 0) + 96;
}
