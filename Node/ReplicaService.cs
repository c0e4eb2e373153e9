using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using KvReplica.Transport;
using KvReplica.Node.Security;
using KvReplica.Protocol.Auth;
using System.Threading.Channels;
using KvReplica.Node.Transport;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Node.Startup;
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
internal sealed partial class ReplicaService : IHostedService, IAsyncDisposable
{
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
    private readonly Channel<CoreInput> _inputs = Channel.CreateBounded<CoreInput>(new BoundedChannelOptions(ConnectionLimits.CoreInputQueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _tasks = [];
    private Task _coreLoop = Task.CompletedTask;
    private readonly Stopwatch _monotonic = Stopwatch.StartNew();
    private Socket? _listener;
    private long _nextConnectionId;
    private readonly HandshakeAdmission _admission = new(ConnectionLimits.MaxUnauthenticatedConnections, ConnectionLimits.RefusedLogInterval);
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
        var (storage, store, recovered) = await new CatchUpOnStart(_config, _identity.ReplicaId, _dial, _logger).RunAsync(dataDirectory, cancellationToken).ConfigureAwait(false);
        _storage = storage;
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

    private static Socket Bind(ReplicaAddress self)
    {
        IPAddress address = IPAddress.TryParse(self.Host, out var parsed)
            ? parsed
            : Dns.GetHostAddresses(self.Host).FirstOrDefault() ?? throw new NodeStartupException($"cannot resolve host '{self.Host}' of replica {self.Id}");
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(address, self.Port));
            socket.Listen(ConnectionLimits.ListenBacklog);
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
        await Task.WhenAny(all, Task.Delay(ConnectionLimits.StopGrace, CancellationToken.None)).ConfigureAwait(false);
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
        using var timer = new PeriodicTimer(ConnectionLimits.TickInterval);
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
}
