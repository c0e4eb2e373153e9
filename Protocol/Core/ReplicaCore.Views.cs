using KvReplica.Clock;
using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

// Views: failure suspicion, and the view change that removes suspected members so that writes
// keep flowing (docs/design.md, "View change"). The rule that makes it safe: a wedged member
// neither delivers nor acknowledges anything new, so the acknowledgement vector it reports when
// it joins bounds every write anyone ever delivered on the strength of its acknowledgement.
public sealed partial class ReplicaCore
{
    private readonly int[] _configured;
    private long _viewNumber;
    // Highest view number this replica promised to join; above _viewNumber while wedged.
    private long _promised;
    private readonly Dictionary<int, long> _lastHeard = new();
    private bool _ticked;
    private readonly SortedSet<int> _suspected = [];
    // What each peer said it suspects in its latest batch of this view.
    private readonly Dictionary<int, int[]> _reportedSuspects = new();
    private Proposal? _proposing;
    // The acknowledgement vector (per configured replica) at the moment this replica wedged:
    // what it reports in every join, and all it acknowledges until the next view is installed.
    private Dictionary<int, long>? _wedgedAcks;
    // A newer view does not include this replica: it serves nothing until it rejoins.
    private bool _removed;
    // The last view installed here, with its trims, to send again to a member that missed it.
    private ViewInstall? _installedView;
    // When a removed replica was last told so, to tell it at most once per suspicion timeout.
    private readonly Dictionary<int, long> _toldRemoved = new();
    // Peers that report being wedged, since when (as this replica first saw it).
    private readonly Dictionary<int, long> _peerWedgedSince = new();
    // The highest view number any peer reported promising, so a proposal can outbid it.
    private long _highestPromiseSeen;
    // Per peer: the SentAt of its newest batch (echoed back to it), and the newest of our own
    // SentAt it echoed (when it last heard from us, by our clock).
    private readonly Dictionary<int, long> _lastSentAtFrom = new();
    private readonly Dictionary<int, long> _echoFrom = new();

    /// <summary>
    /// Whether this replica may answer a local read alone. A view without it can exist only once
    /// a member has not heard from it for the suspicion timeout; every member proving (by echo)
    /// that it heard from this replica less than three quarters of that ago rules it out, given
    /// clocks that run at about the same rate. Otherwise a local read is served as a majority read.
    /// </summary>
    private bool LocalReadLeaseHeld() =>
        !Wedged && !_removed && _peers.All(p => _echoFrom.TryGetValue(p, out long heard) && _now - heard < _options.SuspicionTimeoutMs * 3 / 4);

    private sealed class Proposal(long number, int[] members, long startedAt)
    {
        public long Number { get; } = number;
        public int[] Members { get; } = members;
        public long StartedAt { get; } = startedAt;
        public Dictionary<int, ViewJoin> Joins { get; } = new();
    }

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
    // For each peer, the view in which it last became a peer of this replica (0: from the start):
    // a join request it sent before that view is a late copy, not a new request.
    private readonly Dictionary<int, long> _peerSince = new();

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
        if (!_removed || _installedView is null || _now - _lastJoinRequestAt < _options.SuspicionTimeoutMs / 4)
        {
            return;
        }
        _lastJoinRequestAt = _now;
        var request = new JoinRequest { DeliveredTime = LastDelivered.Time, DeliveredReplica = LastDelivered.ReplicaId, View = _viewNumber };
        // To every configured replica, not only the members of the newest view it knows: that
        // view may be old (the coordinator now may be a replica added since).
        foreach (int replica in _configured.Where(r => r != SelfId))
        {
            _ready.Messages.Add(new Outgoing(replica, request));
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
        if (_removed || _proposing is not null || alive.Length == 0 || alive[0] != SelfId || alive.Length + 1 < ConfiguredMajority)
        {
            return;
        }
        if (Array.IndexOf(_peers, from) >= 0 && request.View < _peerSince.GetValueOrDefault(from))
        {
            // Sent before the view that added it back: it is back already, not asking again.
            return;
        }
        if (!RecentCovers(new Stamp(request.DeliveredTime, request.DeliveredReplica)))
        {
            _ready.Messages.Add(new Outgoing(from, new JoinRefused { KeptAfterTime = _recentFrom.Time, KeptAfterReplica = _recentFrom.ReplicaId }));
            return;
        }
        StartProposal([.. alive.Append(from).Order()]);
    }

