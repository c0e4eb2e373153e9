using System.IO.Pipelines;
using System.Net.Sockets;
using KvReplica.Client.Transport;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client.Backup;

/// <summary>
/// Asks one replica what it holds and has delivered per origin (<see cref="StateSummary"/>). A
/// replica runs it against its peers while it starts, to find out whether it came back with less
/// than it once promised them (docs/design.md, "Catch-up").
/// </summary>
public static class StateQuery
{
    /// <summary>The replica's summary; throws <see cref="IOException"/>, socket or frame exceptions when it cannot be had.</summary>
    public static async Task<StateSummary> AskAsync(ClusterConfig config, ReplicaAddress replica, int selfReplicaId, CancellationToken ct)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(replica.Host, replica.Port, ct).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var reader = PipeReader.Create(stream);
        var writer = PipeWriter.Create(stream);
        FrameCodec.WriteFrame(writer, new Hello { ProtocolVersion = ProtocolVersion.Current, ClusterName = config.ClusterName, Kind = PeerKind.StateQuery, ReplicaId = selfReplicaId });
        await writer.FlushAsync(ct).ConfigureAwait(false);
        var answer = await ReplicaConnection.ReadFrameAsync(reader, config.MaxFrameBytes, "handshake", ct).ConfigureAwait(false);
        if (answer is HelloRejected rejected)
        {
            throw new HandshakeRejectedException(rejected.Reason);
        }
        if (answer is not HelloAccepted)
        {
            throw new Transport.ProtocolViolationException($"answered the handshake with {answer.GetType().Name}");
        }
        return await ReplicaConnection.ReadFrameAsync(reader, config.MaxFrameBytes, "state query", ct).ConfigureAwait(false) as StateSummary
            ?? throw new Transport.ProtocolViolationException("answered the state query with something other than a StateSummary");
    }
}
