using KvReplica.Clock;
using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

// Failure suspicion (docs/design.md, "View change"): heartbeats ride on the order batches; a
// member silent for the suspicion timeout is suspected, and the members a view change would keep
// are those no kept member suspects. Also the echo that backs the local-read lease.
public sealed partial class ReplicaCore
{
    private bool _ticked;
    // The highest view number any peer reported promising, so a proposal can outbid it.
    private long _highestPromiseSeen;

    /// <summary>
    /// Whether this replica may answer a local read alone. A view without it can exist only once
    /// a member has not heard from it for the suspicion timeout; every member proving (by echo)
    /// that it heard from this replica less than three quarters of that ago rules it out, given
    /// clocks that run at about the same rate. Otherwise a local read is served as a majority read.
    /// </summary>
    private bool LocalReadLeaseHeld() =>
        !Wedged && !Removed && _peers.All(p => _progress[p].EchoedAt is { } heard && _now - heard < _options.SuspicionTimeoutMs * 3 / 4);

    /// <summary>Peers of the view this replica currently suspects of having failed, in id order.</summary>
    public IReadOnlyCollection<int> Suspected => SuspectedIds();

    private int[] SuspectedIds() => [.. _configured.Where(id => _progress[id].Suspected)];

    // Configured replicas this one can count on: itself and the members it does not suspect.
    private int Reachable => 1 + _peers.Count(p => !_progress[p].Suspected);

    private void Heard(int from) => _progress[from].LastHeardAt = _now;

    // Called on every tick: suspect members silent for longer than the suspicion timeout, and
    // start (or restart) a view change when this replica is the coordinator.
    private void DetectFailures()
    {
        if (Removed)
        {
            AskToRejoin();
            return;
        }
        if (!_ticked)
        {
            // Time starts with the first tick: anything heard before it was stamped with a clock
            // not yet set, and would make a peer look silent for as long as the clock had run.
            _ticked = true;
            foreach (var progress in _progress.Values)
            {
                progress.LastHeardAt = null;
            }
        }
        foreach (int peer in _peers)
        {
            var progress = _progress[peer];
            if (progress.LastHeardAt is not { } heard)
            {
                progress.LastHeardAt = _now;
            }
            else if (_now - heard > _options.SuspicionTimeoutMs)
            {
                progress.Suspected = true;
            }
            else
            {
                progress.Suspected = false;
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
            var progress = _progress[peer];
            if (progress.ToldRemovedAt is not { } told || _now - told >= _options.SuspicionTimeoutMs)
            {
                progress.ToldRemovedAt = _now;
                _ready.Outbox.Add(new Outgoing(peer, _installedView));
            }
            return;
        }
        if (wedgedFor > _viewNumber)
        {
            _progress[peer].WedgedSince ??= _now;
            _highestPromiseSeen = Math.Max(_highestPromiseSeen, wedgedFor);
        }
        else
        {
            _progress[peer].WedgedSince = null;
        }
    }

    // The members a view change keeps, lowest id first (the first is the coordinator): those this
    // replica does not suspect, leaving out any that cannot hear, or be heard by, one already
    // kept, by what each reports. Under a one-way cut between two members each suspects the
    // other while the rest hear both; without this, no one would ever propose.
    private int[] AliveMembers(int? except = null)
    {
        bool Suspects(int a, int b) => a == SelfId ? _progress[b].Suspected
            : _progress[a].ReportedSuspects is { } reported && Array.IndexOf(reported, b) >= 0;
        var kept = new List<int>();
        foreach (int m in _members)
        {
            if (m == except || (m != SelfId && _progress[m].Suspected) || kept.Any(k => Suspects(k, m) || Suspects(m, k)))
            {
                continue;
            }
            kept.Add(m);
        }
        return [.. kept];
    }
}
