using System.Threading.Channels;
using System.Net.Sockets;
using System.Security.Authentication;
using KvReplica.Node.Security;
using KvReplica.Node.Transport;
using KvReplica.Transport;
using KvReplica.Protocol.Auth;
using KvReplica.Protocol.Wire;
using Microsoft.Extensions.Logging;

namespace KvReplica.Node;

// Accepted connections: admission, TLS, the Hello, authentication, and the serving of each
// connection kind but the two that stream files (ReplicaService.Transfers.cs).
internal sealed partial class ReplicaService
{
    private async Task AcceptLoopAsync(Socket listener, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                _logger.LogWarning("accept failed: {Reason}", e.Message);
                continue;
            }
            if (!_admission.TryAdmit())
            {
                RefuseUnauthenticated(socket);
                continue;
            }
            _ = Task.Run(() => ServeConnectionAsync(socket, stopping), CancellationToken.None);
        }
    }

    // Too many connections are still in their handshake: close this one at once (a reset, so
    // nothing lingers) and say so at most once per RefusedLogInterval, with the count.
    private void RefuseUnauthenticated(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
        }
        socket.Dispose();
        if (_admission.Refused(_monotonic.ElapsedMilliseconds) is > 0 and long refused)
        {
            Log.ConnectionsRefused(_logger, refused, ConnectionLimits.MaxUnauthenticatedConnections);
        }
    }

    // One accepted connection: TLS when the cluster has it, then the handshake decides whether
    // it is a client or one of a peer's connections, and proves who it is: a peer by its
    // certificate, a client by SCRAM. Bad input of any kind closes this connection only, and
    // nothing it sent reaches the core until it has proved who it is.
    private async Task ServeConnectionAsync(Socket socket, CancellationToken stopping)
    {
        // Counted among the unauthenticated from the accept (AcceptLoopAsync) until it has proved
        // who it is (a peer's Hello over TLS with its certificate, a client's SCRAM), or until it
        // ends, whatever ends it.
        var ticket = _admission.Admitted();
        try
        {
            await ServeConnectionAsync(socket, ticket.Release, stopping).ConfigureAwait(false);
        }
        finally
        {
            ticket.Release();
        }
    }

    private async Task ServeConnectionAsync(Socket socket, Action handshakeDone, CancellationToken stopping)
    {
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        string remote = socket.RemoteEndPoint?.ToString() ?? "unknown";
        int? certifiedReplica = null;
        using var handshake = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        handshake.CancelAfter(ConnectionLimits.HandshakeTimeout);
        if (_security.Transport is { } tls)
        {
            try
            {
                (stream, certifiedReplica) = await tls.AuthenticateAsServerAsync(stream, handshake.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AuthenticationException or IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
                if (!stopping.IsCancellationRequested)
                {
                    Log.TlsRefused(_logger, remote, e is OperationCanceledException ? $"no TLS handshake within {ConnectionLimits.HandshakeTimeout.TotalSeconds:0} s" : Describe(e));
                }
                return;
            }
        }
        await using var connection = new FramedConnection(socket, stream, _config.MaxFrameBytes);
        try
        {
            Message? first;
            try
            {
                first = await connection.ReadOneAsync(handshake.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
            {
                Log.BadInput(_logger, connection.Remote, $"no handshake within {ConnectionLimits.HandshakeTimeout.TotalSeconds:0} s");
                return;
            }
            if (first is null)
            {
                return;
            }
            var verdict = HelloCheck.Judge(first, _config, _security.Transport is not null, certifiedReplica);
            if (verdict.Kind == HelloVerdictKind.Reject)
            {
                await RejectAsync(connection, verdict.Reason!, stopping).ConfigureAwait(false);
                return;
            }
            var hello = (Hello)first;
            if (verdict.Kind == HelloVerdictKind.NotAuthenticated)
            {
                Log.PeerNotAuthenticated(_logger, connection.Remote, hello.ReplicaId, verdict.Reason!);
                await connection.SendAsync(new HelloRejected { Reason = "authentication failed" }, stopping).ConfigureAwait(false);
                return;
            }
            if (HelloCheck.IsPeerKind(hello.Kind))
            {
                // A peer has proved who it is by now (its certificate); a client does with SCRAM.
                handshakeDone();
            }
            switch (hello.Kind)
            {
                case PeerKind.Client:
                    await ServeClientAsync(connection, handshakeDone, stopping).ConfigureAwait(false);
                    break;
                case PeerKind.Replica:
                    PeerSockets.Configure(socket, _config);
                    await ServePeerAsync(connection, hello, stopping).ConfigureAwait(false);
                    break;
                case PeerKind.Backup:
                    await ServeBackupAsync(connection, handshakeDone, stopping).ConfigureAwait(false);
                    break;
                case PeerKind.CatchUp:
                    await ServeCatchUpAsync(connection, stopping).ConfigureAwait(false);
                    break;
                case PeerKind.StateQuery:
                    await ServeStateQueryAsync(connection, stopping).ConfigureAwait(false);
                    break;
            }
        }
        catch (FrameException e)
        {
            Log.BadInput(_logger, connection.Remote, e.Message);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or AuthenticationException)
        {
            // The connection went away; its owner logged what mattered.
        }
    }

    private static string Describe(Exception e) => e.InnerException is { } inner ? $"{e.Message} ({inner.Message})" : e.Message;

    // Sends HelloAccepted to a client or backup connection and, with authentication on, runs
    // SCRAM. Returns the user (null with authentication off), or false when the connection must close.
    // handshakeDone: called once the connection has authenticated (it then no longer counts
    // toward ConnectionLimits.MaxUnauthenticatedConnections).
    private async Task<(bool Ok, string? User)> AcceptClientAsync(FramedConnection connection, string kind, Action handshakeDone, CancellationToken stopping)
    {
        await connection.SendAsync(AcceptedHello(forPeer: false), stopping).ConfigureAwait(false);
        if (!_security.Access.AuthenticationOn)
        {
            handshakeDone();
            return (true, null);
        }
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        deadline.CancelAfter(ConnectionLimits.HandshakeTimeout);
        ClientAuthenticator.Result result;
        try
        {
            result = await _authenticator.AuthenticateAsync(connection, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            result = new ClientAuthenticator.Result(null, $"did not authenticate within {ConnectionLimits.HandshakeTimeout.TotalSeconds:0} s");
        }
        if (result.User is null)
        {
            Log.ClientNotAuthenticated(_logger, kind, connection.Remote, result.Failure!);
            return (false, null);
        }
        handshakeDone();
        return (true, result.User);
    }

    private async Task<ScramCredential?> LookUpCredentialAsync(string user, CancellationToken stopping)
    {
        var found = new TaskCompletionSource<ScramCredential?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await _inputs.Writer.WriteAsync(new CredentialLookupInput(user, found), stopping).ConfigureAwait(false);
        return await found.Task.WaitAsync(stopping).ConfigureAwait(false);
    }

    // Reads frames until the connection ends and hands each to the core loop as the input
    // `toInput` makes of it; returns why the connection ended. Bad input (an invalid frame, or a
    // message this kind of connection may not send) closes this connection only, with a log line.
    private async Task<string> ForwardToCoreAsync(FramedConnection connection, string closedReason, Func<Message, CoreInput> toInput, CancellationToken stopping)
    {
        try
        {
            var frames = new List<Message>();
            while (await connection.ReadFramesAsync(frames, stopping).ConfigureAwait(false))
            {
                foreach (var frame in frames)
                {
                    await _inputs.Writer.WriteAsync(toInput(frame), stopping).ConfigureAwait(false);
                }
                frames.Clear();
            }
            return closedReason;
        }
        catch (FrameException e)
        {
            Log.BadInput(_logger, connection.Remote, e.Message);
            return e.Message;
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            return e.Message;
        }
    }

    private async Task RejectAsync(FramedConnection connection, string reason, CancellationToken stopping)
    {
        Log.HandshakeRejected(_logger, connection.Remote, reason);
        await connection.SendAsync(new HelloRejected { Reason = reason }, stopping).ConfigureAwait(false);
    }

    private async Task ServePeerAsync(FramedConnection connection, Hello hello, CancellationToken stopping)
    {
        if (!_peers.TryGetValue(hello.ReplicaId, out var peer))
        {
            string ids = string.Join(", ", _config.Replicas.Select(r => r.Id));
            await RejectAsync(connection, $"replica id {hello.ReplicaId} is not a peer in this cluster (replicas: {ids})", stopping).ConfigureAwait(false);
            return;
        }
        var accepted = await peer.AcceptInboundAsync(hello, connection).ConfigureAwait(false);
        await connection.SendAsync(accepted, stopping).ConfigureAwait(false);
        Log.PeerUp(_logger, peer.PeerId, "inbound", connection.Remote);
        string reason = "closed by peer";
        try
        {
            reason = await ForwardToCoreAsync(connection, "closed by peer", frame => frame is ReplicaEnvelope envelope
                ? new PeerEnvelopeInput(peer, hello.Incarnation, envelope, connection)
                : throw new FrameException($"replica {peer.PeerId} sent {frame.GetType().Name} on its link; only envelopes are allowed"), stopping).ConfigureAwait(false);
        }
        finally
        {
            peer.InboundClosed(connection);
            if (!stopping.IsCancellationRequested)
            {
                Log.PeerDown(_logger, peer.PeerId, "inbound", reason);
            }
        }
    }

    // A restarting peer's question: what does this replica hold and deliver, per origin?
    private async Task ServeStateQueryAsync(FramedConnection connection, CancellationToken stopping)
    {
        await connection.SendAsync(AcceptedHello(forPeer: true), stopping).ConfigureAwait(false);
        var answer = new TaskCompletionSource<StateSummary>(TaskCreationOptions.RunContinuationsAsynchronously);
        await _inputs.Writer.WriteAsync(new StateSummaryInput(answer), stopping).ConfigureAwait(false);
        await connection.SendAsync(await answer.Task.ConfigureAwait(false), stopping).ConfigureAwait(false);
    }

    // A client learns nothing about the replica from the handshake (its incarnation would let
    // whoever connects pose as this replica's process on a cluster without TLS).
    private HelloAccepted AcceptedHello(bool forPeer) => new()
    {
        ProtocolVersion = ProtocolVersion.Current,
        ReplicaId = forPeer ? _identity.ReplicaId : 0,
        Incarnation = forPeer ? _identity.Incarnation : 0,
        MaxFrameBytes = _config.MaxFrameBytes,
    };

    // The core ends the connection's watches; while stopping, nothing needs telling.
    private async Task TellCoreClosedAsync(long connectionId, CancellationToken stopping)
    {
        try
        {
            await _inputs.Writer.WriteAsync(new ClientClosedInput(connectionId), stopping).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
        }
    }

    private async Task ServeClientAsync(FramedConnection connection, Action handshakeDone, CancellationToken stopping)
    {
        var (ok, user) = await AcceptClientAsync(connection, "client", handshakeDone, stopping).ConfigureAwait(false);
        if (!ok)
        {
            return;
        }
        long id = Interlocked.Increment(ref _nextConnectionId);
        var session = new ClientSession(id, connection, _logger);
        _clients[id] = session;
        Log.ClientOpened(_logger, id, connection.Remote, user ?? "(authentication off)");
        var writer = session.RunWriterAsync(stopping);
        string reason = "closed by client";
        try
        {
            reason = await ForwardToCoreAsync(connection, reason, frame => frame is ClientRequest request
                ? new ClientRequestInput(id, request, user)
                : throw new FrameException($"client sent {frame.GetType().Name}; only requests are allowed after the handshake"), stopping).ConfigureAwait(false);
        }
        finally
        {
            _clients.TryRemove(id, out _);
            session.Complete();
            await TellCoreClosedAsync(id, stopping).ConfigureAwait(false);
            await writer.ConfigureAwait(false);
            Log.ClientClosed(_logger, id, reason);
        }
    }
}
