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
    /// <summary>
    /// The replica's status; throws <see cref="StatusRefusedException"/> (an <see cref="IOException"/>)
    /// when it answers with an error (such as permission denied), and <see cref="IOException"/>,
    /// socket, frame or handshake exceptions when it cannot be had.
    /// </summary>
    public static async Task<ReplicaStatus> AskAsync(DialSettings settings, ReplicaAddress replica, CancellationToken ct)
    {
        await using var connection = await ReplicaDialer.OpenAsync(settings, replica, PeerKind.Client, ct).ConfigureAwait(false);
        await connection.SendAsync(new ClientRequest { RequestId = 1, Operation = Operation.Status }, ct).ConfigureAwait(false);
        var reply = await connection.ReadFrameAsync("status", ct).ConfigureAwait(false) as ClientReply;
        if (reply?.ReplicaStatus is { } status)
        {
            return status;
        }
        throw reply?.ErrorMessage is { } refusal ? new StatusRefusedException(refusal) : new IOException("answered STATUS without a status");
    }

    /// <summary>Asks every configured replica at once, each within <paramref name="timeout"/>; one answer per replica, in configuration order.</summary>
    public static async Task<IReadOnlyList<ReplicaStatusAnswer>> AskEveryReplicaAsync(DialSettings settings, TimeSpan timeout, CancellationToken ct)
    {
        return await Task.WhenAll(settings.Config.Replicas.Select(async replica =>
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(timeout);
            try
            {
                return new ReplicaStatusAnswer(replica, await AskAsync(settings, replica, deadline.Token).ConfigureAwait(false), null, Refused: false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                return new ReplicaStatusAnswer(replica, null, $"no answer within {timeout.TotalMilliseconds:0} ms", Refused: false);
            }
            catch (Exception e) when (e is IOException or SocketException or FrameException or UnexpectedMessageException or HandshakeRejectedException)
            {
                return new ReplicaStatusAnswer(replica, null, e is StatusRefusedException ? e.Message : ConnectionErrors.Describe(e), Refused: e is StatusRefusedException);
            }
        })).ConfigureAwait(false);
    }

    /// <summary>The replica answered STATUS with an error, such as permission denied (STATUS is admin only).</summary>
    internal sealed class StatusRefusedException(string message) : IOException(message);
}

/// <summary>
/// One replica's answer to STATUS: its <see cref="Status"/>, or why there is none
/// (<see cref="Error"/>; <see cref="Refused"/> when the replica answered with an error rather than
/// being unreachable).
/// </summary>
internal sealed record ReplicaStatusAnswer(ReplicaAddress Replica, ReplicaStatus? Status, string? Error, bool Refused);
