using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

namespace KvReplica.Node.Transport;

/// <summary>What the accepting replica makes of a connection's first frame.</summary>
internal enum HelloVerdictKind
{
    /// <summary>Serve the connection as the kind its Hello names.</summary>
    Accept,
    /// <summary>Answer HelloRejected with the reason, log it, and close.</summary>
    Reject,
    /// <summary>A peer connection without the certificate of the replica it claims to be: answer only "authentication failed".</summary>
    NotAuthenticated,
}

/// <summary>The verdict on a Hello, with the reason to send (Reject) or to log (NotAuthenticated).</summary>
internal readonly record struct HelloVerdict(HelloVerdictKind Kind, string? Reason)
{
    public static HelloVerdict Accepted => new(HelloVerdictKind.Accept, null);
}

/// <summary>
/// The checks on a Hello before anything else of its connection is read, in the order they are
/// made: version, cluster, then a peer's certificate. Pure, so each refusal is tested on its own.
/// </summary>
internal static class HelloCheck
{
    /// <param name="first">The connection's first frame.</param>
    /// <param name="config">This replica's cluster.</param>
    /// <param name="tls">Whether the cluster runs TLS (peers must then prove their id by certificate).</param>
    /// <param name="certifiedReplica">The replica id in the certificate the connection presented, if any.</param>
    public static HelloVerdict Judge(Message first, ClusterConfig config, bool tls, int? certifiedReplica)
    {
        if (first is not Hello hello)
        {
            return new(HelloVerdictKind.Reject, $"expected a Hello frame first, got {first.GetType().Name}");
        }
        if (hello.ProtocolVersion != ProtocolVersion.Current)
        {
            return new(HelloVerdictKind.Reject, $"protocol version {hello.ProtocolVersion} is not supported; this replica speaks version {ProtocolVersion.Current}");
        }
        if (hello.ClusterName != config.ClusterName)
        {
            // The answer names only what the dialler sent: the cluster's own name is not for
            // whoever happens to connect.
            return new(HelloVerdictKind.Reject, $"cluster name '{hello.ClusterName}' does not match this replica's cluster");
        }
        if (IsPeerKind(hello.Kind) && tls && certifiedReplica != hello.ReplicaId)
        {
            return new(HelloVerdictKind.NotAuthenticated, certifiedReplica is int id ? $"replica {id}'s certificate" : "no replica certificate");
        }
        if (!Enum.IsDefined(hello.Kind))
        {
            return new(HelloVerdictKind.Reject, $"unknown peer kind {(int)hello.Kind}");
        }
        return HelloVerdict.Accepted;
    }

    /// <summary>Connections only a replica may open: they prove who they are by certificate, not SCRAM.</summary>
    public static bool IsPeerKind(PeerKind kind) => kind is PeerKind.Replica or PeerKind.CatchUp or PeerKind.StateQuery;
}
