using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using KvReplica.Client.Transport;
using KvReplica.Node.Security;
using KvReplica.Protocol.Auth;
using System.Threading.Channels;
using KvReplica.Node.Transport;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Node.Storage;
using KvReplica.Store;
using ProtocolViolationException = KvReplica.Protocol.Core.ProtocolViolationException;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace KvReplica.Node;

/// <summary>
/// The replica daemon: listens on its port, dials its peers, and runs the replica core on one
/// loop that takes inputs from every connection and the timer and sends out what the core asks.
/// Every socket of the replica is opened here or in <see cref="PeerLink"/>.
/// </summary>
internal sealed class ReplicaService : IHostedService, IAsyncDisposable
{
    private static readonly TimeSpan TickInterval = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan HandshakeTimeout = ConnectionLimits.HandshakeTimeout;
    private const int BackupChunkBytes = 1 << 20;

    private readonly NodeIdentity _identity;
    private readonly ClusterConfig _config;
    private readonly ILogger<ReplicaService> _logger;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly NodeSecurity _security;
    private readonly ClientAuthenticator _authenticator;
    private readonly DialSettings _dial;
    private ReplicaCore _core = null!;
    private ReplicaStorage? _storage;
    private readonly Dictionary<int, PeerLink> _peers;
    private readonly ConcurrentDictionary<long, ClientSession> _clients = new();
    private readonly Channel<CoreInput> _inputs = Channel.CreateBounded<CoreInput>(new BoundedChannelOptions(65_536) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _tasks = [];
    private Task _coreLoop = Task.CompletedTask;
    private readonly Stopwatch _monotonic = Stopwatch.StartNew();
    private Socket? _listener;
    private long _nextConnectionId;
    // Accepted connections that have not finished their handshake (ConnectionLimits.MaxUnauthenticatedConnections),
    // and the ones refused for that since the last log line about it.
    private int _unauthenticated;
    private long _refusedSinceLog;
    private long _refusedLoggedAt = long.MinValue / 2;
    private int _stopped;

    /// <summary>The replica stopped to start again afresh in this process (see <see cref="CoreStopKind.FellBehind"/>).</summary>
    public bool StartAfreshRequested { get; private set; }

    /// <summary>
    /// Why the replica stopped by itself, with its exit code (<see cref="ExitCodes"/>) and the one
    /// line to print; null when it was asked to stop or starts afresh. Read after the host stopped.
    /// </summary>
    public NodeFailure? Failure { get; private set; }

    public ReplicaService(NodeIdentity identity, ClusterConfig config, NodeSecurity security, IHostApplicationLifetime lifetime, ILogger<ReplicaService> logger)
    {
        _lifetime = lifetime;
        _identity = identity;
        _config = config;
        _logger = logger;
        _security = security;
        _authenticator = new ClientAuthenticator(LookUpCredentialAsync, security.UnknownUserSecret);
        // Peer links, state queries and catch-up all dial as this replica, with its certificate.
        _dial = new DialSettings(config, security.Transport, Credentials: null, SelfReplicaId: identity.ReplicaId);
        _peers = config.Replicas.Where(r => r.Id != identity.ReplicaId)
            .ToDictionary(r => r.Id, r => new PeerLink(r, identity, _dial, logger, AnnounceRestartAsync));
    }

    // Called from a connection's task when a peer's handshake shows a new process; the core loop
    // handles the notice before any envelope of that process (it is queued first).
    private ValueTask AnnounceRestartAsync(PeerLink peer, long incarnation) =>
        _inputs.Writer.WriteAsync(new PeerRestartedInput(peer, incarnation), _stopping.Token);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var self = _config.Find(_identity.ReplicaId)!;
        // Recover, and catch up if peers know more, before listening: nothing may be answered
        // from a state that is not yet whole.
        string dataDirectory = _identity.DataDirectory ?? _config.DataDirectoryOf(_identity.ReplicaId);
        var (store, recovered) = await RecoverAndCatchUpAsync(dataDirectory, cancellationToken).ConfigureAwait(false);
        _security.Access.Attach(store);
        _core = new ReplicaCore(new ReplicaCoreOptions
        {
            SelfId = _identity.ReplicaId,
            Members = [.. _config.Replicas.Select(r => r.Id)],
            MaxValueBytes = _config.MaxValueBytes,
            HeartbeatIntervalMs = (long)_config.HeartbeatInterval.TotalMilliseconds,
            SuspicionTimeoutMs = (long)_config.SuspicionTimeout.TotalMilliseconds,
            ReadTimeoutMs = (long)_config.ReadTimeout.TotalMilliseconds,
            WriteTimeoutMs = (long)_config.WriteTimeout.TotalMilliseconds,
            MaxPendingWrites = _config.MaxPendingWrites,
            RecentDeliveredWrites = _config.RecentDeliveredWrites,
        }, store, recovered);
        try
        {
            _listener = Bind(self);
        }
        catch
        {
            _storage?.Dispose();
            _storage = null;
            throw;
        }
        Log.Listening(_logger, self.Id, _config.ClusterName, _listener.LocalEndPoint!.ToString()!);
        if (_security.Transport is null)
        {
            Log.SecurityOff(_logger, System.Net.IPAddress.TryParse(self.Host, out var ip) && System.Net.IPAddress.IsLoopback(ip) ? " (loopback only)" : " (--insecure: anyone who reaches this port can read and write everything)");
        }
        Log.ViewInstalled(_logger, _core.ViewNumber, string.Join(",", _core.Members));
        var stopping = _stopping.Token;
        _coreLoop = Task.Run(() => CoreLoopAsync(stopping), CancellationToken.None);
        _tasks.Add(_coreLoop);
        _tasks.Add(Task.Run(() => TickLoopAsync(stopping), CancellationToken.None));
        _tasks.Add(Task.Run(() => AcceptLoopAsync(_listener, stopping), CancellationToken.None));
        foreach (var peer in _peers.Values)
        {
            _tasks.Add(Task.Run(() => peer.RunOutboundAsync(stopping), CancellationToken.None));
        }
    }

