namespace KvReplica.Clock;

/// <summary>
/// The hold-back queue of Lamport total-order multicast and its delivery rule.
/// </summary>
/// <remarks>
/// <para>Writes are held here until they are safe to deliver. The write with the smallest stamp,
/// (t, j), is deliverable when every member m of the view has acknowledged holding it: m's
/// cumulative acknowledgement says "I hold every write from origin j up to time ≥ t". The origin
/// j trivially holds its own write.</para>
/// <para>Why that is enough (links are FIFO): m acknowledged only after receiving the write, so
/// its clock had already passed t, and every write m stamps afterwards has a larger time. Every
/// write m stamped before the acknowledgement was sent before it on the same FIFO link, so it is
/// already here. Hence once all members have acknowledged (t, j), no write with a smaller stamp
/// can still arrive, and delivering in stamp order gives the same sequence at every replica.</para>
/// <para>Writes from one origin arrive in increasing stamp order (FIFO links, strictly
/// increasing clock), so the queue is a k-way merge of per-origin FIFO queues: the head is the
/// smallest of at most one head per origin. Adding is O(1); finding the head is O(origins).</para>
/// <para>The queue is a pure data structure: no I/O, no time, no threads. It is not thread-safe.</para>
/// </remarks>
/// <typeparam name="T">The payload held for each stamp.</typeparam>
public sealed class HoldBackQueue<T>
{
    private readonly SortedDictionary<int, Queue<(Stamp Stamp, T Item)>> _byOrigin = new();
    // Newest stamp added per origin, to reject an out-of-FIFO-order add.
    private readonly Dictionary<int, Stamp> _byOriginTail = new();
    // _ackedThrough[member][origin] = largest time of origin's writes that member holds.
    private readonly Dictionary<int, Dictionary<int, long>> _ackedThrough = new();
    private int[] _members;
    private Stamp _lastDelivered = Stamp.Zero;

    /// <param name="members">Replica ids of the current view; at least one.</param>
    public HoldBackQueue(IEnumerable<int> members)
    {
        _members = [.. members.Distinct().Order()];
        if (_members.Length == 0)
        {
            throw new ArgumentException("a view needs at least one member", nameof(members));
        }
        foreach (int m in _members)
        {
            _ackedThrough[m] = new Dictionary<int, long>();
        }
    }

    /// <summary>Number of writes held and not yet delivered.</summary>
    public int Count { get; private set; }

    /// <summary>Stamp of the last write taken by <see cref="TryTakeDeliverable"/>.</summary>
    public Stamp LastDelivered => _lastDelivered;

    /// <summary>The members whose acknowledgements delivery waits for, in id order.</summary>
    public IReadOnlyList<int> Members => _members;

    /// <summary>
    /// Holds a write. Writes from one origin must arrive in strictly increasing stamp order and
    /// after the last delivered stamp; anything else is a broken FIFO link and throws
    /// <see cref="InvalidOperationException"/> (a programmer error, never a network condition).
    /// </summary>
    public void Add(Stamp stamp, T item)
    {
        if (stamp <= _lastDelivered)
        {
            throw new InvalidOperationException($"write {stamp} arrived after {_lastDelivered} was delivered");
        }
        if (!_byOrigin.TryGetValue(stamp.ReplicaId, out var fifo))
        {
            fifo = new Queue<(Stamp, T)>();
            _byOrigin.Add(stamp.ReplicaId, fifo);
        }
        else if (_byOriginTail[stamp.ReplicaId] >= stamp)
        {
            throw new InvalidOperationException($"write {stamp} from replica {stamp.ReplicaId} is out of FIFO order");
        }
        fifo.Enqueue((stamp, item));
        _byOriginTail[stamp.ReplicaId] = stamp;
        Count++;
    }

    /// <summary>
    /// Records that <paramref name="member"/> holds every write from <paramref name="origin"/>
    /// up to time <paramref name="time"/>. Acknowledgements are cumulative, so a smaller value
    /// than one already recorded changes nothing. Unknown members are ignored.
    /// </summary>
    public void RecordAck(int member, int origin, long time)
    {
        if (!_ackedThrough.TryGetValue(member, out var byOrigin))
        {
            return;
        }
        if (!byOrigin.TryGetValue(origin, out long known) || time > known)
        {
            byOrigin[origin] = time;
        }
    }

