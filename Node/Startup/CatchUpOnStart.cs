using System.Diagnostics;
using KvReplica.Node.Storage;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Store;
using KvReplica.Transport;
using Microsoft.Extensions.Logging;

namespace KvReplica.Node.Startup;

/// <summary>
/// Opens the data directory, then asks every reachable peer what it knows. A peer that holds or
/// delivered more than this replica's log admits means the log was lost or cut short
/// (docs/design.md, "Catch-up"): fetch that peer's snapshot and log suffix, install them in place
/// of ours, and recover again. Unreachable peers are skipped: the core still checks every peer's
/// first batch, and stops the replica if it is behind after all.
/// </summary>
internal sealed class CatchUpOnStart(ClusterConfig config, int selfId, DialSettings dial, ILogger logger)
{
    /// <summary>What start-up hands to the running replica: its open storage, the store, and what the core recovers from.</summary>
    public sealed record Recovered(ReplicaStorage Storage, KvStore Store, CoreRecoveryState State);

    /// <summary>Recovers from <paramref name="dataDirectory"/>, catching up from a peer first if one shows this replica lost state.</summary>
    public async Task<Recovered> RunAsync(string dataDirectory, CancellationToken ct)
    {
        bool caughtUp = false;
        for (int attempt = 1; ; attempt++)
        {
            var storage = ReplicaStorage.Open(dataDirectory, config, logger, out var store, out var recovered);
            if (caughtUp)
            {
                // The peers delivered more while the transfer ran; a view change catches this
                // replica up on those from memory (design.md §9) rather than another transfer.
                // The log it copied holds the peer's promises, not this replica's: taking them as
                // its own would make it refuse the very view change that adds it back.
                return new Recovered(storage, store, recovered with { LastJoin = null });
            }
            BackupResult? fetched;
            string snapshotFile, suffixFile;
            var clock = Stopwatch.StartNew();
            ReplicaAddress peer;
            try
            {
                var ahead = await FindPeerAheadAsync(recovered, ct).ConfigureAwait(false);
                if (ahead is null)
                {
                    return new Recovered(storage, store, recovered);
                }
                if (attempt > ConnectionLimits.MaxCatchUpsAtStart)
                {
                    Log.StillBehind(logger, ConnectionLimits.MaxCatchUpsAtStart, ahead.Value.Reason);
                    return new Recovered(storage, store, recovered);
                }
                (peer, string reason) = ahead.Value;
                Log.CatchingUp(logger, peer.Id, reason);
                clock.Restart();
                string incoming = Path.Combine(dataDirectory, "incoming");
                Directory.CreateDirectory(incoming);
                snapshotFile = Path.Combine(incoming, "snapshot");
                suffixFile = Path.Combine(incoming, "suffix");
                // The data directory stays open (and locked) while the peer's state streams in.
                fetched = await FetchAsync(peer, snapshotFile, suffixFile, ct).ConfigureAwait(false);
            }
            catch
            {
                storage.Dispose();
                throw;
            }
            storage.Dispose();
            if (fetched is null)
            {
                // The next attempt asks the peers again, and may pick another one.
                continue;
            }
            string lost = ReplicaStorage.InstallPeerState(dataDirectory, snapshotFile, suffixFile, new Clock.Stamp(fetched.ThroughTime, fetched.ThroughReplica));
            caughtUp = true;
            Log.CaughtUp(logger, peer.Id, fetched.Bytes, $"{fetched.ThroughTime}.{fetched.ThroughReplica}", clock.ElapsedMilliseconds, lost);
        }
    }

    // The peer's snapshot and log suffix into the two files; a broken connection resumes where it
    // stopped, a stream the peer no longer has (progress reset) starts again from a fresh snapshot.
    private async Task<BackupResult?> FetchAsync(ReplicaAddress peer, string snapshotFile, string suffixFile, CancellationToken ct)
    {
        var progress = new StreamProgress();
        for (int tries = 1; tries <= ConnectionLimits.MaxCatchUpStreamTries; tries++)
        {
            try
            {
                return await SnapshotStreamReceiver.ReceiveStreamAsync(dial, peer, PeerKind.CatchUp, [snapshotFile, suffixFile], progress, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                string next = progress.Started ? $"resuming part {progress.Part} at offset {progress.Offset}" : "asking for a fresh transfer";
                Log.CatchUpFailed(logger, peer.Id, e.Message, next);
                await Task.Delay(TimeSpan.FromMilliseconds(100 * tries), ct).ConfigureAwait(false);
            }
        }
        return null;
    }

    private async Task<(ReplicaAddress Peer, string Reason)?> FindPeerAheadAsync(CoreRecoveryState recovered, CancellationToken ct)
    {
        var peers = config.Replicas.Where(r => r.Id != selfId).ToList();
        var answers = await Task.WhenAll(peers.Select(async peer =>
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(ConnectionLimits.StateQueryTimeout);
            try
            {
                return await StateQuery.AskAsync(dial, peer, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // Down, or not started yet: it cannot tell us anything now.
                logger.LogDebug("state query to replica {PeerId} failed: {Reason}", peer.Id, e.Message);
                return null;
            }
        })).ConfigureAwait(false);
        return PickPeerAhead(selfId, recovered, peers.Zip(answers, (p, a) => (p, a)));
    }

    /// <summary>
    /// Of the peers that answered and know more than <paramref name="recovered"/> admits, the one
    /// that delivered most, with what this replica lost; null if none knows more.
    /// </summary>
    public static (ReplicaAddress Peer, string Reason)? PickPeerAhead(int selfId, CoreRecoveryState recovered, IEnumerable<(ReplicaAddress Peer, StateSummary? Answer)> answers) =>
        answers
            .Where(p => p.Answer is not null)
            .Select(p => (p.Peer, Summary: p.Answer!, Reason: ReplicaCore.WhatWasLost(selfId, recovered.HeldThrough, p.Peer.Id, p.Answer!.Origins, p.Answer.HeldThrough, p.Answer.DeliveredThrough)))
            .Where(p => p.Reason is not null)
            .OrderByDescending(p => p.Summary.DeliveredThrough.Sum())
            .Select(p => ((ReplicaAddress, string)?)(p.Peer, p.Reason!))
            .FirstOrDefault();
}