    /// <summary>Number of the installed view (0 is the configured one).</summary>
    public long ViewNumber => _viewNumber;

    /// <summary>Peers of the view this replica currently suspects of having failed.</summary>
    public IReadOnlyCollection<int> Suspected => _suspected;

    /// <summary>Whether a view change this replica joined is in progress (it delivers and acknowledges nothing new).</summary>
    public bool Wedged => _promised > _viewNumber;

    /// <summary>Whether a newer view excludes this replica.</summary>
    public bool Removed => _removed;

    private int ConfiguredMajority => _configured.Length / 2 + 1;

    // Configured replicas this one can count on: itself and the members it does not suspect.
    private int Reachable => 1 + _peers.Count(p => !_suspected.Contains(p));

    private void Heard(int from) => _lastHeard[from] = _now;

    // Called on every tick: suspect members silent for longer than the suspicion timeout, and
    // start (or restart) a view change when this replica is the coordinator.
    private void DetectFailures()
    {
        if (_removed)
        {
            AskToRejoin();
            return;
        }
        if (!_ticked)
        {
            // Time starts with the first tick: anything heard before it was stamped with a clock
            // not yet set, and would make a peer look silent for as long as the clock had run.
            _ticked = true;
            _lastHeard.Clear();
        }
        foreach (int peer in _peers)
        {
            if (!_lastHeard.TryGetValue(peer, out long heard))
            {
                _lastHeard[peer] = _now;
            }
            else if (_now - heard > _options.SuspicionTimeoutMs)
            {
                _suspected.Add(peer);
            }
            else
            {
                _suspected.Remove(peer);
            }
        }
        if (_proposing is not null && _now - _proposing.StartedAt > _options.SuspicionTimeoutMs)
        {
            // Abandoned; the next proposal has a higher number, which a member that promised a
            // competing one accepts, and it reaches a member whose copy died with its process.
            // A member that did not join is not suspected for that alone: one that is gone falls
            // silent and is suspected as usual, and one cut off from us says so in its batches.
            // Suspecting it sooner would remove it while it still holds its local-read lease,
            // which assumes no view leaves it out before it was silent for the suspicion
            // timeout (the simulation found a stale local read from exactly that).
            _proposing = null;
        }
        MaybePropose();
    }

    private void NotePeerWedge(int peer, long wedgedFor)
    {
        if (wedgedFor != 0 && wedgedFor <= _viewNumber && _installedView is not null)
        {
            // It waits for a view already installed here: it missed the install (it crashed
            // before logging it). Send it again, at most once per suspicion timeout.
            if (!_toldRemoved.TryGetValue(peer, out long told) || _now - told >= _options.SuspicionTimeoutMs)
            {
                _toldRemoved[peer] = _now;
                _ready.Messages.Add(new Outgoing(peer, _installedView));
            }
            return;
        }
        if (wedgedFor > _viewNumber)
        {
            _peerWedgedSince.TryAdd(peer, _now);
            _highestPromiseSeen = Math.Max(_highestPromiseSeen, wedgedFor);
        }
        else
        {
            _peerWedgedSince.Remove(peer);
        }
    }

    // The members a view change keeps, lowest id first (the first is the coordinator): those this
    // replica does not suspect, leaving out any that cannot hear, or be heard by, one already
    // kept, by what each reports. Under a one-way cut between two members each suspects the
    // other while the rest hear both; without this, no one would ever propose.
    private int[] AliveMembers(int? except = null)
    {
        bool Suspects(int a, int b) => a == SelfId ? _suspected.Contains(b)
            : _reportedSuspects.TryGetValue(a, out var reported) && Array.IndexOf(reported, b) >= 0;
        var kept = new List<int>();
        foreach (int m in _members)
        {
            if (m == except || (m != SelfId && _suspected.Contains(m)) || kept.Any(k => Suspects(k, m) || Suspects(m, k)))
            {
                continue;
            }
            kept.Add(m);
        }
        return [.. kept];
    }

