using System.IO.Pipelines;
using System.Net.Sockets;
using KvReplica.Client.Transport;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client;

/// <summary>
/// STATUS: asks one replica, over a connection of its own (no failover: the answer must be that
/// replica's), for its view, suspicions and delivered position.
/// </summary>
public static class ReplicaStatusQuery
{
    /// <summary>The replica's status; throws <see cref="IOException"/>, socket or frame exceptions when it cannot be had.</summary>
    public static async Task<ReplicaStatus> AskAsync(ClusterConfig config, ReplicaAddress replica, CancellationToken ct)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(replica.Host, replica.Port, ct).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var reader = PipeReader.Create(stream);
        var writer = PipeWriter.Create(stream);
        FrameCodec.WriteFrame(writer, new Hello { ProtocolVersion = ProtocolVersion.Current, ClusterName = config.ClusterName, Kind = PeerKind.Client });
        await writer.FlushAsync(ct).ConfigureAwait(false);
        var answer = await ReplicaConnection.ReadFrameAsync(reader, config.MaxFrameBytes, "handshake", ct).ConfigureAwait(false);
        if (answer is HelloRejected rejected)
        {
            throw new IOException($"rejected: {rejected.Reason}");
        }
        FrameCodec.WriteFrame(writer, new ClientRequest { RequestId = 1, Operation = Operation.Status });
        await writer.FlushAsync(ct).ConfigureAwait(false);
        var reply = await ReplicaConnection.ReadFrameAsync(reader, config.MaxFrameBytes, "status", ct).ConfigureAwait(false) as ClientReply;
        return reply?.ReplicaStatus ?? throw new IOException(reply?.ErrorMessage ?? "answered STATUS without a status");
    }

    /// <summary>One line per configured replica, as the CLI prints them (lag: how far its delivered stamp trails the most advanced one's, in Lamport time).</summary>
    public static async Task<IReadOnlyList<string>> DescribeClusterAsync(ClusterConfig config, TimeSpan timeout, CancellationToken ct)
    {
        var answers = await Task.WhenAll(config.Replicas.Select(async replica =>
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(timeout);
            try
            {
                return (replica, Status: await AskAsync(config, replica, deadline.Token).ConfigureAwait(false), Error: (string?)null);
            }
            catch (Exception e) when (e is IOException or SocketException or FrameException or OperationCanceledException or Transport.ProtocolViolationException)
            {
                return (replica, Status: (ReplicaStatus?)null, Error: e is OperationCanceledException ? $"no answer within {timeout.TotalMilliseconds:0} ms" : e.Message);
            }
        })).ConfigureAwait(false);
        long newest = answers.Where(a => a.Status is not null).Select(a => a.Status!.DeliveredTime).DefaultIfEmpty(0).Max();
        return [.. answers.Select(a => a.Status is { } s
            ? $"replica {s.ReplicaId}: view {s.ViewNumber} members {string.Join(",", s.Members)} suspects {(s.Suspected.Length == 0 ? "-" : string.Join(",", s.Suspected))} delivered {s.DeliveredTime}.{s.DeliveredReplica} pending {s.PendingWrites} lag {newest - s.DeliveredTime}{(s.Wedged ? " (view change in progress)" : "")}{(s.Removed ? " (removed from the view; must rejoin)" : "")}"
            : $"replica {a.replica.Id}: unreachable ({a.Error})")];
    }
}