    /// <summary>The time through which <paramref name="member"/> holds writes of <paramref name="origin"/>.</summary>
    public long AckedThrough(int member, int origin) =>
        _ackedThrough.TryGetValue(member, out var byOrigin) && byOrigin.TryGetValue(origin, out long t) ? t : 0;

    /// <summary>The held write with the smallest stamp, if any.</summary>
    public bool TryPeek(out Stamp stamp, out T item)
    {
        bool found = false;
        stamp = default;
        item = default!;
        foreach (var fifo in _byOrigin.Values)
        {
            if (fifo.Count == 0)
            {
                continue;
            }
            var head = fifo.Peek();
            if (!found || head.Stamp < stamp)
            {
                (stamp, item, found) = (head.Stamp, head.Item, true);
            }
        }
        return found;
    }

    /// <summary>The held writes of <paramref name="origin"/>, oldest first (to re-send them to a restarted peer).</summary>
    public IEnumerable<(Stamp Stamp, T Item)> HeldFrom(int origin) =>
        _byOrigin.TryGetValue(origin, out var fifo) ? fifo : [];

    /// <summary>
    /// Sets the last delivered stamp of a queue that has held nothing yet: a replica recovering
    /// from its log resumes delivery after the writes it had already applied.
    /// </summary>
    public void RestoreLastDelivered(Stamp stamp)
    {
        if (Count != 0 || _lastDelivered != Stamp.Zero)
        {
            throw new InvalidOperationException("the last delivered stamp can only be restored into an unused queue");
        }
        _lastDelivered = stamp;
    }

    /// <summary>
    /// Whether every member of the view has acknowledged the write stamped
    /// <paramref name="stamp"/>, its origin included: the origin's acknowledgement rides on the
    /// batch that carries the write, and counting it only as received (not assumed) means a view
    /// delivers nothing until every member has spoken in it.
    /// </summary>
    public bool IsStable(Stamp stamp)
    {
        foreach (int m in _members)
        {
            if (AckedThrough(m, stamp.ReplicaId) < stamp.Time)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// Removes and returns the smallest held write if every member has acknowledged it.
    /// Call repeatedly to drain everything deliverable; delivered stamps strictly increase.
    /// </summary>
    public bool TryTakeDeliverable(out Stamp stamp, out T item)
    {
        if (!TryPeek(out stamp, out item) || !IsStable(stamp))
        {
            return false;
        }
        _byOrigin[stamp.ReplicaId].Dequeue();
        Count--;
        _lastDelivered = stamp;
        return true;
    }

    /// <summary>
    /// Replaces the membership that delivery waits for (a view change). Acknowledgements of
    /// members that stay are kept; a new member starts with none recorded.
    /// </summary>
    public void ChangeMembers(IEnumerable<int> members)
    {
        int[] next = [.. members.Distinct().Order()];
        if (next.Length == 0)
        {
            throw new ArgumentException("a view needs at least one member", nameof(members));
        }
        foreach (int gone in _members.Except(next))
        {
            _ackedThrough.Remove(gone);
        }
        foreach (int added in next.Except(_members))
        {
            _ackedThrough[added] = new Dictionary<int, long>();
        }
        _members = next;
    }

    /// <summary>Forgets every acknowledgement recorded (a new view: only its own acknowledgements count).</summary>
    public void ResetAcks()
    {
        foreach (var byOrigin in _ackedThrough.Values)
        {
            byOrigin.Clear();
        }
    }

    /// <summary>
    /// Removes the held writes of <paramref name="origin"/> with a time above
    /// <paramref name="through"/> (a view change's trim of a removed member: no survivor will
    /// deliver them) and returns them, oldest first. They are the tail of the origin's FIFO.
    /// </summary>
    public List<(Stamp Stamp, T Item)> TrimOrigin(int origin, long through)
    {
        var removed = new List<(Stamp, T)>();
        if (!_byOrigin.TryGetValue(origin, out var fifo))
        {
            return removed;
        }
        var kept = new Queue<(Stamp Stamp, T Item)>();
        foreach (var held in fifo)
        {
            if (held.Stamp.Time <= through)
            {
                kept.Enqueue(held);
            }
            else
            {
                removed.Add(held);
            }
        }
        _byOrigin[origin] = kept;
        Count -= removed.Count;
        if (kept.Count > 0)
        {
            _byOriginTail[origin] = kept.Last().Stamp;
        }
        else if (_byOriginTail.TryGetValue(origin, out var tail) && tail.Time > through)
        {
            _byOriginTail[origin] = new Stamp(through, origin);
        }
        return removed;
    }
}