    private void MaybePropose()
    {
        if (_removed || _proposing is not null)
        {
            return;
        }
        int[] alive = AliveMembers();
        // A peer wedged for long waits for a view change that will not complete (its coordinator
        // gave up, or restarted): a new one, even with the same members, releases it.
        bool peerStuck = _peerWedgedSince.Any(w => _now - w.Value > _options.SuspicionTimeoutMs);
        if (alive.Length == _members.Length && !Wedged && !peerStuck)
        {
            return;
        }
        // The coordinator is the lowest id among the members it believes alive; a member that
        // believes otherwise waits, and suspects that coordinator in turn if it never completes.
        if (alive.Length == 0 || alive[0] != SelfId || alive.Length < ConfiguredMajority)
        {
            return;
        }
        StartProposal(alive);
    }

    private void StartProposal(int[] members)
    {
        var proposal = new Proposal(Math.Max(Math.Max(_viewNumber, _promised), _highestPromiseSeen) + 1, members, _now);
        _proposing = proposal;
        var propose = new ViewPropose { Number = proposal.Number, Members = proposal.Members };
        foreach (int member in proposal.Members.Where(m => m != SelfId))
        {
            _ready.Messages.Add(new Outgoing(member, propose));
        }
        ReceivePropose(SelfId, propose);
    }

    private void ReceivePropose(int from, ViewPropose propose)
    {
        if (propose.Number <= _promised || propose.Number <= _viewNumber || Array.IndexOf(propose.Members, SelfId) < 0)
        {
            return;
        }
        if (!Wedged || _wedgedAcks is null)
        {
            // (A removed replica can be wedged for a change it learned it was left out of,
            // with nothing frozen: it acknowledges nothing anyway.)
            _wedgedAcks = new Dictionary<int, long>(_heldThrough);
        }
        _promised = propose.Number;
        if (_proposing is not null && _proposing.Number < propose.Number)
        {
            _proposing = null;
        }
        var join = new ViewJoin
        {
            Number = propose.Number,
            Origins = _configured,
            HeldThrough = [.. _configured.Select(o => _wedgedAcks!.GetValueOrDefault(o))],
            InstalledView = _installedView,
            Rejoining = _removed,
            DeliveredTime = LastDelivered.Time,
            DeliveredReplica = LastDelivered.ReplicaId,
        };
        _ready.Joined = join;
        if (from == SelfId)
        {
            ReceiveJoin(SelfId, join);
        }
        else
        {
            _ready.Messages.Add(new Outgoing(from, join));
        }
    }

    private void ReceiveJoin(int from, ViewJoin join)
    {
        if (_proposing is null || join.Number != _proposing.Number || Array.IndexOf(_proposing.Members, from) < 0)
        {
            return;
        }
        if (join.Origins.Length != join.HeldThrough.Length)
        {
            throw new ProtocolViolationException($"replica {from} joined view {join.Number} with {join.Origins.Length} origins but {join.HeldThrough.Length} times");
        }
        if (join.InstalledView is { } newer && newer.Number > _viewNumber)
        {
            // A joiner installed a view this coordinator never saw (its own install got lost or
            // is late): that view stands. Adopt it, which may remove this replica, and let the
            // next proposal start from it.
            _proposing = null;
            InstallView(newer, adopt: true);
            return;
        }
        _proposing.Joins[from] = join;
        if (_proposing.Joins.Count < _proposing.Members.Length)
        {
            return;
        }
        // Every proposed member wedged and reported. A removed member's writes survive through
        // the smallest time any joiner holds: each joiner holds all of them up to there, and
        // nothing above it was delivered anywhere, since that would have needed every joiner's
        // acknowledgement before it wedged. A stale joiner's report does not count: a replica
        // being added back, or one that missed a view this replica installed (it may still hold
        // writes that view trimmed). It is given this replica's state instead, which holds
        // every write it sent before it joined (its link is FIFO, and wedged it stamps nothing).
        int[] removed = [.. _configured.Except(_proposing.Members)];
        bool IsStale(int joiner, ViewJoin j) => joiner != SelfId
            && (j.Rejoining || Array.IndexOf(_members, joiner) < 0 || (j.InstalledView?.Number ?? 0) < _viewNumber);
        var stale = _proposing.Joins.Where(j => IsStale(j.Key, j.Value)).ToList();
        var reports = _proposing.Joins.Where(j => !IsStale(j.Key, j.Value)).Select(j => j.Value).ToList();
        var install = new ViewInstall
        {
            Number = _proposing.Number,
            Members = _proposing.Members,
            TrimOrigins = removed,
            TrimTimes = [.. removed.Select(p => reports.Min(j => j.HeldThrough[Array.IndexOf(j.Origins, p)]))],
            CaughtUp = [.. stale.Select(j => j.Key).Order()],
        };
        var uncovered = stale.Where(j => !RecentCovers(new Stamp(j.Value.DeliveredTime, j.Value.DeliveredReplica))).ToList();
        if (uncovered.Count > 0)
        {
            // Deliveries moved on past what is kept in memory for it: it must catch up from a
            // snapshot first. Abandon; the members' wedge is released by the next proposal.
            foreach (var (joiner, _) in uncovered)
            {
                _ready.Messages.Add(new Outgoing(joiner, new JoinRefused { KeptAfterTime = _recentFrom.Time, KeptAfterReplica = _recentFrom.ReplicaId, ViewNumber = _proposing.Number }));
            }
            _proposing = null;
            return;
        }
        foreach (var (joiner, staleJoin) in stale)
        {
            SendCatchUp(joiner, staleJoin, install);
        }
        foreach (int replica in _configured.Where(r => r != SelfId))
        {
            _ready.Messages.Add(new Outgoing(replica, install));
        }
        _proposing = null;
        InstallView(install);
    }

