using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

/// <summary>A message for one peer replica.</summary>
public readonly record struct Outgoing(int To, PeerMessage Message);

/// <summary>A reply for one client connection (identified by the number the Node gave it).</summary>
public readonly record struct ClientResponse(long ConnectionId, ClientReply Reply);

/// <summary>A write delivered (applied) in total order, with the result it produced.</summary>
public readonly record struct DeliveredWrite(WriteCommand Command, ReplyStatus Result, bool Duplicate);

/// <summary>
/// What the core asks the outside world to do after a batch of inputs, as in etcd-io/raft's
/// Ready: taken with <see cref="ReplicaCore.TakeReady"/>, each output list handed over once.
/// </summary>
/// <remarks>
/// The driver (Node, or the simulation) must act in this order:
/// <list type="number">
/// <item>persist <see cref="Delivered"/> (once the write-ahead log lands: make it durable under
/// the fsync policy) — persist before you send, so nothing another replica or a client learns
/// from us can be forgotten by a crash;</item>
/// <item>send <see cref="Messages"/> to peers, in list order per peer (links are FIFO, and the
/// ordering proof depends on it);</item>
/// <item>send <see cref="Replies"/> to clients.</item>
/// </list>
/// </remarks>
public sealed class Ready
{
    public List<Outgoing> Messages { get; } = [];
    public List<ClientResponse> Replies { get; } = [];
    public List<DeliveredWrite> Delivered { get; } = [];

    public bool IsEmpty => Messages.Count == 0 && Replies.Count == 0 && Delivered.Count == 0;
}
