using System.Net.Sockets;
using KvReplica.Client.Transport;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;
using KvReplica.Transport;

namespace KvReplica.Client;

/// <summary>
/// STATUS: asks one replica, over a connection of its own (no failover: the answer must be that
/// replica's), for its view, suspicions and delivered position.
/// </summary>
internal static class ReplicaStatusQuery
{
    /// <summary>The replica's status; throws <see cref="IOException"/>, socket, frame or handshake exceptions when it cannot be had.</summary>
    public static async Task<ReplicaStatus> AskAsync(DialSettings settings, ReplicaAddress replica, CancellationToken ct)
    {
        await using var connection = await ReplicaDialer.OpenAsync(settings, replica, PeerKind.Client, ct).ConfigureAwait(false);
        await connection.SendAsync(new ClientRequest { RequestId = 1, Operation = Operation.Status }, ct).ConfigureAwait(false);
        var reply = await connection.ReadFrameAsync("status", ct).ConfigureAwait(false) as ClientReply;
        return reply?.ReplicaStatus ?? throw new IOException(reply?.ErrorMessage ?? "answered STATUS without a status");
    }

    /// <summary>One line per configured replica, as the CLI prints them (lag: how far its delivered stamp trails the most advanced one's, in Lamport time).</summary>
    public static async Task<IReadOnlyList<string>> DescribeClusterAsync(DialSettings settings, TimeSpan timeout, CancellationToken ct)
    {
        var answers = await Task.WhenAll(settings.Config.Replicas.Select(async replica =>
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(timeout);
            try
            {
                return (replica, Status: await AskAsync(settings, replica, deadline.Token).ConfigureAwait(false), Error: (string?)null);
            }
            catch (Exception e) when (e is IOException or SocketException or FrameException or OperationCanceledException or UnexpectedMessageException or HandshakeRejectedException)
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