    // `adopt`: a view a joiner reports it installed, so a fact rather than a change to take part
    // in; otherwise a view with this replica below its promise is one it moved past (it must
    // not start acknowledging in it), and a view without it ends its membership whatever it promised.
    private void InstallView(ViewInstall view, bool adopt = false)
    {
        bool includesSelf = Array.IndexOf(view.Members, SelfId) >= 0;
        if (view.Number <= _viewNumber || (includesSelf && !adopt && view.Number < _promised))
        {
            return;
        }
        // A removed or stale replica enters a view only on the coordinator's state, sent just
        // before the install. Without it, it learns the view but counts itself removed, and
        // asks to rejoin.
        bool caughtUp = _caughtUpFor == view.Number;
        bool member = includesSelf && (caughtUp || (!_removed && Array.IndexOf(view.CaughtUp, SelfId) < 0));
        if (caughtUp && Array.IndexOf(view.CaughtUp, SelfId) >= 0)
        {
            // Logged without this replica among those to catch up, which it did (the log holds
            // the rebase): a restart then does not take it for removed.
            view = new ViewInstall { Number = view.Number, Members = view.Members, TrimOrigins = view.TrimOrigins, TrimTimes = view.TrimTimes, CaughtUp = [.. view.CaughtUp.Where(m => m != SelfId)] };
        }
        if (view.TrimOrigins.Length != view.TrimTimes.Length || view.Members.Length == 0)
        {
            throw new ProtocolViolationException($"view {view.Number} is malformed");
        }
        _ready.InstalledView = view;
        _installedView = view;
        _viewNumber = view.Number;
        _promised = Math.Max(_promised, view.Number);
        _wedgedAcks = null;
        _proposing = null;
        for (int i = 0; i < view.TrimOrigins.Length; i++)
        {
            int origin = view.TrimOrigins[i];
            long through = view.TrimTimes[i];
            foreach (var (_, entry) in _holdBack.TrimOrigin(origin, through))
            {
                ForgetHeld(entry.Key);
            }
            if (_heldThrough.TryGetValue(origin, out long held) && held > through)
            {
                _heldThrough[origin] = through;
            }
        }
        if (!member)
        {
            _removed = true;
            return;
        }
        bool rejoined = _removed || caughtUp;
        _removed = false;
        // Members that become peers now: every peer, for a replica added back.
        var added = view.Members.Where(m => m != SelfId && (rejoined || Array.IndexOf(_peers, m) < 0)).ToList();
        if (Wedged)
        {
            // An adopted view below this replica's own promise: it stays wedged for the change it
            // promised, acknowledging no more than it holds now, and reports that when it joins.
            _wedgedAcks = new Dictionary<int, long>(_heldThrough);
        }
        _members = [.. view.Members.Order()];
        _peers = [.. _members.Where(m => m != SelfId)];
        _holdBack.ChangeMembers(_members);
        // Delivery in the new view waits for every member's acknowledgements sent in it (see
        // ReceiveBatch); this replica's own hold on everything it has counts at once.
        _holdBack.ResetAcks();
        foreach (var (origin, held) in _heldThrough)
        {
            _holdBack.RecordAck(SelfId, origin, held);
        }
        _suspected.IntersectWith(_peers);
        _reportedSuspects.Clear();
        _peerWedgedSince.Clear();
        // Every peer gets this replica's undelivered writes again, in this view: a member added
        // back dropped what was sent before (see _peerSince), and a member that skipped a view
        // may have dropped what was sent in it. Receivers drop the copies they hold.
        _resendTo.Clear();
        _resendTo.UnionWith(_peers);
        foreach (int peer in added)
        {
            // A new peer starts unsuspected: the view change just heard from it.
            _lastHeard[peer] = _now;
            _suspected.Remove(peer);
            _peerSince[peer] = view.Number;
        }
        _notHeardSinceStart.IntersectWith(_peers);
        _acksChanged = true;
        DeliverStable();
        // Batches that came ahead of this install, in arrival order; later views' wait on.
        if (_earlyBatches.Count > 0)
        {
            var due = _earlyBatches.Where(e => e.Batch.View <= _viewNumber).ToList();
            _earlyBatches.RemoveAll(e => e.Batch.View <= _viewNumber);
            foreach (var (from, batch) in due)
            {
                try
                {
                    OnPeerMessage(from, batch);
                }
                catch (ProtocolViolationException e)
                {
                    // Its shape was checked when it arrived, but against the state this install
                    // just made it breaks the protocol (a write out of order). Throwing here
                    // would blame the installer's link and lose the batches queued after it; the
                    // sender's link is closed instead (the driver acts on PeerViolations).
                    _ready.PeerViolations.Add(new PeerViolation(from, e.Message));
                }
            }
        }
    }

