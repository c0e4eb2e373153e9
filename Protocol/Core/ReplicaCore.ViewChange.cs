using KvReplica.Clock;
using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

// View change (docs/design.md, "View change"): the coordinator proposes, members wedge and join
// with their frozen acknowledgements, and the install trims what a removed member's writes
// leave undelivered. The rule that makes it safe: a wedged member neither delivers nor
// acknowledges anything new, so the acknowledgement vector it reports when it joins bounds every
// write anyone ever delivered on the strength of its acknowledgement.
public sealed partial class ReplicaCore
{
    private readonly int[] _configured;
    private long _viewNumber;
    // Highest view number this replica promised to join; above _viewNumber while wedged.
    private long _promised;
    private Proposal? _proposing;
    // The acknowledgement vector (per configured replica) at the moment this replica wedged:
    // what it reports in every join, and all it acknowledges until the next view is installed.
    private Dictionary<int, long>? _wedgedAcks;
    // The last view installed here, with its trims, to send again to a member that missed it.
    private ViewInstall? _installedView;

    private sealed class Proposal(long number, int[] members, long startedAt)
    {
        public long Number { get; } = number;
        public int[] Members { get; } = members;
        public long StartedAt { get; } = startedAt;
        public Dictionary<int, ViewJoin> Joins { get; } = new();
    }

    /// <summary>Number of the installed view (0 is the configured one).</summary>
    public long ViewNumber => _viewNumber;

    /// <summary>Whether a view change this replica joined is in progress (it delivers and acknowledges nothing new).</summary>
    public bool Wedged => _status is CoreStatus.Wedged or CoreStatus.Rejoining;

    /// <summary>The replica's phase (see <see cref="CoreStatus"/>).</summary>
    public CoreStatus Status => _status;

    // Sets the phase from whether this replica is out of the view and whether it promised a view
    // above the one it installed; called wherever either changes.
    private void UpdateStatus(bool removed) => _status = (removed, _promised > _viewNumber) switch
    {
        (false, false) => CoreStatus.Active,
        (false, true) => CoreStatus.Wedged,
        (true, false) => CoreStatus.Removed,
        (true, true) => CoreStatus.Rejoining,
    };

    private int ConfiguredMajority => _configured.Length / 2 + 1;

    private void MaybePropose()
    {
        if (Removed || _proposing is not null)
        {
            return;
        }
        int[] alive = AliveMembers();
        // A peer wedged for long waits for a view change that will not complete (its coordinator
        // gave up, or restarted): a new one, even with the same members, releases it.
        bool peerStuck = _configured.Any(id => _progress[id].WedgedSince is { } since && _now - since > _options.SuspicionTimeoutMs);
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
            _ready.Outbox.Add(new Outgoing(member, propose));
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
            _wedgedAcks = SnapshotHeldThrough();
        }
        _promised = propose.Number;
        UpdateStatus(Removed);
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
            Rejoining = Removed,
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
            _ready.Outbox.Add(new Outgoing(from, join));
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
                _ready.Outbox.Add(new Outgoing(joiner, new JoinRefused { KeptAfterTime = _recentFrom.Time, KeptAfterReplica = _recentFrom.ReplicaId, ViewNumber = _proposing.Number }));
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
            _ready.Outbox.Add(new Outgoing(replica, install));
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
        bool member = includesSelf && (caughtUp || (!Removed && Array.IndexOf(view.CaughtUp, SelfId) < 0));
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
        UpdateStatus(Removed);
        _wedgedAcks = null;
        _proposing = null;
        for (int i = 0; i < view.TrimOrigins.Length; i++)
        {
            int origin = view.TrimOrigins[i];
            long through = view.TrimTimes[i];
            foreach (var (_, entry) in _holdBack.TrimOrigin(origin, through))
            {
                ForgetHeld(entry);
            }
            if (_progress.TryGetValue(origin, out var progress) && progress.HeldThrough > through)
            {
                progress.HeldThrough = through;
            }
        }
        if (!member)
        {
            UpdateStatus(removed: true);
            return;
        }
        bool rejoined = Removed || caughtUp;
        UpdateStatus(removed: false);
        // Members that become peers now: every peer, for a replica added back.
        var added = view.Members.Where(m => m != SelfId && (rejoined || Array.IndexOf(_peers, m) < 0)).ToList();
        if (Wedged)
        {
            // An adopted view below this replica's own promise: it stays wedged for the change it
            // promised, acknowledging no more than it holds now, and reports that when it joins.
            _wedgedAcks = SnapshotHeldThrough();
        }
        _members = [.. view.Members.Order()];
        _peers = [.. _members.Where(m => m != SelfId)];
        _holdBack.ChangeMembers(_members);
        // Delivery in the new view waits for every member's acknowledgements sent in it (see
        // ReceiveBatch); this replica's own hold on everything it has counts at once.
        _holdBack.ResetAcks();
        ForgetAckProgress();
        foreach (int origin in _configured)
        {
            _holdBack.RecordAck(SelfId, origin, _progress[origin].HeldThrough);
        }
        foreach (var progress in _progress.Values)
        {
            progress.Suspected &= Array.IndexOf(_peers, progress.Id) >= 0;
            progress.ReportedSuspects = null;
            progress.WedgedSince = null;
        }
        // Every peer gets this replica's undelivered writes again, in this view: a member added
        // back dropped what was sent before (see PeerProgress.PeerSince), and a member that skipped a view
        // may have dropped what was sent in it. Receivers drop the copies they hold.
        foreach (var progress in _progress.Values)
        {
            progress.ResendPending = Array.IndexOf(_peers, progress.Id) >= 0;
        }
        foreach (int peer in added)
        {
            // A new peer starts unsuspected: the view change just heard from it.
            var progress = _progress[peer];
            progress.LastHeardAt = _now;
            progress.Suspected = false;
            progress.PeerSince = view.Number;
        }
        foreach (var progress in _progress.Values)
        {
            progress.NotHeardSinceStart &= Array.IndexOf(_peers, progress.Id) >= 0;
        }
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

    private (ErrorCode Code, string Message)? Unavailable()
    {
        if (Removed)
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
