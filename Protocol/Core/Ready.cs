using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

/// <summary>A message for one peer replica.</summary>
public readonly record struct Outgoing(int To, PeerMessage Message);

/// <summary>A reply for one client connection (identified by the number the Node gave it).</summary>
public readonly record struct ClientResponse(long ConnectionId, ClientReply Reply);

/// <summary>
/// A message from <paramref name="Peer"/> that broke the protocol, found while the core handled
/// another input (a batch that waited for a view install): the driver closes that peer's link and
/// logs <paramref name="Reason"/>, as for a <see cref="ProtocolViolationException"/>.
/// </summary>
public readonly record struct PeerViolation(int Peer, string Reason);

/// <summary>A write delivered (applied) in total order, with the result it produced.</summary>
public readonly record struct DeliveredWrite(WriteCommand Command, ReplyStatus Result, bool Duplicate);

/// <summary>
/// What the core asks the outside world to do after a batch of inputs, as in etcd-io/raft's
/// Ready: taken with <see cref="ReplicaCore.TakeReady"/>, each output list handed over once.
/// </summary>
/// <remarks>
/// The driver (Node, or the simulation) must act in this order:
/// <list type="number">
/// <item>persist <see cref="Rebase"/>, <see cref="NewlyHeld"/>, <see cref="Joined"/>,
/// <see cref="InstalledView"/>, then the <see cref="DeliveredThrough"/> marker, to the
/// write-ahead log, durable under the fsync policy. Persist before you send: an acknowledgement
/// or a write we send promises that we hold it, and a crash must not make us forget it;</item>
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

    /// <summary>Peers whose link must be closed for a message that broke the protocol (see <see cref="PeerViolation"/>).</summary>
    public List<PeerViolation> PeerViolations { get; } = [];

    /// <summary>Writes this replica started holding (stamped here or received), in the order held.</summary>
    public List<WriteCommand> NewlyHeld { get; } = [];

    /// <summary>Stamp of the last write delivered in this round, or <see cref="Clock.Stamp.Zero"/> if none was.</summary>
    public Clock.Stamp DeliveredThrough { get; set; }

    /// <summary>
    /// The join this replica just sent to a view change (null if none): its promise and the
    /// acknowledgements it froze. Persist it before sending, or a restart could promise twice, or
    /// acknowledge more than it reported.
    /// </summary>
    public ViewJoin? Joined { get; set; }

    /// <summary>A view this replica installed (null if none): persist it before sending, with its trims.</summary>
    public ViewInstall? InstalledView { get; set; }

    /// <summary>
    /// A removed replica being added back replaced what it held (null if not): persist it
    /// first in the round, before <see cref="NewlyHeld"/>, which then holds what the catch-up carried.
    /// </summary>
    public HeldRebase? Rebase { get; set; }

    public bool IsEmpty => Messages.Count == 0 && Replies.Count == 0 && PeerViolations.Count == 0 && Delivered.Count == 0 && NewlyHeld.Count == 0 && Joined is null && InstalledView is null && Rebase is null;
}