    private const int MaxCatchUps = 3;
    private const int MaxStreamTries = 10;
    private static readonly TimeSpan StateQueryTimeout = TimeSpan.FromSeconds(2);

    // Opens the data directory; then asks every reachable peer what it knows. A peer that holds
    // or delivered more than this replica's log admits means the log was lost or cut short
    // (docs/design.md, "Catch-up"): fetch that peer's snapshot and log suffix, install them in
    // place of ours, and recover again. Unreachable peers are skipped: the core still checks
    // every peer's first batch, and stops the replica if it is behind after all.
    private async Task<(KvStore Store, CoreRecoveryState Recovered)> RecoverAndCatchUpAsync(string dataDirectory, CancellationToken ct)
    {
        bool caughtUp = false;
        for (int attempt = 1; ; attempt++)
        {
            _storage = ReplicaStorage.Open(dataDirectory, _config, _logger, out var store, out var recovered);
            if (caughtUp)
            {
                // The peers delivered more while the transfer ran; a view change catches this
                // replica up on those from memory (design.md §9) rather than another transfer.
                // The log it copied holds the peer's promises, not this replica's: taking them as
                // its own would make it refuse the very view change that adds it back.
                return (store, recovered with { LastJoin = null });
            }
            var ahead = await FindPeerAheadAsync(recovered, ct).ConfigureAwait(false);
            if (ahead is null)
            {
                return (store, recovered);
            }
            if (attempt > MaxCatchUps)
            {
                Log.StillBehind(_logger, MaxCatchUps, ahead.Value.Reason);
                return (store, recovered);
            }
            var (peer, reason) = ahead.Value;
            Log.CatchingUp(_logger, peer.Id, reason);
            var clock = Stopwatch.StartNew();
            string incoming = Path.Combine(dataDirectory, "incoming");
            Directory.CreateDirectory(incoming);
            string snapshotFile = Path.Combine(incoming, "snapshot"), suffixFile = Path.Combine(incoming, "suffix");
            var progress = new Client.Backup.StreamProgress();
            Client.Backup.BackupResult? fetched = null;
            for (int tries = 1; fetched is null && tries <= MaxStreamTries; tries++)
            {
                try
                {
                    fetched = await Client.Backup.SnapshotStreamReceiver.ReceiveStreamAsync(_dial, peer, PeerKind.CatchUp, [snapshotFile, suffixFile], progress, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A broken connection resumes where it stopped; a stream the peer no longer
                    // has (progress reset) starts again from a fresh snapshot.
                    string next = progress.Started ? $"resuming part {progress.Part} at offset {progress.Offset}" : "asking for a fresh transfer";
                    Log.CatchUpFailed(_logger, peer.Id, e.Message, next);
                    await Task.Delay(TimeSpan.FromMilliseconds(100 * tries), ct).ConfigureAwait(false);
                }
            }
            _storage.Dispose();
            if (fetched is null)
            {
                // The next attempt asks the peers again, and may pick another one.
                continue;
            }
            string lost = ReplicaStorage.InstallPeerState(dataDirectory, snapshotFile, suffixFile, new Clock.Stamp(fetched.ThroughTime, fetched.ThroughReplica));
            caughtUp = true;
            Log.CaughtUp(_logger, peer.Id, fetched.Bytes, $"{fetched.ThroughTime}.{fetched.ThroughReplica}", clock.ElapsedMilliseconds, lost);
        }
    }

    private async Task<(ReplicaAddress Peer, string Reason)?> FindPeerAheadAsync(CoreRecoveryState recovered, CancellationToken ct)
    {
        var peers = _config.Replicas.Where(r => r.Id != _identity.ReplicaId).ToList();
        var answers = await Task.WhenAll(peers.Select(async peer =>
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(StateQueryTimeout);
            try
            {
                return await Client.Backup.StateQuery.AskAsync(_dial, peer, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // Down, or not started yet: it cannot tell us anything now.
                _logger.LogDebug("state query to replica {PeerId} failed: {Reason}", peer.Id, e.Message);
                return null;
            }
        })).ConfigureAwait(false);
        // Of the peers that know more, the one that delivered most.
        return peers.Zip(answers)
            .Where(p => p.Second is not null)
            .Select(p => (Peer: p.First, Summary: p.Second!, Reason: ReplicaCore.WhatWasLost(_identity.ReplicaId, recovered.HeldThrough, p.First.Id, p.Second!.Origins, p.Second.HeldThrough, p.Second.DeliveredThrough)))
            .Where(p => p.Reason is not null)
            .OrderByDescending(p => p.Summary.DeliveredThrough.Sum())
            .Select(p => ((ReplicaAddress, string)?)(p.Peer, p.Reason!))
            .FirstOrDefault();
    }

    private static Socket Bind(ReplicaAddress self)
    {
        IPAddress address = IPAddress.TryParse(self.Host, out var parsed)
            ? parsed
            : Dns.GetHostAddresses(self.Host).FirstOrDefault() ?? throw new NodeStartupException($"cannot resolve host '{self.Host}' of replica {self.Id}");
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(address, self.Port));
            socket.Listen(512);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            string why = e.SocketErrorCode == SocketError.AddressAlreadyInUse
                ? "is already in use (is another replica or program running there?)"
                : $"cannot be listened on: {e.Message}";
            throw new NodeStartupException($"port {self.Port} on {self.Host} (replica {self.Id}) {why}");
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_listener is null || Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            // Never started (the port was taken), or already stopped: nothing to close.
            return;
        }
        Log.Stopping(_logger);
        // Stop accepting, then tell connected clients nothing more is coming, then drop the rest.
        _listener?.Dispose();
        _stopping.Cancel();
        foreach (var client in _clients.Values)
        {
            client.Abort();
        }
        foreach (var peer in _peers.Values)
        {
            peer.AbortInbound();
        }
        var all = Task.WhenAll(_tasks);
        await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(3), CancellationToken.None)).ConfigureAwait(false);
        if (_coreLoop.IsCompleted)
        {
            // Nobody appends any more. Closing also releases the data directory's lock, which a
            // fresh start in this process takes again at once.
            _storage?.Dispose();
            _storage = null;
        }
        Log.Stopped(_logger, _core.LastDelivered.ToString(), _core.PendingWrites);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _stopping.Dispose();
    }

    private async Task TickLoopAsync(CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(TickInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false))
            {
                await _inputs.Writer.WriteAsync(new TickInput(_monotonic.ElapsedMilliseconds), stopping).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

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
                while (taken < 4096 && !_core.Stopped && reader.TryRead(out var input))
                {
                    taken++;
                    Process(input);
                }
                var ready = _core.TakeReady();
                if (ready.Stop is { Kind: CoreStopKind.FellBehind } fellBehind)
                {
                    // Its data is fine but too old to rejoin from the members' recent writes: start
                    // again in this process, which catches up from a member's snapshot before
                    // listening. Nothing of the round it stopped in is logged or sent.
                    Log.FellBehind(_logger, fellBehind.Reason);
                    StartAfreshRequested = true;
                    _lifetime.StopApplication();
                    return;
                }
                if (ready.Stop is { Kind: CoreStopKind.StateLost } stateLost)
                {
                    Log.StateLost(_logger, stateLost.Reason);
                    Failure = new NodeFailure(ExitCodes.StateLost, $"this replica's data is behind what its peers know it promised: {stateLost.Reason}; start it again once its peers are up, and it catches up from them first");
                    _lifetime.StopApplication();
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
            case TickInput t:
                _core.Tick(t.NowMs);
                _storage!.OnTick();
                break;
            case BackupInput b:
                b.Snapshot.TrySetResult(_storage!.SnapshotNow());
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
            if (Interlocked.Increment(ref _unauthenticated) > ConnectionLimits.MaxUnauthenticatedConnections)
            {
                Interlocked.Decrement(ref _unauthenticated);
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
        long refused = Interlocked.Increment(ref _refusedSinceLog);
        long now = _monotonic.ElapsedMilliseconds;
        long last = Interlocked.Read(ref _refusedLoggedAt);
        if (now - last >= (long)ConnectionLimits.RefusedLogInterval.TotalMilliseconds
            && Interlocked.CompareExchange(ref _refusedLoggedAt, now, last) == last)
        {
            Log.ConnectionsRefused(_logger, Interlocked.Exchange(ref _refusedSinceLog, 0), ConnectionLimits.MaxUnauthenticatedConnections);
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
        int handshaking = 1;
        void HandshakeDone()
        {
            if (Interlocked.Exchange(ref handshaking, 0) == 1)
            {
                Interlocked.Decrement(ref _unauthenticated);
            }
        }
        try
        {
            await ServeConnectionAsync(socket, HandshakeDone, stopping).ConfigureAwait(false);
        }
        finally
        {
            HandshakeDone();
        }
    }

    private async Task ServeConnectionAsync(Socket socket, Action handshakeDone, CancellationToken stopping)
    {
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        string remote = socket.RemoteEndPoint?.ToString() ?? "unknown";
        int? certifiedReplica = null;
        using var handshake = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        handshake.CancelAfter(HandshakeTimeout);
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
                    Log.TlsRefused(_logger, remote, e is OperationCanceledException ? $"no TLS handshake within {HandshakeTimeout.TotalSeconds:0} s" : Describe(e));
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
                Log.BadInput(_logger, connection.Remote, $"no handshake within {HandshakeTimeout.TotalSeconds:0} s");
                return;
            }
            if (first is null)
            {
                return;
            }
            if (first is not Hello hello)
            {
                await RejectAsync(connection, $"expected a Hello frame first, got {first.GetType().Name}", stopping).ConfigureAwait(false);
                return;
            }
            if (hello.ProtocolVersion != ProtocolVersion.Current)
            {
                await RejectAsync(connection, $"protocol version {hello.ProtocolVersion} is not supported; this replica speaks version {ProtocolVersion.Current}", stopping).ConfigureAwait(false);
                return;
            }
            if (hello.ClusterName != _config.ClusterName)
            {
                // The answer names only what the dialler sent: the cluster's own name is not for
                // whoever happens to connect.
                await RejectAsync(connection, $"cluster name '{hello.ClusterName}' does not match this replica's cluster", stopping).ConfigureAwait(false);
                return;
            }
            if (hello.Kind is PeerKind.Replica or PeerKind.CatchUp or PeerKind.StateQuery && _security.Transport is not null && certifiedReplica != hello.ReplicaId)
            {
                Log.PeerNotAuthenticated(_logger, connection.Remote, hello.ReplicaId, certifiedReplica is int id ? $"replica {id}'s certificate" : "no replica certificate");
                await connection.SendAsync(new HelloRejected { Reason = "authentication failed" }, stopping).ConfigureAwait(false);
                return;
            }
            if (hello.Kind is not (PeerKind.Client or PeerKind.Backup))
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
                default:
                    await RejectAsync(connection, $"unknown peer kind {(int)hello.Kind}", stopping).ConfigureAwait(false);
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
        deadline.CancelAfter(HandshakeTimeout);
        ClientAuthenticator.Result result;
        try
        {
            result = await _authenticator.AuthenticateAsync(connection, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            result = new ClientAuthenticator.Result(null, $"did not authenticate within {HandshakeTimeout.TotalSeconds:0} s");
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

    // A backup: a fresh snapshot cut after everything delivered here so far, streamed from its file.
    private async Task ServeBackupAsync(FramedConnection connection, Action handshakeDone, CancellationToken stopping)
    {
        var (ok, user) = await AcceptClientAsync(connection, "backup", handshakeDone, stopping).ConfigureAwait(false);
        if (!ok)
        {
            return;
        }
        var allowed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await _inputs.Writer.WriteAsync(new AdminCheckInput(user, allowed), stopping).ConfigureAwait(false);
        if (!await allowed.Task.ConfigureAwait(false))
        {
            await connection.SendAsync(new BackupChunk { Last = true, Error = $"permission denied: user {user} may not take a backup (admin only)" }, stopping).ConfigureAwait(false);
            return;
        }
        var asked = new TaskCompletionSource<Task<SnapshotCut>>(TaskCreationOptions.RunContinuationsAsynchronously);
        await _inputs.Writer.WriteAsync(new BackupInput(asked), stopping).ConfigureAwait(false);
        FileStream file;
        SnapshotCut cut;
        try
        {
            cut = await (await asked.Task.ConfigureAwait(false)).ConfigureAwait(false);
            // Open at once: the snapshot stays on disk until two newer ones exist, and an open
            // file stays readable after it is deleted.
            file = new FileStream(cut.SnapshotPath, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 20);
        }
        catch (IOException e)
        {
            await connection.SendAsync(new BackupChunk { Last = true, Error = e.Message }, stopping).ConfigureAwait(false);
            return;
        }
        await using (file.ConfigureAwait(false))
        {
            var template = new BackupChunk { ThroughTime = cut.Through.Time, ThroughReplica = cut.Through.ReplicaId };
            long sent = await SendPartAsync(connection, template, 0, [file], 0, stopping).ConfigureAwait(false);
            Log.BackupServed(_logger, "backup", connection.Remote, sent, cut.Through.ToString());
        }
    }

    // A peer catching up: this replica's newest snapshot and the log after it (opened on the core
    // loop at one moment), or the rest of such a transfer the peer was cut off from.
    private async Task ServeCatchUpAsync(FramedConnection connection, CancellationToken stopping)
    {
        await connection.SendAsync(AcceptedHello(forPeer: true), stopping).ConfigureAwait(false);
        CatchUpRequest request;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping))
        {
            timeout.CancelAfter(HandshakeTimeout);
            if (await connection.ReadOneAsync(timeout.Token).ConfigureAwait(false) is not CatchUpRequest asked)
            {
                Log.BadInput(_logger, connection.Remote, "a catch-up connection must send a CatchUpRequest after the handshake");
                return;
            }
            request = asked;
        }
        var opened = new TaskCompletionSource<TransferFiles>(TaskCreationOptions.RunContinuationsAsynchronously);
        await _inputs.Writer.WriteAsync(new TransferInput(request, opened), stopping).ConfigureAwait(false);
        TransferFiles files;
        try
        {
            files = await opened.Task.ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await connection.SendAsync(new BackupChunk { Last = true, Error = e.Message }, stopping).ConfigureAwait(false);
            return;
        }
        await using (files.ConfigureAwait(false))
        {
            var template = new BackupChunk
            {
                ThroughTime = files.SnapshotThrough.Time,
                ThroughReplica = files.SnapshotThrough.ReplicaId,
                SuffixFrom = files.SuffixFrom,
                SuffixThrough = files.SuffixThrough,
            };
            bool resuming = request.ResumeThroughTime != 0 || request.ResumeSuffixThrough != 0;
            long sent = 0;
            if (!resuming || request.ResumePart == 0)
            {
                sent += await SendPartAsync(connection, template, 0, [files.Snapshot], resuming ? request.ResumeOffset : 0, stopping).ConfigureAwait(false);
            }
            sent += await SendPartAsync(connection, template, 1, files.Segments, resuming && request.ResumePart == 1 ? request.ResumeOffset : 0, stopping).ConfigureAwait(false);
            Log.BackupServed(_logger, resuming ? "rest of a catch-up" : "catch-up", connection.Remote, sent, $"snapshot {files.SnapshotThrough} + log segments {files.SuffixFrom}..{files.SuffixThrough}");
        }
    }

    // Streams the concatenation of `sources` as one part, from byte `skip` on, in chunks. Each
    // chunk waits for the socket to drain (the pipe's flush), so a slow reader slows the stream
    // instead of filling memory: one chunk is all it holds, however large the files. The final
    // chunk's SHA-256 covers the whole part, skipped bytes included, so a reader that pieced it
    // together over several connections checks the whole. Returns the bytes sent.
    private async Task<long> SendPartAsync(FramedConnection connection, BackupChunk template, int part, IReadOnlyList<Stream> sources, long skip, CancellationToken stopping)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        var buffer = new byte[Math.Min(BackupChunkBytes, _config.MaxFrameBytes - 4096)];
        long offset = 0, sent = 0;
        foreach (var source in sources)
        {
            while (true)
            {
                int want = offset < skip ? (int)Math.Min(buffer.Length, skip - offset) : buffer.Length;
                int read = await source.ReadAsync(buffer.AsMemory(0, want), stopping).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }
                sha.AppendData(buffer, 0, read);
                if (offset >= skip)
                {
                    await connection.SendAsync(Chunk(template, part, offset, buffer[..read]), stopping).ConfigureAwait(false);
                    sent += read;
                }
                offset += read;
            }
        }
        if (offset < skip)
        {
            throw new IOException($"resume offset {skip} is past the end of part {part} ({offset} bytes)");
        }
        var last = Chunk(template, part, offset, []);
        last.Last = true;
        last.Sha256 = sha.GetHashAndReset();
        await connection.SendAsync(last, stopping).ConfigureAwait(false);
        return sent;
    }

    private static BackupChunk Chunk(BackupChunk template, int part, long offset, byte[] data) => new()
    {
        Part = part,
        Offset = offset,
        Data = data,
        ThroughTime = template.ThroughTime,
        ThroughReplica = template.ThroughReplica,
        SuffixFrom = template.SuffixFrom,
        SuffixThrough = template.SuffixThrough,
    };

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
            await writer.ConfigureAwait(false);
            Log.ClientClosed(_logger, id, reason);
        }
    }
}

/// <summary>
/// The replica cannot start (port in use, unresolvable host, damaged log); the message is the one
/// line to show and <see cref="ExitCode"/> the code to exit with.
/// </summary>
internal sealed class NodeStartupException(string message, int exitCode = ExitCodes.StartupRefused) : Exception(message)
{
    /// <summary>One of <see cref="ExitCodes"/>.</summary>
    public int ExitCode { get; } = exitCode;
}

/// <summary>Why a running replica stopped by itself: its exit code (<see cref="ExitCodes"/>) and the one line for stderr.</summary>
internal sealed record NodeFailure(int ExitCode, string Reason);
