using System.IO.Pipelines;
using System.Net.Sockets;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client.Transport;

/// <summary>
/// A connection to one replica for a single exchange (a state query, a backup or catch-up
/// stream): connected, Hello sent with <c>kind</c>, HelloAccepted received. Throws
/// <see cref="HandshakeRejectedException"/> on HelloRejected and
/// <see cref="ProtocolViolationException"/> on any other answer.
/// </summary>
internal sealed class OneShotConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly int _maxFrameBytes;

    private OneShotConnection(Socket socket, NetworkStream stream, int maxFrameBytes)
    {
        _socket = socket;
        _stream = stream;
        _maxFrameBytes = maxFrameBytes;
        Reader = PipeReader.Create(stream);
        Writer = PipeWriter.Create(stream);
    }

    public PipeReader Reader { get; }

    public PipeWriter Writer { get; }

    public static async Task<OneShotConnection> OpenAsync(ClusterConfig config, ReplicaAddress replica, PeerKind kind, int selfReplicaId, CancellationToken ct)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        OneShotConnection? connection = null;
        try
        {
            await socket.ConnectAsync(replica.Host, replica.Port, ct).ConfigureAwait(false);
            connection = new OneShotConnection(socket, new NetworkStream(socket, ownsSocket: false), config.MaxFrameBytes);
            await connection.SendAsync(new Hello { ProtocolVersion = ProtocolVersion.Current, ClusterName = config.ClusterName, Kind = kind, ReplicaId = selfReplicaId }, ct).ConfigureAwait(false);
            switch (await connection.ReadAsync("handshake", ct).ConfigureAwait(false))
            {
                case HelloAccepted:
                    return connection;
                case HelloRejected rejected:
                    throw new HandshakeRejectedException(rejected.Reason);
                case var other:
                    throw new ProtocolViolationException($"answered the handshake with {other.GetType().Name}");
            }
        }
        catch
        {
            if (connection is not null)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                socket.Dispose();
            }
            throw;
        }
    }

    public async ValueTask SendAsync(Message message, CancellationToken ct)
    {
        FrameCodec.WriteFrame(Writer, message);
        await Writer.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Reads one frame; <paramref name="during"/> names the exchange if the replica closes first.</summary>
    public Task<Message> ReadAsync(string during, CancellationToken ct) => ReplicaConnection.ReadFrameAsync(Reader, _maxFrameBytes, during, ct);

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync().ConfigureAwait(false);
        _socket.Dispose();
    }
}
