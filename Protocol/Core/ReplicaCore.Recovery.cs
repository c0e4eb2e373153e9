using KvReplica.Clock;
using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

// Restart and lost state (docs/design.md §7): a restarted core rebuilt from its log, and the
// check, on every batch, that this replica did not come back with less than it had promised.
public sealed partial class ReplicaCore
{
    // A restarted replica: the store already holds everything through recovered.LastDelivered.
    private void Recover(CoreRecoveryState recovered)
    {
        _holdBack.RestoreLastDelivered(recovered.LastDelivered);
        foreach (var write in recovered.Held)
        {
            if (_progress.ContainsKey(write.Stamp.ReplicaId))
            {
                HoldWithoutLogging(write.Stamp, ToEntry(write));
            }
        }
        foreach (int m in _configured)
        {
            _progress[m].HeldThrough = Math.Max(_progress[m].HeldThrough, recovered.HeldThrough.GetValueOrDefault(m));
            _progress[m].DeliveredThrough = recovered.DeliveredThrough.GetValueOrDefault(m);
        }
        _viewNumber = recovered.ViewNumber;
        _installedView = recovered.LastView;
        _promised = Math.Max(recovered.Promised, recovered.ViewNumber);
        UpdateStatus(Removed);
        if (Wedged && recovered.LastJoin is { } join)
        {
            // It promised a view that it never saw installed: it stays wedged, acknowledging
            // exactly what it reported (not what it has logged since), until a view is installed.
            _wedgedAcks = join.Origins.Zip(join.HeldThrough).ToDictionary(p => p.First, p => p.Second);
        }
        // Every time this replica ever acknowledged or stamped was logged first, so restarting
        // the clock above the largest logged time keeps new stamps above all of them.
        _clock.Witness(recovered.ClockTime);
    }

    // A peer's batch says what it holds of our writes and what it delivered of everyone's. If
    // either is more than this replica holds, this replica's state went back in time (a wiped
    // data directory, or writes lost to a power failure under fsync "none"/"batch"), and
    // carrying on could deliver a different order. Stop instead (returns false).
    private bool CheckNothingLost(int from, OrderBatch batch)
    {
        string? lost = WhatWasLost(SelfId, origin => _progress.TryGetValue(origin, out var p) ? p.HeldThrough : 0, from, batch.Origins, batch.HeldThrough, batch.DeliveredThrough);
        if (lost is not null)
        {
            StopWith(CoreStopKind.StateLost, lost);
            return false;
        }
        return true;
    }

    /// <summary>
    /// Compares what replica <paramref name="self"/> holds per origin (<paramref name="heldThrough"/>)
    /// with what peer <paramref name="from"/> says it holds and delivered. Returns why this
    /// replica's state is behind what it once promised, or null if it is not. The core applies it
    /// to every batch; a restarting Node applies it to its peers' <see cref="StateSummary"/>s
    /// before it starts, to fetch a peer's state instead of stopping.
    /// </summary>
    public static string? WhatWasLost(int self, IReadOnlyDictionary<int, long> heldThrough, int from, int[] origins, long[] peerHeldThrough, long[] peerDeliveredThrough) =>
        WhatWasLost(self, origin => heldThrough.GetValueOrDefault(origin), from, origins, peerHeldThrough, peerDeliveredThrough);

    private static string? WhatWasLost(int self, Func<int, long> heldThrough, int from, int[] origins, long[] peerHeldThrough, long[] peerDeliveredThrough)
    {
        for (int i = 0; i < origins.Length && i < peerHeldThrough.Length; i++)
        {
            int origin = origins[i];
            long held = heldThrough(origin);
            if (origin == self && peerHeldThrough[i] > held)
            {
                return $"replica {from} holds this replica's writes through time {peerHeldThrough[i]}, but this replica's log ends at {held}: its data directory lost writes it had sent";
            }
            if (i < peerDeliveredThrough.Length && peerDeliveredThrough[i] > held)
            {
                return $"replica {from} delivered writes of replica {origin} through time {peerDeliveredThrough[i]}, but this replica holds them only through {held}: it missed them while out of the view, or its data directory lost writes it had acknowledged";
            }
        }
        return null;
    }

    /// <summary>What this replica holds and delivered per origin, for a restarting peer's <see cref="StateSummary"/> query.</summary>
    public StateSummary Summary() => new()
    {
        Origins = _configured,
        HeldThrough = [.. _configured.Select(m => _progress[m].HeldThrough)],
        DeliveredThrough = [.. _configured.Select(m => _progress[m].DeliveredThrough)],
    };
}
