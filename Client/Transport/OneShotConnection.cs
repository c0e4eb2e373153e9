using System.IO.Pipelines;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client.Transport;

/// <summary>
/// A connection to one replica for a single exchange (a state query, a status, a backup or
/// catch-up stream): connected (with TLS and authentication when the cluster has them), Hello
/// sent with <c>kind</c>, HelloAccepted received. Throws <see cref="HandshakeRejectedException"/>
/// on HelloRejected or refused authentication and <see cref="ProtocolViolationException"/> on any
/// other answer.
/// </summary>
internal sealed class OneShotConnection : IAsyncDisposable
{
    private readonly DialedConnection _dialed;
    private readonly int _maxFrameBytes;

    private OneShotConnection(DialedConnection dialed, int maxFrameBytes)
    {
        _dialed = dialed;
        _maxFrameBytes = maxFrameBytes;
    }

    public PipeReader Reader => _dialed.Reader;

    public PipeWriter Writer => _dialed.Writer;

    public static async Task<OneShotConnection> OpenAsync(DialSettings settings, ReplicaAddress replica, PeerKind kind, CancellationToken ct) =>
        new(await ReplicaDialer.OpenAsync(settings, replica, kind, ct).ConfigureAwait(false), settings.Config.MaxFrameBytes);

    public async ValueTask SendAsync(Message message, CancellationToken ct)
    {
        FrameCodec.WriteFrame(Writer, message);
        await Writer.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Reads one frame; <paramref name="during"/> names the exchange if the replica closes first.</summary>
    public Task<Message> ReadAsync(string during, CancellationToken ct) => ReplicaConnection.ReadFrameAsync(Reader, _maxFrameBytes, during, ct);

    public ValueTask DisposeAsync() => _dialed.DisposeAsync();
}
