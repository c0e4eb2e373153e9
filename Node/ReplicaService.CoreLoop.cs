using KvReplica.Node.Storage;
using KvReplica.Node.Transport;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using ProtocolViolationException = KvReplica.Protocol.Core.ProtocolViolationException;

namespace KvReplica.Node;

// The core loop: the one thread that touches the replica core, the access check in front of
// it, and the hand-off of each Ready to storage, peers and clients.
internal sealed partial class ReplicaService
{
    // The only place the core is touched. Drains every input already queued before asking for
    // Ready, so one round of outputs (one batch per peer) covers a whole burst of inputs.
    private async Task CoreLoopAsync(CancellationToken stopping)
    {
        var reader = _inputs.Reader;
        var woken = new HashSet<PeerLink>();
        try
        {
            while (await reader.WaitToReadAsync(stopping).ConfigureAwait(false))
            {
                int taken = 0;
                // A core that stopped takes no more input: the rest of the burst is left unread.
                while (taken < ConnectionLimits.MaxInputsPerRound && !_core.Stopped && reader.TryRead(out var input))
                {
                    taken++;
                    Process(input);
                }
                var ready = _core.TakeReady();
                if (ready.Stop is { } stop)
                {
                    StopFor(stop);
                    return;
                }
                Dispatch(ready, woken);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (DiskFull.IsCause(e))
        {
            // The round that could not be logged is dropped whole: nothing of it was sent or
            // acknowledged (persist before send), so nothing undurable was promised. Leaving is
            // the clean way out: the peers' view change removes this replica, its clients fail
            // over and retry elsewhere, and a restart once space is free rejoins it.
            string reason = $"disk full: cannot log to {_storage?.Directory}: {e.GetBaseException().Message}; nothing unlogged was acknowledged. Free space there and start the replica again: it rejoins by itself";
            Log.DiskFull(_logger, reason);
            Failure = new NodeFailure(ExitCodes.DiskFull, reason);
            _lifetime.StopApplication();
        }
        catch (Exception e)
        {
            // A bug in the core, or the disk failing under the log: continuing could break
            // agreement or acknowledge what is not durable, so stop the whole replica.
            Log.CoreFailed(_logger, e.Message, e);
            Failure = new NodeFailure(ExitCodes.InternalFailure, $"replica core failed: {e.GetType().Name}: {e.Message}");
            _lifetime.StopApplication();
        }
    }

    // The core stopped itself; nothing of the round it stopped in is logged or sent.
    private void StopFor(CoreStop stop)
    {
        switch (stop.Kind)
        {
            case CoreStopKind.FellBehind:
                // Its data is fine but too old to rejoin from the members' recent writes: start
                // again in this process, which catches up from a member's snapshot before listening.
                Log.FellBehind(_logger, stop.Reason);
                StartAfreshRequested = true;
                break;
            case CoreStopKind.StateLost:
                Log.StateLost(_logger, stop.Reason);
                Failure = new NodeFailure(ExitCodes.StateLost, $"this replica's data is behind what its peers know it promised: {stop.Reason}; start it again once its peers are up, and it catches up from them first");
                break;
        }
        _lifetime.StopApplication();
    }

    private void Process(CoreInput input)
    {
        switch (input)
        {
            case ClientRequestInput c:
                var admitted = c.Request;
                if (_security.Access.Admit(c.User, ref admitted) is { } refusal)
                {
                    // Refused before the core: it never enters the total order.
                    if (_clients.TryGetValue(c.ConnectionId, out var refused))
                    {
                        refused.Enqueue(new ClientReply { RequestId = admitted.RequestId, Status = ReplyStatus.Error, Error = refusal.Code, ErrorMessage = refusal.Message });
                    }
                    break;
                }
                _core.OnClientRequest(c.ConnectionId, admitted);
                break;
            case CredentialLookupInput l:
                l.Credential.TrySetResult(_security.Access.FindCredential(l.User));
                break;
            case AdminCheckInput a:
                a.Allowed.TrySetResult(_security.Access.IsAdmin(a.User));
                break;
            case ClientClosedInput closed:
                _core.OnClientClosed(closed.ConnectionId);
                break;
            case TickInput t:
                _core.Tick(t.NowMs);
                _storage!.OnTick();
                break;
            case BackupInput b:
                try
                {
                    b.Source.TrySetResult(_storage!.OpenBackup());
                }
                catch (IOException e) when (!DiskFull.IsCause(e))
                {
                    b.Source.TrySetException(e);
                }
                break;
            case TransferInput t:
                try
                {
                    var request = t.Request;
                    t.Files.TrySetResult(request.ResumeThroughTime != 0 || request.ResumeSuffixThrough != 0
                        ? _storage!.OpenForResume(new Clock.Stamp(request.ResumeThroughTime, request.ResumeThroughReplica), request.ResumeSuffixFrom, request.ResumeSuffixThrough)
                        : _storage!.OpenForTransfer());
                }
                catch (IOException e) when (!DiskFull.IsCause(e))
                {
                    // A full disk (the log rolls first) stops the replica, as in any round.
                    t.Files.TrySetException(e);
                }
                break;
            case StateSummaryInput q:
                q.Summary.TrySetResult(_core.Summary());
                break;
            case PeerRestartedInput r:
                _core.OnPeerRestarted(r.Peer.PeerId);
                r.Peer.ResumeAfterRestart(r.Incarnation);
                break;
            case PeerEnvelopeInput p:
                try
                {
                    var body = p.From.Accept(p.Envelope, p.Incarnation);
                    if (body is not null)
                    {
                        _core.OnPeerMessage(p.From.PeerId, body);
                    }
                }
                catch (ProtocolViolationException e)
                {
                    Log.PeerViolation(_logger, p.From.PeerId, e.Message);
                    p.Connection.Abort();
                }
                break;
        }
    }

    private void Dispatch(Ready ready, HashSet<PeerLink> woken)
    {
        // Persist first (one group commit for the whole round), then peers, then clients: see Ready.
        _storage!.Persist(ready);
        _core.Advance(ready);
        foreach (var violation in ready.PeerViolations)
        {
            Log.PeerViolation(_logger, violation.Peer, violation.Reason);
            _peers[violation.Peer].AbortInbound();
        }
        if (ready.InstalledView is { } view)
        {
            Log.ViewInstalled(_logger, view.Number, string.Join(",", view.Members) + (_core.Removed ? " (this replica is not in it; it asks to rejoin)" : ""));
        }
        foreach (var d in ready.Delivered)
        {
            _security.Access.OnDelivered(d.Command.Key);
        }
        if (_identity.Verbose)
        {
            foreach (var d in ready.Delivered)
            {
                Log.Delivered(_logger, d.Command.Stamp.ToString(), d.Command.Operation.ToString(), d.Command.Key, d.Result.ToString(), d.Duplicate ? " (duplicate, not applied again)" : "");
            }
        }
        woken.Clear();
        foreach (var message in ready.Messages)
        {
            var peer = _peers[message.To];
            peer.Enqueue(message.Message);
            woken.Add(peer);
        }
        foreach (var peer in woken)
        {
            peer.Wake();
        }
        foreach (var response in ready.Replies)
        {
            if (_clients.TryGetValue(response.ConnectionId, out var client))
            {
                client.Enqueue(response.Reply);
            }
        }
    }
}
