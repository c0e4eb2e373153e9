using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using KvReplica.Protocol.Auth;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

namespace KvReplica.Transport;

/// <summary>A user name and password, for SCRAM. The password stays in this process.</summary>
public sealed record ClientCredentials(string User, string Password)
{
    public override string ToString() => $"user {User}";
}

/// <summary>
/// How this process reaches replicas: the cluster, its TLS material (null: plaintext), and who
/// it is: a user's credentials for a client, or the replica id of a replica dialling its peers
/// (its certificate is in <see cref="Security"/>).
/// </summary>
public sealed record DialSettings(ClusterConfig Config, TransportSecurity? Security, ClientCredentials? Credentials, int SelfReplicaId = 0)
{
    /// <summary>A client's settings: the CA from cluster.json when TLS is on, and its credentials.</summary>
    public static DialSettings ForClient(ClusterConfig config, ClientCredentials? credentials) =>
        new(config, TransportSecurity.Load(config, replicaId: null), credentials);
}

/// <summary>
/// Every connection this process opens to a replica starts here: TCP, then TLS when the cluster
/// has it, then the Hello exchange, then, on client and backup connections with TLS, SCRAM
/// (docs/protocol.md, "Authentication"). One place, so every kind of connection is secured alike.
/// </summary>
public static class ReplicaDialer
{
    /// <summary>
    /// TCP to <paramref name="replica"/>, wrapped in TLS when the cluster has it (the replica must
    /// prove its id). <paramref name="configure"/> sets socket options before connecting.
    /// </summary>
    public static async Task<(Socket Socket, Stream Stream)> ConnectAsync(DialSettings settings, ReplicaAddress replica, CancellationToken ct, Action<Socket>? configure = null)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            configure?.Invoke(socket);
            await socket.ConnectAsync(replica.Host, replica.Port, ct).ConfigureAwait(false);
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            if (settings.Security is { } security)
            {
                try
                {
                    stream = await security.AuthenticateAsClientAsync(stream, replica.Host, replica.Id, ct).ConfigureAwait(false);
                }
                catch (AuthenticationException e)
                {
                    // Not a network fault: the replica's certificate (or ours) was refused, and
                    // retrying cannot help, so it is reported as a refusal.
                    throw new HandshakeRejectedException($"TLS handshake failed: {e.Message}{(e.InnerException is { } inner ? $" ({inner.Message})" : "")}");
                }
            }
            return (socket, stream);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Connects, sends Hello with <paramref name="kind"/>, and authenticates with the settings'
    /// credentials when the cluster has TLS and the kind is a client's. Throws
    /// <see cref="HandshakeRejectedException"/> with the replica's reason on refusal (a wrong
    /// cluster, a refused certificate, failed authentication), <see cref="UnexpectedMessageException"/>
    /// on an answer out of turn, and socket, I/O or frame exceptions on network failure.
    /// </summary>
    public static async Task<FramedConnection> OpenAsync(DialSettings settings, ReplicaAddress replica, PeerKind kind, CancellationToken ct)
    {
        var (socket, stream) = await ConnectAsync(settings, replica, ct).ConfigureAwait(false);
        // No frame deadlines on this side: the replica's answers are not held to the limits it
        // puts on what it accepts.
        var connection = new FramedConnection(socket, stream, settings.Config.MaxFrameBytes, deadlines: null);
        try
        {
            await ExchangeHelloAsync(connection, settings, kind, incarnation: 0, ct).ConfigureAwait(false);
            if (settings.Security is not null && kind is PeerKind.Client or PeerKind.Backup)
            {
                await AuthenticateAsync(connection, settings, ct).ConfigureAwait(false);
            }
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The dialling side of the handshake, for every kind of connection (a peer link calls it on
    /// a connection it opened itself, with its own connect deadline and socket options): sends
    /// <see cref="CreateHello"/> and returns the replica's <see cref="HelloAccepted"/>. Throws
    /// <see cref="HandshakeRejectedException"/> with the replica's reason, <see cref="UnexpectedMessageException"/>
    /// for any other answer, and <see cref="IOException"/> if it closed instead.
    /// </summary>
    public static async Task<HelloAccepted> ExchangeHelloAsync(FramedConnection connection, DialSettings settings, PeerKind kind, long incarnation, CancellationToken ct)
    {
        await connection.SendAsync(CreateHello(settings, kind, incarnation), ct).ConfigureAwait(false);
        return await connection.ReadFrameAsync("handshake", ct).ConfigureAwait(false) switch
        {
            HelloAccepted accepted => accepted,
            HelloRejected rejected => throw new HandshakeRejectedException(rejected.Reason),
            var other => throw new UnexpectedMessageException($"answered the handshake with {other.GetType().Name}"),
        };
    }

    /// <summary>
    /// The Hello every connection this process dials opens with: this protocol version, the
    /// cluster's name, the connection's kind, and the dialler's replica id (zero for a client)
    /// and <paramref name="incarnation"/> (peer links only; zero otherwise).
    /// </summary>
    public static Hello CreateHello(DialSettings settings, PeerKind kind, long incarnation = 0) => new()
    {
        ProtocolVersion = ProtocolVersion.Current,
        ClusterName = settings.Config.ClusterName,
        Kind = kind,
        ReplicaId = settings.SelfReplicaId,
        Incarnation = incarnation,
    };

    private static async Task AuthenticateAsync(FramedConnection connection, DialSettings settings, CancellationToken ct)
    {
        if (settings.Credentials is not { } credentials)
        {
            throw new HandshakeRejectedException("authentication required: this cluster uses TLS; give a user and password (client --user NAME, password from --password-file or KVREPLICA_PASSWORD)");
        }
        string nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
        string clientFirst = Scram.ClientFirst(credentials.User, nonce);
        await connection.SendAsync(new AuthStart { Mechanism = Scram.Mechanism, Payload = clientFirst }, ct).ConfigureAwait(false);
        string serverFirst = await connection.ReadFrameAsync("authentication", ct).ConfigureAwait(false) switch
        {
            AuthChallenge challenge => challenge.Payload,
            AuthOutcome { Ok: false } refused => throw new HandshakeRejectedException(refused.Error ?? "authentication failed"),
            var other => throw new UnexpectedMessageException($"answered the authentication start with {other.GetType().Name}"),
        };
        if (!Scram.TryClientFinal(credentials.Password, clientFirst[Scram.Gs2Header.Length..], nonce, serverFirst, out string clientFinal, out byte[] serverSignature, out string? error))
        {
            throw new UnexpectedMessageException(error!);
        }
        await connection.SendAsync(new AuthProof { Payload = clientFinal }, ct).ConfigureAwait(false);
        switch (await connection.ReadFrameAsync("authentication", ct).ConfigureAwait(false))
        {
            case AuthOutcome { Ok: true, Payload: { } serverFinal } when Scram.VerifyServerFinal(serverFinal, serverSignature):
                return;
            case AuthOutcome { Ok: true }:
                throw new UnexpectedMessageException("accepted our password without proving it holds the user's verifier");
            case AuthOutcome refused:
                throw new HandshakeRejectedException(refused.Error ?? "authentication failed");
            case var other:
                throw new UnexpectedMessageException($"answered the authentication proof with {other.GetType().Name}");
        }
    }
}
