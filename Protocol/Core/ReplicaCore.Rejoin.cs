using KvReplica.Clock;
using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

// Rejoin (docs/design.md §9): a removed replica asks to come back; the coordinator adds it with a
// view change if it still keeps every write delivered since the replica's last one, and sends it
// what it missed (the catch-up) just before the install.
public sealed partial class ReplicaCore
{
    // The last delivered writes, oldest first, to send a rejoining replica what it missed; and
    // the stamp before the oldest kept (every delivery after it is still here).
    private readonly Queue<(Stamp Stamp, WriteEntry Entry)> _recentDelivered = new();
    private long _recentBytes;
    private Stamp _recentFrom;
    private long _lastJoinRequestAt = long.MinValue / 2;
    // The view number whose catch-up this (removed) replica has applied: it installs that view only.
    private long _caughtUpFor;
    // Batches from members of a view this replica has not installed yet, in arrival order.
    private readonly List<(int From, OrderBatch Batch)> _earlyBatches = [];

    /// <summary>Whether a newer view excludes this replica.</summary>
    public bool Removed => _status is CoreStatus.Removed or CoreStatus.Rejoining;

    private void Remember(Stamp stamp, WriteEntry entry)
    {
        _recentDelivered.Enqueue((stamp, entry));
        _recentBytes += entry.Value?.Length ?? 0;
        while (_recentDelivered.Count > _options.RecentDeliveredWrites || _recentBytes > _options.RecentDeliveredBytes)
        {
            var (dropped, old) = _recentDelivered.Dequeue();
            _recentBytes -= old.Value?.Length ?? 0;
            _recentFrom = dropped;
        }
    }

    // Whether every delivery after `stamp` is still in the window.
    private bool RecentCovers(Stamp stamp) => stamp >= _recentFrom;

    private void AskToRejoin()
    {
        // Four times per suspicion timeout: a request that finds the coordinator busy is not kept.
        if (!Removed || _installedView is null || _now - _lastJoinRequestAt < _options.SuspicionTimeoutMs / 4)
        {
            return;
        }
        _lastJoinRequestAt = _now;
        var request = new JoinRequest { DeliveredTime = LastDelivered.Time, DeliveredReplica = LastDelivered.ReplicaId, View = _viewNumber };
        // To every configured replica, not only the members of the newest view it knows: that
        // view may be old (the coordinator now may be a replica added since).
        foreach (int replica in _configured.Where(r => r != SelfId))
        {
            _ready.Outbox.Add(new Outgoing(replica, request));
        }
    }

    // A removed replica asks to come back. The coordinator (the lowest unsuspected member other
    // than the requester) proposes a view with it added, if it still keeps every write delivered
    // since the replica's last one. The requester may already be a member of this view: it was
    // added while it was down, or the install adding it was lost with its connection, so it
    // never installed it. It then needs the same change again, catch-up included.
    private void ReceiveJoinRequest(int from, JoinRequest request)
    {
        // The change also leaves out the members this replica suspects, and it may be wedged in a
        // change that will not complete (its coordinator was removed): with the requester back, a
        // majority may exist again where none did, so a new proposal is how the cluster unsticks.
        int[] alive = AliveMembers(except: from);
        if (Removed || _proposing is not null || alive.Length == 0 || alive[0] != SelfId || alive.Length + 1 < ConfiguredMajority)
        {
            return;
        }
        if (Array.IndexOf(_peers, from) >= 0 && request.View < _progress[from].PeerSince)
        {
            // Sent before the view that added it back: it is back already, not asking again.
            return;
        }
        if (!RecentCovers(new Stamp(request.DeliveredTime, request.DeliveredReplica)))
        {
            _ready.Outbox.Add(new Outgoing(from, new JoinRefused { KeptAfterTime = _recentFrom.Time, KeptAfterReplica = _recentFrom.ReplicaId }));
            return;
        }
        StartProposal([.. alive.Append(from).Order()]);
    }