    // What a rejoining replica lacks, sent just before the install (FIFO puts it first): the
    // deliveries after its last one, then everything held here that the install does not trim.
    private void SendCatchUp(int joiner, ViewJoin join, ViewInstall install)
    {
        var after = new Stamp(join.DeliveredTime, join.DeliveredReplica);
        var trims = install.TrimOrigins.Zip(install.TrimTimes).ToDictionary(t => t.First, t => t.Second);
        bool Survives(Stamp s) => !trims.TryGetValue(s.ReplicaId, out long through) || s.Time <= through;
        var heldThrough = _configured.Select(o => trims.TryGetValue(o, out long through) ? Math.Min(_heldThrough[o], through) : _heldThrough[o]);
        _ready.Messages.Add(new Outgoing(joiner, new CatchUpWrites
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
            _heldThrough[origin] = Math.Max(catchUp.HeldThrough[i], _deliveredThrough[origin]);
        }
        foreach (var carried in catchUp.Held)
        {
            // The coordinator may be behind this replica in delivery (agreement makes the
            // prefixes equal): what this replica already delivered it does not hold again.
            var stamp = new Stamp(carried.Write.Time, carried.Origin);
            if (stamp > _holdBack.LastDelivered)
            {
                long through = _heldThrough[carried.Origin];
                Hold(stamp, carried.Write);
                _heldThrough[carried.Origin] = Math.Max(through, stamp.Time);
            }
        }
        _wedgedAcks = new Dictionary<int, long>(_heldThrough);
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
        if (_viewNumber == 0 || (_toldRemoved.TryGetValue(replica, out long told) && _now - told < _options.SuspicionTimeoutMs))
        {
            return;
        }
        _toldRemoved[replica] = _now;
        _ready.Messages.Add(new Outgoing(replica, new ViewInstall { Number = _viewNumber, Members = _members }));
    }

    // Why this replica cannot take a write or a majority read right now, or null if it can.
    private (ErrorCode Code, string Message)? Unavailable()
    {
        if (_removed)
        {
            return (ErrorCode.NoMajority, $"replica {SelfId} was removed from the view (view {_viewNumber}); it must rejoin before it serves again");
        }
        if (Reachable < ConfiguredMajority)
        {
            return (ErrorCode.NoMajority, $"no majority: {Reachable} of {_configured.Length} replicas reachable");
        }
        if (Wedged)
        {
            return (ErrorCode.Busy, $"view change to view {_promised} in progress; retry shortly");
        }
        return null;
    }
}
