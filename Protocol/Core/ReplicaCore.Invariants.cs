using KvReplica.Clock;

namespace KvReplica.Protocol.Core;

// The invariants the correctness argument in docs/design.md relies on, asserted (TigerBeetle
// asserts its replica's invariants the same way). The simulation checks them after every step
// on every live core; a breach fails the seed.
public sealed partial class ReplicaCore
{
    // What CheckInvariants saw last time, to check that the clock and delivery only move forward.
    private long _checkedClock;
    private Stamp _checkedDelivered;

    /// <summary>
    /// Throws <see cref="InvariantViolationException"/>, naming the invariant, if the core's state
    /// breaks one of the invariants listed in docs/design.md ("Asserted invariants"). Cost: linear
    /// in the writes held, plus the members squared; the simulation calls it after every step.
    /// </summary>
    public void CheckInvariants()
    {
        CheckHoldBackOrdered();
        CheckDeliveredIsAckedByAll();
        CheckAcksInTheirView();
        CheckClockMonotonic();
        CheckDeliveryMonotonic();
        CheckPerOriginVectors();
        CheckStatusMatchesPromise();
    }

    private void Violated(string invariant, string detail) => throw new InvariantViolationException(SelfId, invariant, detail);

    // Each origin's held writes in strictly increasing stamp order, all after the last delivered,
    // and as many as the queue counts.
    private void CheckHoldBackOrdered()
    {
        int count = 0;
        foreach (int origin in _configured)
        {
            var previous = _holdBack.LastDelivered;
            foreach (var (stamp, _) in _holdBack.HeldFrom(origin))
            {
                if (stamp.ReplicaId != origin || stamp <= previous)
                {
                    Violated("hold-back queue ordered by stamp", $"origin {origin} holds {stamp} after {previous} (delivered through {_holdBack.LastDelivered})");
                }
                previous = stamp;
                count++;
            }
        }
        if (count != _holdBack.Count)
        {
            Violated("hold-back queue ordered by stamp", $"the queue counts {_holdBack.Count} writes but holds {count} of configured origins");
        }
    }

    // Every write delivered by the delivery rule since the acknowledgements were last reset was
    // acknowledged by every member the queue waits for (acknowledgements are cumulative, so it
    // still is).
    private void CheckDeliveredIsAckedByAll()
    {
        foreach (int origin in _configured)
        {
            long delivered = _progress[origin].StableDeliveredThrough;
            if (delivered == 0)
            {
                continue;
            }
            foreach (int member in _holdBack.Members)
            {
                long acked = _holdBack.AckedThrough(member, origin);
                if (acked < delivered)
                {
                    Violated("delivered never passes acknowledged-by-all", $"delivered {new Stamp(delivered, origin)}, but replica {member} acknowledged writes of replica {origin} only through {acked}");
                }
            }
        }
    }

    // The acknowledgements recorded for a peer came from a batch of the view installed here. A
    // removed replica is exempt: it delivers nothing, learns views without taking part in them,
    // and gets a new queue from the catch-up that adds it back.
    private void CheckAcksInTheirView()
    {
        if (Removed)
        {
            return;
        }
        foreach (int member in _holdBack.Members)
        {
            if (member != SelfId && _progress.TryGetValue(member, out var progress) && progress.AckView is { } view && view != _viewNumber)
            {
                Violated("acknowledgements stay inside the view they were sent in", $"replica {member}'s acknowledgements recorded from a batch of view {view}, in view {_viewNumber}");
            }
        }
    }

    private void CheckClockMonotonic()
    {
        if (_clock.Now < _checkedClock)
        {
            Violated("Lamport clock monotonic", $"the clock went back from {_checkedClock} to {_clock.Now}");
        }
        _checkedClock = _clock.Now;
    }

    private void CheckDeliveryMonotonic()
    {
        if (LastDelivered < _checkedDelivered)
        {
            Violated("delivered stamps strictly increase", $"the last delivered stamp went back from {_checkedDelivered} to {LastDelivered}");
        }
        _checkedDelivered = LastDelivered;
    }

    // Per origin: delivered ≤ held, and held ≤ clock once every peer has spoken since start. A
    // restarted replica's clock restarts above the largest time it logged, which a rebase's
    // held-through can exceed (the coordinator held writes this log never carried); the clock
    // catches up with the peers' first batches, and until then it stamps nothing (StartWrite).
    private void CheckPerOriginVectors()
    {
        bool everyPeerSpoke = !AnyProgress(p => p.NotHeardSinceStart);
        foreach (int origin in _configured)
        {
            var progress = _progress[origin];
            if (progress.DeliveredThrough > progress.HeldThrough)
            {
                Violated("delivered-through ≤ held-through ≤ clock", $"writes of replica {origin} delivered through {progress.DeliveredThrough} but held only through {progress.HeldThrough}");
            }
            if (everyPeerSpoke && progress.HeldThrough > _clock.Now)
            {
                Violated("delivered-through ≤ held-through ≤ clock", $"writes of replica {origin} held through {progress.HeldThrough}, past the clock {_clock.Now}");
            }
        }
    }

    private void CheckStatusMatchesPromise()
    {
        if (Wedged != (_promised > _viewNumber))
        {
            Violated("status matches the promise", $"status {_status} with view {_viewNumber} installed and view {_promised} promised");
        }
    }
}