    // What a rejoining replica lacks, sent just before the install (FIFO puts it first): the
    // deliveries after its last one, then everything held here that the install does not trim.
    private void SendCatchUp(int joiner, ViewJoin join, ViewInstall install)
    {
        var after = new Stamp(join.DeliveredTime, join.DeliveredReplica);
        var trims = install.TrimOrigins.Zip(install.TrimTimes).ToDictionary(t => t.First, t => t.Second);
        bool Survives(Stamp s) => !trims.TryGetValue(s.ReplicaId, out long through) || s.Time <= through;
        var heldThrough = _configured.Select(o => trims.TryGetValue(o, out long through) ? Math.Min(_progress[o].HeldThrough, through) : _progress[o].HeldThrough);
        _ready.Outbox.Add(new Outgoing(joiner, new CatchUpWrites
        {
            ViewNumber = install.Number,
            Delivered = [.. _recentDelivered.Where(d => d.Stamp > after).Select(d => new CarriedWrite { Origin = d.Stamp.ReplicaId, Write = d.Entry })],
            Held = [.. _configured.SelectMany(o => _holdBack.HeldFrom(o)).Where(h => Survives(h.Stamp)).OrderBy(h => h.Stamp)
                .Select(h => new CarriedWrite { Origin = h.Stamp.ReplicaId, Write = h.Item })],
            Origins = _configured,
            HeldThrough = [.. heldThrough],
            Clock = _clock.Now,
        }));
    }

    // A removed replica about to be added back: it applies the deliveries it missed, in order,
    // and starts holding exactly what the coordinator holds (what it held while removed may
    // include writes a view change it never saw has trimmed). The log says so first (a rebase
    // record: recovery forgets every undelivered write logged before it), then logs what the
    // catch-up carried like anything delivered or held, all before this replica acknowledges
    // anything in the new view.
    private void ReceiveCatchUp(CatchUpWrites catchUp)
    {
        if (catchUp.ViewNumber != _promised || catchUp.Origins.Length != catchUp.HeldThrough.Length
            || !catchUp.Origins.Order().SequenceEqual(_configured))
        {
            return;
        }
        var last = _holdBack.LastDelivered;
        var missed = catchUp.Delivered.Select(c => (Stamp: new Stamp(c.Write.Time, c.Origin), c.Write)).Where(d => d.Stamp > last).ToList();
        for (int i = 1; i < missed.Count; i++)
        {
            if (missed[i].Stamp <= missed[i - 1].Stamp)
            {
                throw new ProtocolViolationException($"catch-up for view {catchUp.ViewNumber} delivers {missed[i].Stamp} after {missed[i - 1].Stamp}");
            }
        }
        // Nothing held since its removal survives the rebase, in memory or in the log.
        _ready.NewlyHeld.Clear();
        _ready.Rebase = new HeldRebase { Origins = catchUp.Origins, HeldThrough = catchUp.HeldThrough };
        _holdBack = new HoldBackQueue<WriteEntry>(_configured);
        ForgetAckProgress();
        _holdBack.RestoreLastDelivered(missed.Count > 0 ? missed[^1].Stamp : last);
        _heldPerKey.Clear();
        foreach (var (stamp, write) in missed)
        {
            _ready.NewlyHeld.Add(ToCommand(stamp, write));
            Deliver(stamp, write);
        }
        for (int i = 0; i < catchUp.Origins.Length; i++)
        {
            int origin = catchUp.Origins[i];
            _progress[origin].HeldThrough = Math.Max(catchUp.HeldThrough[i], _progress[origin].DeliveredThrough);
        }
        foreach (var carried in catchUp.Held)
        {
            // The coordinator may be behind this replica in delivery (agreement makes the
            // prefixes equal): what this replica already delivered it does not hold again.
            var stamp = new Stamp(carried.Write.Time, carried.Origin);
            if (stamp > _holdBack.LastDelivered)
            {
                long through = _progress[carried.Origin].HeldThrough;
                Hold(stamp, carried.Write);
                _progress[carried.Origin].HeldThrough = Math.Max(through, stamp.Time);
            }
        }
        _wedgedAcks = SnapshotHeldThrough();
        _clock.Witness(catchUp.Clock);
        _caughtUpFor = catchUp.ViewNumber;
        if (missed.Count > 0)
        {
            ReleaseFencedReads();
        }
    }

    // A message from a configured replica outside the view: it was removed and does not know it
    // yet (a pause, a partition). Tell it, at most once per suspicion timeout.
    private void TellRemoved(int replica)
    {
        var progress = _progress[replica];
        if (_viewNumber == 0 || (progress.ToldRemovedAt is { } told && _now - told < _options.SuspicionTimeoutMs))
        {
            return;
        }
        progress.ToldRemovedAt = _now;
        _ready.Outbox.Add(new Outgoing(replica, new ViewInstall { Number = _viewNumber, Members = _members }));
    }

}
